// One run: its curves (best epoch, overfitting onset and LR cuts marked), weight histograms,
// evaluation and events, all kept up to date from the run's stream while it trains.
import { el, fmt, follow, get, statusBadge } from "../api.js";
import { lines } from "../charts.js";
import { actions } from "./actions.js";
import { evaluation, events, histograms } from "./sections.js";
import { specSection } from "./spec.js";
import { perClass, weights } from "./weights.js";

const MAX_POINTS = 1000; // the API's min/max downsampling keeps long curves to this many
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
// Which chart each metric goes on (the first pattern that matches; the rest: "other").
// A per-batch curve (key ending "_batch") counts batches, not epochs: a chart of its own.
const GROUPS = [
  ["batch", "Training loss per batch", "loss", /_batch$/],
  ["loss", "Loss", "loss", /(^|_)loss(_|$)/],
  ["accuracy", "Accuracy", "accuracy", /accuracy$|acc$/],
  ["error", "RMSE / MAE", "error", /rmse|mae/],
  ["accgap", "Accuracy gap", "train − val accuracy", /^accuracy_gap$/],
  ["gap", "Generalization gap (loss)", "val − train loss", /gap/],
  ["lr", "Learning rate", "learning rate", /^lr$/],
  ["norm", "Weight norms ||W||", "norm", /^weight_norm\//],
  ["drift", "Drift from the start ||W − W₀|| / ||W₀||", "drift", /^drift\//],
  ["update", "Update-to-weight ratio per epoch", "ratio", /^update_ratio\//],
  ["other", "Other metrics", "value", /./],
];

function groupOf(key) {
  return GROUPS.find(([, , , pattern]) => pattern.test(key))[0];
}

export async function render(main, runId) {
  // Every read at once (one round trip's wait, not five), each section drawn as it comes.
  const curvesRead = get(`/runs/${runId}/curves`, { max_points: MAX_POINTS });
  const histRead = get(`/runs/${runId}/histograms`);
  let run = await get(`/runs/${runId}`);
  const header = el("div", { class: "card", id: "run-header" });
  const curveBoxes = Object.fromEntries(GROUPS.map(([name]) => [name, el("div", { class: "chart", id: `chart-${name}` })]));
  const curveGrid = el("div", { class: "grid" });
  const hist = histograms(runId);
  const evaluated = evaluation(runId);
  const log = events(runId);
  const weightViews = weights(runId);
  const classes = perClass(runId);
  const act = actions(run, (next) => { run = { ...run, ...next }; drawHeader(); act.update(run); });
  main.append(header, act.node, await specSection(run),
    el("section", { class: "card" }, el("h2", {}, "Curves"), curveGrid),
    classes.node, hist.node, weightViews.node, evaluated.node, log.node);

  let curves = {}; // key -> {steps, values, total}
  let lrCuts = [];
  let stopped = null; // the early_stopped event: where the stopping rule fired
  let zoomed = null;

  function drawHeader() {
    const d = run.diagnosis;
    const { epoch, epochs } = run.progress;
    header.replaceChildren(
      el("h1", {}, `#${run.id} ${run.name} `, statusBadge(run.status)),
      el("div", { class: "facts" },
        el("div", {}, el("span", {}, "progress"), epochs ? `epoch ${epoch}/${epochs}` : "–"),
        el("div", {}, el("span", {}, "project"), run.project),
        el("div", {}, el("span", {}, "verdict"), el("b", { class: `verdict ${d?.verdict || ""}`, id: "verdict" }, d?.verdict || "–")),
        el("div", {}, el("span", {}, "best epoch"), fmt(d?.best_epoch)),
        el("div", {}, el("span", {}, "onset"), fmt(d?.onset_epoch)),
        el("div", {}, el("span", {}, "min val loss"), fmt(d?.min_val_loss)),
        el("div", {}, el("span", {}, "final gap"), fmt(d?.final_gap)),
        el("div", {}, el("span", {}, "device"), run.device || "–"),
        el("div", {}, el("span", {}, "by"), run.created_by || "–"),
        run.study_id ? el("div", {}, el("span", {}, "study"), el("a", { href: `#/studies/${run.study_id}` }, `#${run.study_id}`)) : null),
      ...[d ? el("p", { class: "muted" }, d.why) : null,
        run.failure_reason ? el("p", { class: "error" }, run.failure_reason) : null].filter(Boolean));
  }

  function marks() {
    const d = run.diagnosis;
    const out = [];
    if (d?.best_epoch) out.push({ step: d.best_epoch, label: `best ${d.best_epoch}`, color: "#1e8449" });
    if (d?.onset_epoch) out.push({ step: d.onset_epoch, label: `onset ${d.onset_epoch}`, color: "#d35400" });
    if (d?.diverged_epoch) out.push({ step: d.diverged_epoch, label: "diverged", color: "#c0392b" });
    if (stopped) out.push({ step: stopped.step, label: `early stop${stopped.payload?.restored_epoch ? ` (restored ${stopped.payload.restored_epoch})` : ""}`, color: "#8e44ad" });
    for (const cut of lrCuts) out.push({ step: cut.step, label: `lr → ${fmt(cut.payload.new_lr, 6)}`, color: "#7f8c8d" });
    return out;
  }

  function drawCurves() {
    const byGroup = {};
    for (const [key, c] of Object.entries(curves)) (byGroup[groupOf(key)] ||= []).push([key, c]);
    curveGrid.replaceChildren();
    const long = Object.values(curves).some((c) => c.total > MAX_POINTS);
    for (const [name, title, yName] of GROUPS) {
      const members = byGroup[name];
      if (!members) continue;
      curveGrid.append(curveBoxes[name]);
      const values = members.flatMap(([, c]) => c.values).filter((v) => typeof v === "number" && v > 0);
      lines(name, curveBoxes[name], {
        title, yName, xName: name === "batch" ? "batch" : "epoch",
        series: members.map(([key, c]) => ({ name: key, steps: c.steps, values: c.values,
          dashed: key.startsWith("train") || key.endsWith("running") })),
        marks: name === "other" || name === "batch" ? [] : marks(),
        log: (name === "lr" || name === "update") && values.length && Math.max(...values) / Math.min(...values) > 20,
        zoom: long ? zoomTo : null,
      });
    }
  }

  async function loadCurves(read) {
    const data = await (read || get(`/runs/${runId}/curves`, { max_points: MAX_POINTS }));
    curves = Object.fromEntries(data.series.map((s) => [s.key, { steps: s.steps, values: s.values, total: s.total_points }]));
  }

  // Zoomed in on a long curve: the range shown is re-read (at full resolution once it is short
  // enough) and spliced into the whole curve's downsampled points, so zooming out still works.
  let zoomTimer = null;
  function zoomTo(start, end) {
    clearTimeout(zoomTimer);
    zoomTimer = setTimeout(async () => {
      zoomed = [start, end];
      const data = await get(`/runs/${runId}/curves`, { max_points: MAX_POINTS, start, end });
      for (const s of data.series) {
        const instance = echarts.getInstanceByDom(curveBoxes[groupOf(s.key)]);
        const whole = curves[s.key];
        if (!instance || !whole) continue;
        const outside = (before) => whole.steps.map((step, i) => [step, whole.values[i]])
          .filter(([step]) => (before ? step < start : step > end));
        const inside = s.steps.map((step, i) => [step, s.values[i]]);
        const merged = [...outside(true), ...inside, ...outside(false)]
          .map(([step, v]) => [step, typeof v === "number" ? v : null]);
        const series = instance.getOption().series.map((x) => (x.name === s.key
          ? { name: x.name, data: merged } : { name: x.name }));
        instance.setOption({ series });
      }
    }, 250);
  }

  async function loadEvents() {
    const list = await log.refresh();
    lrCuts = list.filter((e) => e.kind === "lr_change");
    stopped = list.find((e) => e.kind === "early_stopped") || null;
  }

  drawHeader();
  // The stream opens with the run as it is: whether it has an evaluation (no 404 to ask), then
  // its news while it trains. A run that had ended replays its state and closes at once.
  const ended = FINISHED.has(run.status);
  let startedLive;
  const opened = new Promise((resolve) => { startedLive = resolve; });
  let evaluationDrawn = null;
  let redraw = null;
  const later = (fn, ms) => { if (!redraw) redraw = setTimeout(() => { redraw = null; fn(); }, ms); };
  let histTimer = null;
  let first = true;
  const source = follow(`/runs/${runId}/stream`, {
    status: async (s) => {
      Object.assign(run, { status: s.status, failure_reason: s.failure_reason, progress: { epoch: s.epoch, epochs: s.epochs } });
      drawHeader();
      act.update(run);
      if (first && !ended) { // what came between the first reads and the stream
        first = false;
        await loadCurves();
        drawCurves();
        startedLive();
      }
    },
    epoch: ({ step, metrics }) => {
      for (const [key, value] of Object.entries(metrics)) {
        const c = (curves[key] ||= { steps: [], values: [], total: 0 });
        const last = c.steps.length ? c.steps[c.steps.length - 1] : -Infinity;
        if (step > last) { c.steps.push(step); c.values.push(value); c.total += 1; } else {
          const i = c.steps.indexOf(step);
          if (i >= 0) c.values[i] = value;
        }
      }
      if (!zoomed) later(drawCurves, 150); // a zoomed chart keeps its range until redrawn
    },
    histograms: () => { if (!histTimer) histTimer = setTimeout(() => { histTimer = null; hist.refresh(); }, 1000); },
    event: (e) => {
      if (e.kind === "lr_change") lrCuts.push(e);
      if (e.kind === "early_stopped") stopped = e;
      log.refresh();
      later(drawCurves, 150);
    },
    diagnosis: (d) => { run.diagnosis = d; drawHeader(); act.update(run); later(drawCurves, 150); },
    evaluation: () => { evaluationDrawn = evaluated.refresh(); },
    end: async () => {
      if (ended) { // the replay of a run that had ended: everything is drawn already
        await evaluationDrawn;
        startedLive();
        return;
      }
      run = await get(`/runs/${runId}`);
      drawHeader();
      act.update(run);
      await Promise.all([loadCurves(), loadEvents()]);
      drawCurves();
      await Promise.all([hist.refresh(), weightViews.refresh(), classes.refresh(run)]);
    },
  });
  source.addEventListener("error", () => startedLive()); // no stream (e.g. 429): draw anyway
  await Promise.all([
    Promise.all([loadCurves(curvesRead), loadEvents()]).then(drawCurves),
    hist.refresh(histRead),
    weightViews.refresh(),
    classes.refresh(run),
    opened,
  ]);
  performance.mark("fitlens:charts-drawn");
  return () => { source.close(); clearTimeout(redraw); clearTimeout(histTimer); clearTimeout(zoomTimer); };
}
