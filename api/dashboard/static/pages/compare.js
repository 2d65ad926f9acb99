// Several runs side by side: their curves overlaid, one parameter's weight histograms at a
// chosen epoch on shared bins, and the summary table.
import { el, fmt, get } from "../api.js";
import { PALETTE, bars, lines } from "../charts.js";
import { differing, settingsOf, shown, valueAt } from "./spec.js";

const SUMMARY = [["best epoch", "best_epoch"], ["min val loss", "min_val_loss"],
  ["final gap", "final_gap"], ["val acc (evaluated)", "val_accuracy"],
  ["final val acc", "final_val_accuracy"], ["final train loss", "final_train_loss"],
  ["onset", "onset_epoch"], ["verdict", "verdict"]];

export async function render(main, params) {
  const ids = (params.get("runs") || "").split(",").map(Number).filter((n) => n > 0);
  if (ids.length < 1) {
    main.append(el("h1", {}, "Compare"), el("p", { class: "muted" },
      "Select two or more runs on the ", el("a", { href: "#/runs" }, "Runs"), " page (or a study's members), then press “Compare selected”."));
    return null;
  }
  const keys = "train_loss,val_loss,train_accuracy,val_accuracy,gap,train_rmse,val_rmse";
  const data = await get("/compare", { runs: ids.join(","), keys });
  const lossBox = el("div", { class: "chart tall", id: "chart-compare-loss" });
  const accBox = el("div", { class: "chart tall", id: "chart-compare-accuracy" });
  const gapBox = el("div", { class: "chart tall", id: "chart-compare-gap" });
  const histBox = el("div", { class: "chart tall", id: "chart-compare-hist" });
  const table = el("table", { id: "compare-table" });
  const diff = el("table", { id: "compare-diff" });
  const param = el("select", { id: "compare-param" });
  const step = el("input", { type: "number", id: "compare-step", min: 1, style: "width:6em" });
  main.append(el("h1", {}, `Compare ${ids.length} runs`),
    el("section", { class: "card" }, el("h2", {}, "What differs, and what it did"), diff),
    el("section", { class: "card" }, el("h2", {}, "Curves"), el("div", { class: "grid" }, lossBox, accBox, gapBox)),
    el("section", { class: "card" }, el("h2", {}, "Weight histograms on shared bins"),
      el("div", { class: "controls" }, el("label", {}, "parameter ", param), el("label", {}, "epoch ", step)), histBox),
    el("section", { class: "card" }, el("h2", {}, "Summary"), table));

  const label = (r) => `#${r.run.id} ${r.run.name}`;
  const overlay = (box, name, title, yName, pick) => {
    const series = [];
    data.runs.forEach((r, i) => {
      for (const s of r.series) {
        if (!pick(s.key) || !s.steps.length) continue;
        series.push({ name: `${label(r)} ${s.key}`, steps: s.steps, values: s.values,
          dashed: s.key.startsWith("train"), color: PALETTE[i % PALETTE.length] });
      }
    });
    if (series.length) lines(name, box, { title, yName, series });
    else box.hidden = true;
  };
  overlay(lossBox, "compare-loss", "Loss (train dashed, validation solid)", "loss", (k) => k.endsWith("loss"));
  overlay(accBox, "compare-accuracy", "Accuracy / RMSE", "value", (k) => /accuracy|rmse/.test(k));
  overlay(gapBox, "compare-gap", "Generalization gap", "val − train", (k) => k === "gap");

  table.replaceChildren(el("tr", {}, el("th", {}, "run"), SUMMARY.map(([l]) => el("th", { class: "num" }, l))),
    ...data.runs.map((r) => el("tr", {}, el("td", {}, el("a", { href: `#/runs/${r.run.id}` }, label(r))),
      SUMMARY.map(([, k]) => el("td", { class: "num" }, k === "verdict" ? r.summary[k] || "–" : fmt(r.summary[k]))))));

  drawDiff(diff, data.runs, label);

  // Parameters every compared run has histograms of, and the epochs they share.
  const indexes = await Promise.all(ids.map((id) => get(`/runs/${id}/histograms`)));
  const common = Object.keys(indexes[0].params).filter((p) => indexes.every((x) => x.params[p]));
  if (!common.length) {
    histBox.closest("section").hidden = true; // no parameter has histograms in every run
    performance.mark("fitlens:charts-drawn");
    return null;
  }
  param.replaceChildren(...common.map((p) => el("option", { value: p }, p)));
  param.value = common.find((p) => p.endsWith("weight")) || common[0];
  const lastShared = () => Math.min(...indexes.map((x) => Math.max(...x.params[param.value])));
  step.value = lastShared();
  async function drawHist() {
    const o = await get("/histograms/overlay", { runs: ids.join(","), param: param.value, step: step.value, bins: 48 });
    const categories = o.edges.slice(0, -1).map((e, i) => ((e + o.edges[i + 1]) / 2).toPrecision(3));
    bars("compare-hist", histBox, { title: `${o.param} at epoch ${step.value}`, xName: "weight value",
      yName: "count", categories, series: o.runs.map((r) => ({ name: `#${r.run_id} ${r.name}`, values: r.counts, overlap: true })) });
  }
  param.addEventListener("change", () => { step.value = lastShared(); drawHist(); });
  step.addEventListener("change", drawHist);
  await drawHist();
  performance.mark("fitlens:charts-drawn");
  return null;
}

// Only the dotted paths whose values differ between the runs (their spec, or an own-loop
// run's params), next to what each run's curves say; shifts are against the first run.
function drawDiff(table, runs, label) {
  const trees = runs.map((r) => settingsOf(r.run));
  const paths = differing(trees);
  const first = runs[0].summary;
  const shift = (r, key) => {
    const a = r.summary[key];
    const b = first[key];
    if (r === runs[0] || typeof a !== "number" || typeof b !== "number") return "";
    const d = a - b;
    return ` (${d >= 0 ? "+" : ""}${Number.isInteger(d) ? d : d.toFixed(4)})`;
  };
  const results = [["onset epoch", "onset_epoch"], ["final gap", "final_gap"], ["min val loss", "min_val_loss"],
    ["verdict", "verdict"]];
  table.replaceChildren(
    el("tr", {}, el("th", {}, "setting"), runs.map((r) => el("th", {}, el("a", { href: `#/runs/${r.run.id}` }, label(r))))),
    ...(paths.length ? paths.map((p) => el("tr", { "data-path": p }, el("td", {}, el("b", {}, p)),
      trees.map((t) => el("td", {}, shown(valueAt(t, p))))))
      : [el("tr", {}, el("td", { colspan: runs.length + 1, class: "muted" }, "The same settings: the runs differ by chance alone."))]),
    ...results.map(([name, key]) => el("tr", { class: "result" }, el("td", {}, name),
      runs.map((r) => el("td", { class: "num" }, key === "verdict" ? r.summary[key] || "–" : fmt(r.summary[key]) + shift(r, key))))));
}
