// Every chart of the dashboard, as ECharts options (no hand-drawn charts). Charts register by
// name so tests and the benchmark can ask what is drawn (window.fitlens.charts()).
import { num } from "./api.js";
import { PALETTE, bandsOption } from "./figures.js";

const registry = new Map();

// A page's late answer after the person moved on: drawn nowhere, registered nowhere.
const NOWHERE = { setOption() {}, on() {}, off() {}, clear() {}, getModel() { return null; } };

export function chart(name, container) {
  if (!container.isConnected) return NOWHERE;
  const old = registry.get(name);
  // Redrawn in place: disposing a chart whose zoom or render is still pending (a live run's
  // redraws come every 150 ms) made ECharts fail on its disposed painter.
  if (old && !old.isDisposed() && old.getDom() === container) {
    old.off("datazoom");
    old.clear();
    old.fitlensPainted = false;
    return old;
  }
  if (old) old.dispose();
  const instance = echarts.init(container, null, { renderer: "canvas" });
  // Whether its last option is fully painted (a large heat-map takes several frames).
  instance.fitlensPainted = false;
  instance.on("finished", () => { instance.fitlensPainted = true; });
  registry.set(name, instance);
  return instance;
}

// Cleared at once, disposed later: a chart still painting when the page changes (a large
// heat-map paints over several frames) made ECharts fail on its disposed painter ("reading
// 'layerStack'"); once cleared, its next frame has nothing left to paint.
export function disposeAll() {
  const left = [...registry.values()];
  registry.clear();
  for (const c of left) if (!c.isDisposed()) c.clear();
  setTimeout(() => left.forEach((c) => c.isDisposed() || c.dispose()), 1000);
}

// What is drawn, for tests and the benchmark: per chart, each series' name and point count.
export function describe() {
  const out = {};
  for (const [name, instance] of registry) {
    if (instance.isDisposed()) continue;
    const option = instance.getOption() || {};
    out[name] = (option.series || []).map((s) => ({
      name: s.name, type: s.type, points: Array.isArray(s.data) ? s.data.length : 0,
      painted: instance.fitlensPainted,
      marks: ((s.markLine && s.markLine.data) || []).map((m) => m.name).filter(Boolean),
    }));
  }
  return out;
}

window.addEventListener("resize", () => registry.forEach((c) => c.isDisposed() || c.resize()));

const base = (title, xName, yName) => ({
  animation: false,
  color: PALETTE,
  title: { text: title, left: 0, textStyle: { fontSize: 13 } },
  tooltip: { trigger: "axis", confine: true },
  legend: { top: 22, type: "scroll" },
  grid: { left: 60, right: 24, top: 68, bottom: 48 },
  xAxis: { type: "value", name: xName, nameLocation: "middle", nameGap: 28, scale: true },
  yAxis: { type: "value", name: yName, nameLocation: "middle", nameGap: 44, scale: true },
});

// Points as [step, value]: non-finite values become gaps, and are listed to be marked.
export function points(steps, values) {
  const data = [];
  const bad = [];
  for (let i = 0; i < steps.length; i++) {
    const v = num(values[i]);
    if (v === null || !Number.isFinite(v)) {
      data.push([steps[i], null]);
      bad.push({ step: steps[i], what: Number.isNaN(v) || v === null ? "NaN" : v > 0 ? "+∞" : "-∞" });
    } else data.push([steps[i], v]);
  }
  return { data, bad };
}

// Lines over steps. series: [{name, steps, values, dashed, color}]; marks: [{step, label, color}]
// drawn as vertical lines (best epoch, overfitting onset, LR cuts, non-finite points).
export function lines(name, container, { title, xName = "epoch", yName, series, marks = [],
  zoom = null, log = false }) {
  const c = chart(name, container);
  const option = base(title, xName, yName);
  if (log) option.yAxis.type = "log";
  const nonFinite = [];
  option.series = series.map((s, i) => {
    const { data, bad } = points(s.steps, s.values);
    nonFinite.push(...bad.slice(0, 10).map((b) => ({ step: b.step, label: `${s.name}: ${b.what}`,
      color: "#c0392b" })));
    return {
      name: s.name, type: "line", data, showSymbol: data.length <= 60, connectNulls: false,
      lineStyle: { type: s.dashed ? "dashed" : "solid", width: 1.6 },
      color: s.color, z: 2 + i,
    };
  });
  const all = [...marks, ...nonFinite];
  if (all.length && option.series.length) {
    option.series[0].markLine = {
      symbol: "none", silent: true, animation: false,
      data: all.map((m) => ({ xAxis: m.step, name: m.label,
        lineStyle: { color: m.color || "#999", type: "dashed" },
        label: { formatter: m.label, position: "insideEndTop", fontSize: 10 } })),
    };
  }
  if (zoom) {
    option.dataZoom = [{ type: "inside", filterMode: "none" }, { type: "slider", height: 16, bottom: 4 }];
    option.grid.bottom = 64;
    c.on("datazoom", () => {
      const axis = c.getModel().getComponent("xAxis", 0).axis;
      const [start, end] = axis.scale.getExtent();
      zoom(Math.floor(start), Math.ceil(end));
    });
  }
  c.setOption(option);
  return c;
}

// Mean +- std bands (api/dashboard/static/figures.js, shared with the study report).
export function bands(name, container, spec) {
  return draw(name, container, bandsOption(spec));
}

// Any option built elsewhere (figures.js), drawn and registered under ``name``.
export function draw(name, container, option) {
  const c = chart(name, container);
  c.setOption(option);
  return c;
}

// A heat-map: x and y categories, cells [x, y, value]. diverging: centred on zero (weights).
export function heat(name, container, { title, xName, yName, x, y, cells, diverging = false,
  labels = false, valueName = "count" }) {
  const c = chart(name, container);
  let lo = Infinity;
  let hi = -Infinity;
  for (const cell of cells) {
    if (cell[2] < lo) lo = cell[2];
    if (cell[2] > hi) hi = cell[2];
  }
  if (diverging) { hi = Math.max(Math.abs(lo), Math.abs(hi)) || 1; lo = -hi; }
  c.setOption({
    animation: false,
    title: { text: title, left: 0, textStyle: { fontSize: 13 } },
    tooltip: { position: "top", confine: true },
    grid: { left: 70, right: 80, top: 36, bottom: 52 },
    xAxis: { type: "category", data: x, name: xName, nameLocation: "middle", nameGap: 32 },
    yAxis: { type: "category", data: y, name: yName, nameLocation: "middle", nameGap: 56,
      axisLabel: { interval: Math.max(0, Math.ceil(y.length / 16) - 1) } },
    visualMap: { precision: Math.abs(hi) < 10 ? 3 : 0, min: Number.isFinite(lo) ? lo : 0, max: Number.isFinite(hi) ? hi : 1,
      calculable: true, orient: "vertical", right: 0, top: "middle", text: [valueName, ""],
      inRange: { color: diverging ? ["#2c7bb6", "#ffffbf", "#d7191c"]
        : ["#f7fbff", "#6baed6", "#08306b"] } },
    series: [{ name: valueName, type: "heatmap", data: cells, progressive: 0,
      label: { show: labels, fontSize: 10 } }],
  });
  return c;
}

// Bars over categories: series [{name, values}].
export function bars(name, container, { title, xName, yName, categories, series, max }) {
  const c = chart(name, container);
  const option = base(title, xName, yName);
  option.xAxis = { type: "category", data: categories, name: xName, nameLocation: "middle", nameGap: 28 };
  if (max !== undefined) option.yAxis.max = max;
  option.series = series.map((s) => ({ name: s.name, type: "bar", data: s.values.map(num),
    barGap: s.overlap ? "-100%" : "10%", itemStyle: s.overlap ? { opacity: 0.55 } : undefined }));
  c.setOption(option);
  return c;
}

export { PALETTE };
