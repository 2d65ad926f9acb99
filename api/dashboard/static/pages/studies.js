// The team's studies, newest first: what each varies, its members per status, its best
// configuration so far, who made it and when. Kept live while any member is unfinished.
import { el, fmt, get } from "../api.js";

const ORDER = ["running", "queued", "succeeded", "failed", "cancelled"];

function progress(status) {
  return ORDER.filter((s) => status[s]).map((s) => el("span", { class: `status ${s}` }, `${status[s]} ${s}`));
}

export async function render(main, params) {
  const table = el("table", { id: "studies-table" });
  const more = el("button", { id: "studies-more", hidden: true }, "Older studies");
  const search = el("input", { name: "name", value: params.get("name") || "", placeholder: "name contains", size: 20 });
  const form = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    location.hash = search.value ? `#/studies?name=${encodeURIComponent(search.value)}` : "#/studies";
  } }, el("label", {}, "name", search), el("button", { type: "submit" }, "Filter"));
  main.append(el("h1", {}, "Studies"), form, table, more);

  let items = [];
  let before = null;
  let timer = null;
  let stopped = false;
  const head = el("tr", {}, ["id", "name", "varies", "members", "best configuration so far", "min val loss",
    "created by", "created"].map((h) => el("th", { class: h === "min val loss" ? "num" : "" }, h)));

  function draw() {
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, items.map((s) => el("tr", { "data-study": s.id },
      el("td", {}, s.id),
      el("td", {}, el("a", { href: `#/studies/${s.id}` }, s.name)),
      el("td", { class: "muted wrap" }, s.varied.join(", ") || "replicates"),
      el("td", {}, `${s.members}: `, progress(s.status)),
      el("td", { class: "wrap" }, s.best ? s.best.name : "–"),
      el("td", { class: "num" }, s.best ? fmt(s.best.min_val_loss) : "–"),
      el("td", {}, s.created_by || "–"),
      el("td", {}, new Date(s.created_at).toLocaleString())))));
    if (!items.length) table.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No studies yet: POST /api/v1/studies, or start a fix study from an overfitting run.")));
  }

  async function load(older = false) {
    const page = await get("/studies", { name: params.get("name"), before: older ? before : null, limit: 50 });
    items = older ? [...items, ...page.items] : page.items;
    if (!older || page.next_before !== null) before = page.next_before;
    more.hidden = before === null;
    draw();
  }

  async function poll() {
    if (stopped) return;
    const live = items.some((s) => !s.done);
    if (live) await load().catch(() => null);
    timer = setTimeout(poll, live ? 2000 : 10000);
  }
  more.addEventListener("click", () => load(true));
  await load();
  timer = setTimeout(poll, 2000);
  return () => { stopped = true; clearTimeout(timer); };
}
