// A study: mean ± std bands per configuration, the comparison table, the learning curve, and
// each member's status kept live from the study's stream.
import { el, fmt, follow, get, num } from "../api.js";
import { bands, lines } from "../charts.js";

const COLUMNS = [["min val loss", "min_val_loss"], ["best epoch", "best_epoch"],
  ["val accuracy", "val_accuracy"], ["final gap", "final_gap"], ["onset", "onset_epoch"]];

export async function render(main, studyId) {
  const study = await get(`/studies/${studyId}`);
  const status = el("p", { id: "study-status" });
  const bandGrid = el("div", { class: "grid" });
  const table = el("table", { id: "study-table" });
  const learning = el("div", { class: "chart tall", id: "chart-learning-curve" });
  main.append(el("h1", {}, `Study #${study.id} ${study.name}`), status,
    el("section", { class: "card" }, el("h2", {}, "Mean ± std over the members"), bandGrid),
    el("section", { class: "card" }, el("h2", {}, "Comparison"), table));
  if (study.design.learning_curve) main.append(el("section", { class: "card" }, el("h2", {}, "Learning curve"), learning));

  const members = {};
  const showStatus = () => {
    const counts = {};
    for (const m of Object.values(members)) counts[m.status] = (counts[m.status] || 0) + 1;
    status.textContent = `${study.members} members: ` + Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
  };

  async function draw() {
    const [curves, rows] = await Promise.all([
      get(`/studies/${studyId}/curves`, { keys: "val_loss,train_loss,val_accuracy,gap" }),
      get(`/studies/${studyId}/table`),
    ]);
    bandGrid.replaceChildren();
    for (const key of ["val_loss", "train_loss", "val_accuracy", "gap"]) {
      const groups = [];
      for (const c of curves.configs) {
        const s = c.curves.find((x) => x.key === key);
        if (s && s.steps.length) groups.push({ name: c.name || `config ${c.config}`, steps: s.steps, mean: s.mean, std: s.std });
      }
      if (!groups.length) continue;
      const box = el("div", { class: "chart tall", id: `chart-band-${key}` });
      bandGrid.append(box);
      bands(`band-${key}`, box, { title: key, yName: key, groups });
    }
    table.replaceChildren(el("tr", {}, el("th", {}, "configuration"), el("th", {}, "members"),
      COLUMNS.map(([l]) => el("th", { class: "num" }, l)), el("th", {}, "verdicts")),
    ...rows.rows.map((r) => el("tr", {}, el("td", {}, r.name || `config ${r.config}`),
      el("td", {}, Object.entries(r.status).map(([k, n]) => `${n} ${k}`).join(", ")),
      COLUMNS.map(([, k]) => el("td", { class: "num" }, r.values[k] ? `${fmt(r.values[k].mean)} ± ${fmt(r.values[k].std)}` : "–")),
      el("td", {}, Object.entries(r.verdicts).map(([k, n]) => `${n} ${k}`).join(", ")))));
    if (study.design.learning_curve) {
      const lc = await get(`/studies/${studyId}/learning_curve`);
      const series = [];
      for (const key of ["final_train_loss", "final_val_loss"]) {
        const pts = lc.points.filter((p) => p.values[key]);
        series.push({ name: key, steps: pts.map((p) => p.n_train ?? p.size), values: pts.map((p) => num(p.values[key].mean)), dashed: key.includes("train") });
      }
      lines("learning-curve", learning, { title: "Loss against training-set size", xName: `training examples (budget: ${lc.budget})`, yName: "loss", series });
    }
  }

  await draw();
  performance.mark("fitlens:charts-drawn");
  let timer = null;
  const source = follow(`/studies/${studyId}/stream`, {
    member: (m) => {
      const was = members[m.run_id]?.status;
      members[m.run_id] = m;
      showStatus();
      if (was && was !== m.status && !timer) timer = setTimeout(() => { timer = null; draw(); }, 1500);
    },
  });
  return () => { source.close(); clearTimeout(timer); };
}
