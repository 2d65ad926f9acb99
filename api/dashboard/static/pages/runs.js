// The team's run history: the API's filters, live status and progress, sort by summary values,
// chosen columns (spec paths too), and a selection to compare.
import { el, fmt, get, statusBadge } from "../api.js";
import { settingsOf, shown, valueAt } from "./spec.js";

const FILTERS = [
  ["q", "search names, notes, tags", "text"],
  ["project", "project", "text"],
  ["status", "status", ["", "queued", "running", "succeeded", "failed", "cancelled"]],
  ["tag", "tag", "text"],
  ["created_by", "creator", "text"],
  ["verdict", "verdict", ["", "overfitting", "still improving", "good fit", "underfitting", "not learning", "unstable", "diverged"]],
  ["where", "where (optimizer.name=adam, val_accuracy>0.95)", "text"],
];
// Column: [label, sort key (the API's) or null, value of a run].
const COLUMNS = [
  ["id", "id", (r) => r.id],
  ["name", "name", (r) => r.name],
  ["project", null, (r) => r.project],
  ["status", null, (r) => statusBadge(r.status)],
  ["progress", null, progress],
  ["verdict", null, (r) => el("span", { class: `verdict ${r.diagnosis?.verdict || ""}` },
    r.diagnosis?.verdict || "–")],
  ["min val loss", "min_val_loss", (r) => fmt(r.diagnosis?.min_val_loss)],
  ["best epoch", "best_epoch", (r) => fmt(r.diagnosis?.best_epoch)],
  ["onset", "onset_epoch", (r) => fmt(r.diagnosis?.onset_epoch)],
  ["final gap", "final_gap", (r) => fmt(r.diagnosis?.final_gap)],
  ["val acc", "val_accuracy", (r) => fmt(r.diagnosis?.at_evaluated?.val_accuracy)],
  ["created by", null, (r) => r.created_by || "–"],
  ["created", "created_at", (r) => new Date(r.created_at).toLocaleString()],
];
// Shown until a person chooses: what fits a 1,400 px window (the rest one click away).
const DEFAULT_COLUMNS = ["id", "name", "status", "progress", "verdict", "min val loss", "onset", "val acc", "created"];
const STORED = "fitlens.runs.columns";

function chosenColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORED) || "null");
    if (saved && Array.isArray(saved.columns)) return saved;
  } catch { /* a bad value: the defaults */ }
  return { columns: DEFAULT_COLUMNS, params: [] };
}

function progress(run) {
  const { epoch, epochs } = run.progress;
  if (!epochs) return "–";
  let text = `epoch ${epoch}/${epochs}`;
  if (run.status === "running" && run.started_at && epoch > 0) {
    const elapsed = (Date.now() - Date.parse(run.started_at)) / 1000;
    const eta = (elapsed / epoch) * (epochs - epoch);
    text += ` · ETA ${eta < 90 ? `${Math.round(eta)} s` : `${Math.round(eta / 60)} min`}`;
  }
  return text;
}

export async function render(main, params) {
  const state = Object.fromEntries(params.entries());
  state.sort = state.sort || "-created_at";
  const selected = new Set();
  const table = el("table", { id: "runs-table" });
  const count = el("span", { class: "muted" });
  // Outside the filter form: a button inside it submitted the form instead (issue 27).
  const compareButton = el("button", { type: "button", class: "primary", id: "compare-selected", disabled: true,
    onclick: () => { location.hash = `#/compare?runs=${[...selected].join(",")}`; } },
  "Compare selected");
  let chosen = chosenColumns();
  const chooser = columnChooser(() => chosen, (next) => {
    chosen = next;
    localStorage.setItem(STORED, JSON.stringify(next));
    draw(lastItems);
  });
  const filters = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(filters).entries());
    const q = new URLSearchParams({ ...values, sort: state.sort });
    for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
    location.hash = `#/runs?${q}`;
  } });
  for (const [key, label, kind] of FILTERS) {
    const input = Array.isArray(kind)
      ? el("select", { name: key }, kind.map((v) => el("option", { value: v, selected: state[key] === v }, v || "any")))
      : el("input", { name: key, value: state[key] || "", size: key === "where" ? 34 : key === "q" ? 20 : 10 });
    filters.append(el("label", {}, label, input));
  }
  filters.append(el("button", { type: "submit" }, "Filter"));
  const error = el("p", { class: "error", id: "runs-error" });
  main.append(el("h1", {}, "Runs"), filters,
    el("div", { class: "controls" }, compareButton, chooser, count), error, table);

  let timer = null;
  let stopped = false;
  let lastItems = [];
  async function load() {
    const query = { ...state, limit: 100 };
    let page;
    try {
      page = await get("/runs", query);
    } catch (e) {
      if (e.status !== 422) throw e;
      error.textContent = `The filter was refused: ${e.message}`; // the API names the field
      table.dataset.loaded = location.hash;
      return;
    }
    error.textContent = "";
    lastItems = page.items;
    draw(page.items);
    table.dataset.loaded = location.hash; // for the tests: this query's answer is drawn
    count.textContent = `${page.items.length} run(s)${page.next_cursor ? " (first 100)" : ""}`;
    const live = page.items.some((r) => r.status === "queued" || r.status === "running");
    if (!stopped) timer = setTimeout(() => load().catch(() => null), live ? 1500 : 5000);
  }

  function draw(items) {
    const columns = [...COLUMNS.filter(([label]) => chosen.columns.includes(label)),
      ...chosen.params.map((path) => [path, null, (r) => shown(valueAt(settingsOf(r), path))])];
    const head = el("tr", {}, el("th", {}, ""), columns.map(([label, key]) => {
      if (!key) return el("th", {}, label);
      const arrow = state.sort === key ? " ↑" : state.sort === `-${key}` ? " ↓" : "";
      return el("th", { class: "sortable", onclick: () => {
        const q = new URLSearchParams(location.hash.split("?")[1] || "");
        q.set("sort", state.sort === `-${key}` ? key : `-${key}`);
        location.hash = `#/runs?${q}`;
      } }, label + arrow);
    }));
    const rows = items.map((run) => el("tr", { "data-run": run.id },
      el("td", {}, el("input", { type: "checkbox", checked: selected.has(run.id), onchange: (e) => {
        if (e.target.checked) selected.add(run.id); else selected.delete(run.id);
        compareButton.disabled = selected.size < 2;
      } })),
      columns.map(([label, , value]) => {
        const v = value(run);
        if (label === "name") {
          return el("td", {}, el("a", { href: `#/runs/${run.id}` }, v),
            run.study_id ? el("a", { class: "muted", href: `#/studies/${run.study_id}` }, ` study ${run.study_id}`) : null);
        }
        return el("td", { class: typeof v === "string" && /^[-\d.–]/.test(v) ? "num" : "" }, v);
      })));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  }

  await load();
  return () => { stopped = true; clearTimeout(timer); };
}

// Which columns the table shows: the built-in ones, and any dotted spec paths (model.dropout).
function columnChooser(current, change) {
  const box = el("details", { class: "chooser", id: "column-chooser" }, el("summary", {}, "Columns"));
  const body = el("div", { class: "card" });
  const render = () => {
    const { columns, params } = current();
    const paths = el("input", { id: "param-columns", value: params.join(","), size: 34,
      placeholder: "spec paths: model.dropout,optimizer.lr" });
    body.replaceChildren(...COLUMNS.map(([label]) => el("label", { class: "check" },
      el("input", { type: "checkbox", checked: columns.includes(label), onchange: (e) => {
        const next = e.target.checked ? [...columns, label] : columns.filter((c) => c !== label);
        change({ columns: COLUMNS.map(([l]) => l).filter((l) => next.includes(l)), params });
        render();
      } }), label)),
    el("label", {}, "parameter columns ", paths,
      el("button", { type: "button", id: "param-apply", onclick: () => {
        change({ columns, params: paths.value.split(",").map((p) => p.trim()).filter(Boolean) });
        render();
      } }, "Show")));
  };
  render();
  box.append(body);
  return box;
}
