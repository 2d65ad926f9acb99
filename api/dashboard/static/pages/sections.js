// A run's weight histograms, evaluation and events: drawn on the run page (and kept live).
import { el, fmt, get, num } from "../api.js";
import { bars, heat, lines } from "../charts.js";

const HEAT_STEPS = 60; // epochs shown in a histogram heat-map (evenly spread over the run)
const HEAT_BINS = 40;

function spread(steps, most) {
  if (steps.length <= most) return steps;
  const picked = [];
  for (let i = 0; i < most; i++) picked.push(steps[Math.round((i * (steps.length - 1)) / (most - 1))]);
  return [...new Set(picked)];
}

const centre = (edges, i) => ((edges[i] + edges[i + 1]) / 2).toPrecision(3);

// Per-layer weight histograms: a heat-map over epochs (epoch x value, as in the articles'
// histogram figures) and one epoch's histogram, for the parameter chosen.
export function histograms(runId) {
  const select = el("select", { id: "hist-param" });
  const slider = el("input", { type: "range", id: "hist-step", min: 0, max: 0, value: 0 });
  const stepLabel = el("span", { class: "muted" });
  const overTime = el("div", { class: "chart tall", id: "chart-hist-heat" });
  const oneEpoch = el("div", { class: "chart tall", id: "chart-hist-epoch" });
  const node = el("section", { class: "card" }, el("h2", {}, "Weight histograms"),
    el("div", { class: "controls" }, el("label", {}, "parameter ", select),
      el("label", {}, "epoch ", slider), stepLabel),
    el("div", { class: "grid" }, overTime, oneEpoch));
  let index = {};
  let followLast = true;

  async function drawEpoch() {
    const steps = index[select.value] || [];
    const step = steps[Number(slider.value)];
    if (step === undefined) return;
    stepLabel.textContent = `epoch ${step}`;
    const h = (await get(`/runs/${runId}/histograms`, { param: select.value, steps: step })).steps[0];
    const categories = h.counts.map((_, i) => centre(h.edges, i));
    bars("hist-epoch", oneEpoch, { title: `${select.value} at epoch ${step}`, xName: "weight value",
      yName: "count", categories, series: [{ name: `epoch ${step}`, values: h.counts }] });
  }

  async function drawHeat() {
    const steps = spread(index[select.value] || [], HEAT_STEPS);
    if (!steps.length) return;
    const data = await get(`/runs/${runId}/histograms`, { param: select.value,
      steps: steps.join(","), shared_bins: HEAT_BINS });
    const edges = data.steps[0].edges;
    const y = data.steps[0].counts.map((_, i) => centre(edges, i));
    const cells = [];
    data.steps.forEach((s, x) => s.counts.forEach((c, yi) => cells.push([x, yi, Math.log10(1 + c)])));
    heat("hist-heat", overTime, { title: `${select.value} over epochs (log10 1+count)`,
      xName: "epoch", yName: "weight value", x: data.steps.map((s) => s.step), y, cells,
      valueName: "log10(1+n)" });
  }

  async function refresh(read) {
    index = (await (read || get(`/runs/${runId}/histograms`))).params;
    const params = Object.keys(index);
    if (!params.length) { node.hidden = true; return; }
    node.hidden = false;
    if (!params.includes(select.value)) {
      select.replaceChildren(...params.map((p) => el("option", { value: p }, p)));
      select.value = params.find((p) => p.endsWith("weight")) || params[0];
    }
    const steps = index[select.value];
    slider.max = steps.length - 1;
    if (followLast) slider.value = steps.length - 1;
    await Promise.all([drawHeat(), drawEpoch()]);
  }

  select.addEventListener("change", () => { followLast = true; refresh(); });
  slider.addEventListener("input", () => { followLast = Number(slider.value) === Number(slider.max); drawEpoch(); });
  return { node, refresh };
}

// The end-of-run evaluation: confusion matrix, per-class precision/recall/F1, ROC curves with
// AUC, and the weight matrices as heat-maps (or, for regression, its error figures).
export function evaluation(runId) {
  const node = el("section", { class: "card", id: "evaluation" }, el("h2", {}, "Evaluation"),
    el("p", { class: "muted" }, "Not evaluated yet: the evaluation comes at the end of the run."));

  async function refresh() {
    let body;
    try {
      body = (await get(`/runs/${runId}/evaluation`)).evaluation;
    } catch (e) {
      if (e.status === 404) return false;
      throw e;
    }
    const charts = el("div", { class: "grid" });
    const facts = el("div", { class: "facts" });
    for (const [label, key] of [["epoch evaluated", "epoch"], ["accuracy", "accuracy"],
      ["macro F1", "macro_f1"], ["macro AUC", "macro_auc"], ["RMSE", "rmse"], ["MAE", "mae"], ["R²", "r2"]]) {
      if (body[key] !== null && body[key] !== undefined) facts.append(el("div", {}, el("span", {}, label), fmt(body[key])));
    }
    node.replaceChildren(el("h2", {}, "Evaluation"), facts, charts);
    if (body.confusion_matrix) {
      const labels = body.labels;
      const cells = [];
      body.confusion_matrix.forEach((row, t) => row.forEach((n, p) => cells.push([p, labels.length - 1 - t, n])));
      const box = el("div", { class: "chart tall", id: "chart-confusion" });
      charts.append(box);
      heat("confusion", box, { title: "Confusion matrix", xName: "predicted", yName: "true",
        x: labels, y: [...labels].reverse(), cells, labels: true, valueName: "samples" });
    }
    if (body.per_class) {
      const box = el("div", { class: "chart tall", id: "chart-per-class" });
      charts.append(box);
      bars("per-class", box, { title: "Per class", xName: "class", yName: "score", max: 1,
        categories: body.per_class.map((c) => c.label),
        series: ["precision", "recall", "f1"].map((k) => ({ name: k, values: body.per_class.map((c) => c[k]) })) });
    }
    if (body.roc && body.roc.length) {
      const box = el("div", { class: "chart tall", id: "chart-roc" });
      charts.append(box);
      const series = body.roc.map((r) => ({ name: `${r.label} (AUC ${fmt(r.auc, 3)})`,
        steps: r.fpr.map(num), values: r.tpr }));
      series.push({ name: "chance", steps: [0, 1], values: [0, 1], dashed: true, color: "#aaa" });
      lines("roc", box, { title: "ROC curves", xName: "false positive rate",
        yName: "true positive rate", series });
    }
    if (body.pr && body.pr.length) {
      const box = el("div", { class: "chart tall", id: "chart-pr" });
      charts.append(box);
      lines("pr", box, { title: `Precision-recall (macro AP ${fmt(body.macro_average_precision, 3)})`,
        xName: "recall", yName: "precision", series: body.pr.map((r) => ({
          name: `${r.label} (AP ${fmt(r.average_precision, 3)})`, steps: r.recall.map(num), values: r.precision })) });
    }
    if (body.misclassified && body.misclassified.length) node.append(mistakes(body.misclassified));
    for (const [i, w] of (body.weight_matrices || []).entries()) {
      const box = el("div", { class: "chart tall", id: `chart-weights-${i}` });
      charts.append(box);
      const cells = [];
      w.values.forEach((row, r) => row.forEach((v, c) => { const x = num(v); if (Number.isFinite(x)) cells.push([c, r, x]); }));
      heat(`weights-${i}`, box, { title: `${w.param} ${w.shape.join("×")} (downsampled)`,
        xName: "input", yName: "unit", x: w.values[0].map((_, c) => c), y: w.values.map((_, r) => r),
        cells, diverging: true, valueName: "weight" });
    }
    return true;
  }
  return { node, refresh };
}

// The most confident mistakes: each example (its pixels, where the data are images), what it
// is and what the model said, with how sure it was.
function mistakes(list) {
  const grid = el("div", { class: "tiles", id: "mistakes" });
  for (const m of list) {
    const figure = el("figure", {});
    if (m.image) figure.append(grayscale(m.image));
    figure.append(el("figcaption", {}, `#${m.index}: ${m.true} → ${m.predicted} (${(100 * m.confidence).toFixed(0)}%)`));
    grid.append(figure);
  }
  grid.dataset.tiles = String(list.length);
  return el("div", {}, el("h3", {}, "Most confident mistakes"), grid);
}

function grayscale(channels) {
  const rows = channels[0].length;
  const cols = channels[0][0].length;
  const canvas = el("canvas", { width: cols, height: rows, class: "tile" });
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // Colour images as they are; one channel as dark ink on white.
      const rgb = channels.length === 3 ? channels.map((ch) => ch[r][c]) : [1, 1, 1].map(() => 1 - channels[0][r][c]);
      pixels.data.set([...rgb.map((v) => 255 * v), 255], (r * cols + c) * 4);
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

export function events(runId) {
  const table = el("table", { id: "events-table" });
  const node = el("section", { class: "card" }, el("h2", {}, "Events"), table);
  async function refresh() {
    const list = await get(`/runs/${runId}/events`);
    table.replaceChildren(el("tr", {}, el("th", {}, "when"), el("th", {}, "kind"), el("th", {}, "epoch"), el("th", {}, "detail")),
      ...list.map((e) => el("tr", {}, el("td", {}, new Date(e.created_at).toLocaleTimeString()),
        el("td", {}, e.kind), el("td", {}, e.step ?? "–"), el("td", { class: "wrap" }, JSON.stringify(e.payload)))));
    return list;
  }
  return { node, refresh };
}
