// The study's figures as ECharts options, from the API's answers alone: no imports and no
// page state, so the dashboard imports them and a study report (api.studies.report) inlines
// this very file (its exports dropped) to draw the same figures offline.

export const PALETTE = ["#3056d3", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085",
  "#7f8c8d", "#d35400", "#2c3e50", "#f1c40f"];

// JSON carries NaN and +-Infinity as strings: numbers, or null (a gap).
export function toNumber(value) {
  if (typeof value === "number") return value;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return null;
}

export function signed(value, digits = 3) {
  const v = toNumber(value);
  if (v === null || !Number.isFinite(v)) return "–";
  return (v >= 0 ? "+" : "") + v.toFixed(digits);
}

function frame(title, xName, yName) {
  return {
    animation: false,
    color: PALETTE,
    title: { text: title, left: 0, textStyle: { fontSize: 13 } },
    tooltip: { trigger: "axis", confine: true },
    legend: { top: 22, type: "plain" },
    grid: { left: 64, right: 24, top: 72, bottom: 48, containLabel: false },
    xAxis: { type: "value", name: xName, nameLocation: "middle", nameGap: 28, scale: true },
    yAxis: { type: "value", name: yName, nameLocation: "middle", nameGap: 46, scale: true },
  };
}

// Mean +- std bands, one per group: [{name, steps, mean, std, color}]. Hovering a group's
// legend entry or line fades the others, so nearly equal groups stay tellable apart.
export function bandsOption({ title, yName, groups, marks = [] }) {
  const option = frame(title, "epoch", yName);
  option.series = [];
  groups.forEach((g, i) => {
    const color = g.color || PALETTE[i % PALETTE.length];
    const lower = g.steps.map((s, j) => [s, toNumber(g.mean[j]) - (toNumber(g.std[j]) || 0)]);
    const width = g.steps.map((s, j) => [s, 2 * (toNumber(g.std[j]) || 0)]);
    const stack = `band-${i}`;
    const quiet = { symbol: "none", lineStyle: { opacity: 0 }, tooltip: { show: false }, silent: true };
    option.series.push(
      { name: `${g.name} −std`, type: "line", data: lower, stack, ...quiet, legendHoverLink: false },
      { name: `${g.name} ±std`, type: "line", data: width, stack, ...quiet,
        areaStyle: { color, opacity: g.faint ? 0.1 : 0.2 } },
      { name: g.name, type: "line", data: g.steps.map((s, j) => [s, toNumber(g.mean[j])]),
        color, showSymbol: false, lineStyle: { width: g.faint ? 1 : 2, type: g.faint ? "dashed" : "solid" },
        emphasis: { focus: "series" } },
    );
  });
  if (marks.length && option.series.length) {
    option.series[option.series.length - 1].markLine = {
      symbol: "none", silent: true,
      data: marks.map((m) => ({ xAxis: m.step, lineStyle: { color: m.color || "#999", type: "dashed" },
        label: { formatter: m.label, position: "insideEndTop", fontSize: 10 } })),
    };
  }
  option.legend.data = groups.map((g) => g.name);
  return option;
}

// A forest plot: each configuration's effect against the baseline (other − baseline) with its
// 95% interval; red where it is detectable (Holm-adjusted p < 0.05), grey where it is not.
export function forestOption({ title, effects, summary, baselineName }) {
  const rows = effects.configs.filter((c) => c.config !== effects.baseline);
  const names = rows.map((c) => c.name);
  const points = rows.map((c, y) => {
    const e = c.effects[summary] || {};
    return { value: [toNumber(e.mean), y], detectable: e.detectable,
      itemStyle: { color: e.detectable ? "#c0392b" : "#7f8c8d" } };
  });
  const whiskers = rows.map((c, y) => {
    const e = c.effects[summary] || {};
    return [toNumber(e.ci_low), toNumber(e.ci_high), y, e.detectable ? 1 : 0];
  });
  // Zero (no effect) always on the axis: whether an interval holds it is the question.
  const ends = whiskers.flatMap((w) => [w[0], w[1]]).filter((v) => v !== null && Number.isFinite(v));
  const lo = Math.min(0, ...ends);
  const hi = Math.max(0, ...ends);
  const pad = (hi - lo) * 0.08 || 1;
  const label = (y) => {
    const e = rows[y].effects[summary] || {};
    const p = toNumber(e.p_holm);
    return `${signed(e.mean)} [${signed(e.ci_low)}, ${signed(e.ci_high)}]` +
      (p === null ? "" : ` p_holm ${p < 0.001 ? "<0.001" : p.toFixed(3)}`) +
      (e.detectable ? " detectable" : "");
  };
  return {
    animation: false,
    title: { text: title, left: 0, textStyle: { fontSize: 13 },
      subtext: `against ${baselineName}; 95% intervals (${effects.ci_method || "paired t"})`,
      subtextStyle: { fontSize: 11 } },
    tooltip: { trigger: "item", confine: true, formatter: (p) => `${names[p.value[1] ?? p.value[2]]}<br>${label(p.value[1] ?? p.value[2])}` },
    grid: { left: 12, right: 250, top: 56, bottom: 40, containLabel: true },
    xAxis: { type: "value", name: `${summary}: other − baseline`, nameLocation: "middle", nameGap: 26,
      min: lo - pad, max: hi + pad, axisLabel: { formatter: (v) => Number(v.toPrecision(3)) } },
    yAxis: { type: "category", data: names, inverse: true, axisLabel: { width: 220, overflow: "truncate" } },
    series: [
      { name: "interval", type: "custom", data: whiskers, encode: { x: [0, 1], y: 2 },
        renderItem: (params, api) => {
          const lo = api.coord([api.value(0), api.value(2)]);
          const hi = api.coord([api.value(1), api.value(2)]);
          const style = { stroke: api.value(3) ? "#c0392b" : "#7f8c8d", lineWidth: 2 };
          const cap = 5;
          return { type: "group", children: [
            { type: "line", shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] }, style },
            { type: "line", shape: { x1: lo[0], y1: lo[1] - cap, x2: lo[0], y2: lo[1] + cap }, style },
            { type: "line", shape: { x1: hi[0], y1: hi[1] - cap, x2: hi[0], y2: hi[1] + cap }, style },
          ] };
        } },
      { name: "mean", type: "scatter", data: points, symbolSize: 9,
        label: { show: true, position: "right", distance: 0, formatter: (p) => label(p.value[1]),
          fontSize: 10, color: "#333", align: "left", offset: [0, 0] },
        labelLayout: { x: "100%", moveOverlap: "shiftY", align: "right", dx: -4 },
        markLine: { symbol: "none", silent: true, data: [{ xAxis: 0 }],
          lineStyle: { color: "#333", type: "solid" }, label: { formatter: "no effect", fontSize: 10 } } },
    ],
  };
}

// A vertical bar of one standard deviation (or error) either side: data [x, mean, spread].
function errorBar(color) {
  return (params, api) => {
    const hi = api.coord([api.value(0), api.value(1) + api.value(2)]);
    const lo = api.coord([api.value(0), api.value(1) - api.value(2)]);
    return { type: "line", shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] },
      style: { stroke: color, lineWidth: 1.5 } };
  };
}

// The power law c + a (n / n0)^(-b) (c absent: 0) at n, from a fitted PowerLaw.
function law(fit, n) {
  const p = (k) => (fit.params[k] ? fit.params[k].value : 0);
  return p("c") + p("a") * Math.pow(n / fit.n0, -p("b"));
}

// A learning-curve configuration's name without its size ("dropout 0.5, 25% of the training
// set" -> "dropout 0.5"): the sizes of one base configuration make one line.
export function withoutSize(name) {
  return name.split(", ").filter((p) => !/training (set|examples)/.test(p)).join(", ") || "all";
}

// A learning curve: per configuration, the measured mean (with its std) of ``summary`` against
// training examples, and the fitted power law drawn over the range measured.
export function learningOption({ title, curve, summary, configNames }) {
  const option = frame(title, `training examples (log scale; budget: ${curve.budget})`, summary);
  option.xAxis.type = "log";
  option.tooltip = { trigger: "item", confine: true };
  // The points say each size's best validation loss (its minimum) and final losses; the gap
  // is their difference (the mean of the differences: the same members).
  const measure = (p) => {
    if (summary !== "final_gap") return p.values.best_val_loss;
    const v = p.values.final_val_loss;
    const t = p.values.final_train_loss;
    if (!v || !t || toNumber(v.mean) === null || toNumber(t.mean) === null) return null;
    return { mean: toNumber(v.mean) - toNumber(t.mean), std: null };
  };
  const byConfig = new Map();
  for (const p of curve.points) {
    const m = measure(p);
    if (!m || toNumber(m.mean) === null || p.n_train === null) continue;
    const group = configNames(p.config);
    if (!byConfig.has(group)) byConfig.set(group, []);
    byConfig.get(group).push({ n: p.n_train, mean: toNumber(m.mean), std: toNumber(m.std) || 0 });
  }
  option.series = [];
  let i = 0;
  for (const [name, pts] of byConfig) {
    const color = PALETTE[i++ % PALETTE.length];
    pts.sort((a, b) => a.n - b.n);
    option.series.push({ name, type: "line", color, symbolSize: 7, data: pts.map((p) => [p.n, p.mean]) });
    option.series.push({ name: `${name} ± std`, type: "custom", color,
      data: pts.map((p) => [p.n, p.mean, p.std]),
      renderItem: errorBar(color) });
  }
  const fit = curve.fits[summary];
  const ns = curve.points.map((p) => p.n_train).filter((n) => n);
  if (fit && fit.fitted && ns.length) {
    const lo = Math.min(...ns);
    const hi = Math.max(...ns);
    const data = [];
    for (let k = 0; k <= 40; k++) {
      const n = lo * Math.pow(hi / lo, k / 40);
      data.push([n, law(fit, n)]);
    }
    option.series.push({ name: `fit: ${fit.law}`, type: "line", data, showSymbol: false,
      color: "#333", lineStyle: { type: "dashed", width: 1.5 } });
  }
  return option;
}

// A regularization path: mean min_val_loss (± its standard error) against the value, with
// lambda_min, lambda_1se and the one-standard-error threshold marked.
export function pathOption({ title, path }) {
  const option = frame(title, `${path.field} (${path.scale} scale)`, "min val loss");
  if (path.scale === "log") option.xAxis.type = "log";
  option.tooltip = { trigger: "axis", confine: true };
  const pts = path.points.filter((p) => p.values.min_val_loss && (path.scale !== "log" || p.value > 0));
  const mean = (p) => toNumber(p.values.min_val_loss?.mean);
  const se = (p) => (toNumber(p.values.min_val_loss?.std) || 0) / Math.sqrt(Math.max(1, p.values.min_val_loss?.n || 1));
  const marks = [];
  if (path.lambda_min !== null) marks.push({ xAxis: path.lambda_min, label: `λ_min ${path.lambda_min}`, color: "#1e8449" });
  if (path.lambda_1se !== null) marks.push({ xAxis: path.lambda_1se, label: `λ_1se ${path.lambda_1se}`, color: "#d35400" });
  option.series = [
    { name: "mean min val loss", type: "line", data: pts.map((p) => [p.value, mean(p)]), symbolSize: 7,
      markLine: { symbol: "none", silent: true, data: [
        ...marks.map((m) => ({ xAxis: m.xAxis, lineStyle: { color: m.color, type: "dashed" },
          label: { formatter: m.label, position: "insideEndTop", fontSize: 10 } })),
        ...(path.threshold !== null ? [{ yAxis: path.threshold, lineStyle: { color: "#999", type: "dotted" },
          label: { formatter: "min + 1 SE", position: "insideEndTop", fontSize: 10 } }] : []),
      ] } },
    { name: "± 1 SE", type: "custom", color: "#3056d3",
      data: pts.map((p) => [p.value, mean(p), se(p)]),
      renderItem: errorBar("#3056d3") },
  ];
  return option;
}
