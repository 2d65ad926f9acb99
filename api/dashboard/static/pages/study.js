// A study: which fix helps beyond noise (a forest plot of the effects with their corrected
// intervals), the bands (small multiples against the baseline), the learning curve with its
// fit or the regularization path, the table, every member, and acting on it (cancel, retry,
// the report). Members' statuses stay live from the study's stream.
import { call, canWrite, el, fmt, follow, get, statusBadge } from "../api.js";
import { bands, draw } from "../charts.js";
import { forestOption, learningOption, pathOption, withoutSize } from "../figures.js";

const COLUMNS = [["min val loss", "min_val_loss"], ["best epoch", "best_epoch"],
  ["val accuracy", "val_accuracy"], ["final gap", "final_gap"], ["onset", "onset_epoch"]];
const EFFECTS = ["min_val_loss", "final_gap", "val_accuracy", "onset_epoch", "gap_at_best"];
const SHOWN = new Set(["min_val_loss", "final_gap"]);

export async function render(main, studyId) {
  const study = await get(`/studies/${studyId}`);
  const nameOf = (i) => study.configs[i]?.name ?? `configuration ${i}`;
  const status = el("p", { id: "study-status" });
  const message = el("p", { class: "error", id: "study-message" });
  const forests = el("div", { class: "grid", id: "forests" });
  const small = el("div", { class: "grid small", id: "band-multiples" });
  const bandGrid = el("div", { class: "grid" });
  const table = el("table", { id: "study-table" });
  const memberTable = el("table", { id: "members-table" });
  const answers = el("div", { id: "study-answers" });
  const picks = el("div", { class: "controls" }, "effects on: ", EFFECTS.map((k) => el("label", { class: "check" },
    el("input", { type: "checkbox", checked: SHOWN.has(k), onchange: (e) => {
      if (e.target.checked) SHOWN.add(k); else SHOWN.delete(k);
      drawForests();
    } }), k)));
  main.append(el("h1", {}, `Study #${study.id} ${study.name}`),
    el("p", { class: "muted" }, `Varies ${study.varied.join(", ") || "nothing but the replicates"}; baseline: ${nameOf(study.baseline)}.`),
    status, actions(study, message), message,
    el("section", { class: "card" }, el("h2", {}, "Which change helps, beyond noise"), picks, forests),
    answers,
    el("section", { class: "card" }, el("h2", {}, "Validation loss: each configuration against the baseline (grey)"), small),
    el("section", { class: "card" }, el("h2", {}, "Mean ± std over the members (hover a name to single it out)"), bandGrid),
    el("section", { class: "card" }, el("h2", {}, "Comparison"), table),
    el("section", { class: "card" }, el("h2", {}, "Members"), memberTable));

  let effects = null;
  function drawForests() {
    forests.replaceChildren();
    if (!effects || !effects.configs.some((c) => c.config !== effects.baseline)) return;
    for (const summary of EFFECTS.filter((k) => SHOWN.has(k))) {
      const box = el("div", { class: "chart", id: `chart-forest-${summary}` });
      box.style.height = `${120 + 34 * effects.configs.filter((c) => c.config !== effects.baseline).length}px`;
      forests.append(box);
      draw(`forest-${summary}`, box, forestOption({ title: `Effect on ${summary}`, effects, summary,
        baselineName: effects.baseline_name }));
    }
  }

  async function drawAll() {
    const [curves, rows, fx, runs] = await Promise.all([
      get(`/studies/${studyId}/curves`, { keys: "val_loss,train_loss,val_accuracy,gap" }),
      get(`/studies/${studyId}/table`),
      get(`/studies/${studyId}/effects`),
      get("/runs", { study: studyId, limit: 500, sort: "id" }),
    ]);
    effects = fx;
    drawForests();
    drawBands(curves, small, bandGrid, study, nameOf);
    drawTable(table, rows);
    drawMembers(memberTable, runs.items, nameOf);
    await drawAnswers(answers, study, studyId, nameOf);
  }

  const members = {};
  const showStatus = () => {
    const counts = {};
    for (const m of Object.values(members)) counts[m.status] = (counts[m.status] || 0) + 1;
    status.replaceChildren(`${study.members} members: `, ...Object.entries(counts).map(([k, n]) => el("span", { class: `status ${k}` }, `${n} ${k}`)));
  };
  await drawAll();
  performance.mark("fitlens:charts-drawn");
  let timer = null;
  const source = follow(`/studies/${studyId}/stream`, {
    member: (m) => {
      const was = members[m.run_id]?.status;
      members[m.run_id] = m;
      showStatus();
      if (was && was !== m.status && !timer) timer = setTimeout(() => { timer = null; drawAll(); }, 1500);
    },
  });
  return () => { source.close(); clearTimeout(timer); };
}

function actions(study, message) {
  const act = (what, path) => async () => {
    message.textContent = "";
    try {
      await call(path, { method: "POST" });
    } catch (e) {
      message.textContent = `${what} refused: ${e.message}`;
    }
  };
  const report = el("a", { class: "button", id: "study-report", href: `/api/v1/studies/${study.id}/report.html`,
    download: `fitlens-study-${study.id}.html` }, "Download the report");
  if (!canWrite(study.team_id)) return el("div", { class: "controls" }, report);
  return el("div", { class: "controls", id: "study-actions" },
    el("button", { id: "study-cancel", onclick: act("Cancel", `/studies/${study.id}/cancel`) }, "Cancel unfinished members"),
    el("button", { id: "study-retry", onclick: act("Retry", `/studies/${study.id}/retry`) }, "Retry failed members"),
    report);
}

// val_loss as small multiples (each configuration over the baseline's band, so close ones stay
// apart), then every key with all configurations, a hover singling one out.
function drawBands(curves, small, grid, study, nameOf) {
  const group = (c, key, faint) => {
    const s = c.curves.find((x) => x.key === key);
    return s && s.steps.length ? { name: nameOf(c.config), steps: s.steps, mean: s.mean, std: s.std, faint,
      color: faint ? "#7f8c8d" : undefined } : null;
  };
  const base = curves.configs.find((c) => c.config === study.baseline);
  small.replaceChildren();
  for (const c of curves.configs) {
    if (c.config === study.baseline || curves.configs.length > 24) continue;
    const groups = [group(c, "val_loss", false), base && group(base, "val_loss", true)].filter(Boolean);
    if (!groups.length) continue;
    const box = el("div", { class: "chart", id: `chart-multiple-${c.config}` });
    small.append(box);
    bands(`multiple-${c.config}`, box, { title: nameOf(c.config), yName: "val loss", groups });
  }
  grid.replaceChildren();
  for (const key of ["val_loss", "train_loss", "val_accuracy", "gap"]) {
    const groups = curves.configs.map((c) => group(c, key, false)).filter(Boolean);
    if (!groups.length) continue;
    const box = el("div", { class: "chart tall", id: `chart-band-${key}` });
    grid.append(box);
    bands(`band-${key}`, box, { title: key, yName: key, groups });
  }
}

function drawTable(table, rows) {
  table.replaceChildren(el("tr", {}, el("th", {}, "configuration"), el("th", {}, "members"),
    COLUMNS.map(([l]) => el("th", { class: "num" }, l)), el("th", {}, "verdicts")),
  ...rows.rows.map((r) => el("tr", {}, el("td", { class: "wrap" }, r.name),
    el("td", {}, Object.entries(r.status).map(([k, n]) => `${n} ${k}`).join(", ")),
    COLUMNS.map(([, k]) => el("td", { class: "num" }, meanStd(r.values[k]))),
    el("td", {}, Object.entries(r.verdicts).map(([k, n]) => `${n} ${k}`).join(", ")))));
}

function meanStd(stat) {
  if (!stat || stat.mean === null) return "–";
  return stat.std === null ? fmt(stat.mean) : `${fmt(stat.mean)} ± ${fmt(stat.std)}`;
}

function drawMembers(table, runs, nameOf) {
  const selected = new Set();
  const compare = el("button", { type: "button", class: "primary", id: "compare-members", disabled: true,
    onclick: () => { location.hash = `#/compare?runs=${[...selected].join(",")}`; } }, "Compare selected");
  table.replaceChildren(el("caption", {}, compare),
    el("tr", {}, ["", "run", "configuration", "status", "verdict", "min val loss"].map((h) => el("th", {}, h))),
    ...runs.map((r) => el("tr", { "data-run": r.id },
      el("td", {}, el("input", { type: "checkbox", onchange: (e) => {
        if (e.target.checked) selected.add(r.id); else selected.delete(r.id);
        compare.disabled = selected.size < 2;
      } })),
      el("td", {}, el("a", { href: `#/runs/${r.id}` }, r.name)),
      el("td", { class: "wrap" }, nameOf(r.study_config)),
      el("td", {}, statusBadge(r.status)),
      el("td", {}, r.diagnosis?.verdict || "–"),
      el("td", { class: "num" }, fmt(r.diagnosis?.min_val_loss)))));
}

// The learning curve (with its fitted law and "examples needed") or the regularization path,
// and which configuration validation picks, with what the test split says of that choice.
async function drawAnswers(node, study, studyId, nameOf) {
  node.replaceChildren();
  if (study.design.learning_curve) {
    const target = el("input", { type: "number", id: "gap-target", step: "any", min: 0, value: 0.05, style: "width:6em" });
    const needed = el("p", { id: "examples-needed" });
    const boxes = ["min_val_loss", "final_gap"].map((k) => el("div", { class: "chart tall", id: `chart-learning-${k}` }));
    const ask = async () => {
      const lc = await get(`/studies/${studyId}/learning_curve`, { x: Number(target.value) > 0 ? target.value : null });
      ["min_val_loss", "final_gap"].forEach((k, i) => draw(`learning-${k}`, boxes[i], learningOption({
        title: `${k} against training examples`, curve: lc, summary: k, configNames: (i) => withoutSize(nameOf(i)) })));
      const e = lc.examples_needed;
      needed.textContent = e ? (e.examples === null ? `How many examples bring the gap under ${e.target}? ${e.why}.`
        : `About ${e.examples.toLocaleString()} training examples bring the final gap under ${e.target}${e.extrapolated ? " (extrapolated beyond the sizes measured)" : ""}. ${e.why}`) : "";
    };
    target.addEventListener("change", ask);
    node.append(el("section", { class: "card", id: "learning-curve" }, el("h2", {}, "Learning curve"),
      el("div", { class: "controls" }, el("label", {}, "examples needed for a gap under ", target)), needed,
      el("div", { class: "grid" }, boxes)));
    await ask();
  }
  if (study.design.path) {
    const p = await get(`/studies/${studyId}/path`);
    const box = el("div", { class: "chart tall", id: "chart-path" });
    node.append(el("section", { class: "card", id: "path" }, el("h2", {}, "Regularization path"),
      el("p", { id: "path-lambdas" }, `λ_min = ${fmt(p.lambda_min, 6)} (lowest mean min val loss); λ_1se = ${fmt(p.lambda_1se, 6)} (the strongest within one standard error). ${p.method}`), box));
    draw("path", box, pathOption({ title: `${p.field}: min val loss along the path`, path: p }));
  }
  if (study.configs.length > 1) {
    const w = await get(`/studies/${studyId}/winner`);
    if (w.config !== null) {
      node.append(el("section", { class: "card", id: "winner" }, el("h2", {}, "What validation picks"),
        el("p", {}, `${w.name} has the best mean ${w.by}: validation accuracy ${fmt(w.val_accuracy.mean)}, ` +
          (w.test_accuracy.mean === null ? "no test split scored (spec dataset.test_fraction)" : `test accuracy ${fmt(w.test_accuracy.mean)}`) +
          (w.optimism_mean !== null ? `; validation is optimistic by ${fmt(w.optimism_mean)} [${fmt(w.optimism_ci_low)}, ${fmt(w.optimism_ci_high)}].` : "."),
        el("span", { class: "muted" }, ` ${w.method}`))));
    }
  }
}
