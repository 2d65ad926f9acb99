// The team's run history: the API's filters, live status and progress, sort by summary values,
// and a selection to compare.
import { el, fmt, get, statusBadge } from "../api.js";

const FILTERS = [
  ["project", "project", "text"],
  ["status", "status", ["", "queued", "running", "succeeded", "failed", "cancelled"]],
  ["tag", "tag", "text"],
  ["created_by", "creator", "text"],
  ["verdict", "verdict", ["", "overfitting", "still improving", "good fit", "underfitting", "not learning", "unstable", "diverged"]],
  ["where", "spec (e.g. optimizer.name=adam)", "text"],
  ["name", "name contains", "text"],
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
  const compareButton = el("button", { class: "primary", id: "compare-selected", disabled: true,
    onclick: () => { location.hash = `#/compare?runs=${[...selected].join(",")}`; } },
  "Compare selected");
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
      : el("input", { name: key, value: state[key] || "", size: key === "where" ? 28 : 12 });
    filters.append(el("label", {}, label, input));
  }
  filters.append(el("button", { type: "submit" }, "Filter"), compareButton);
  main.append(el("h1", {}, "Runs"), filters, count, table);

  let timer = null;
  let stopped = false;
  async function load() {
    const query = { ...state, limit: 100 };
    const page = await get("/runs", query);
    draw(page.items);
    count.textContent = `${page.items.length} run(s)${page.next_cursor ? " (first 100)" : ""}`;
    const live = page.items.some((r) => r.status === "queued" || r.status === "running");
    if (!stopped) timer = setTimeout(() => load().catch(() => null), live ? 1500 : 5000);
  }

  function draw(items) {
    const head = el("tr", {}, el("th", {}, ""), COLUMNS.map(([label, key]) => {
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
      COLUMNS.map(([label, , value]) => {
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
