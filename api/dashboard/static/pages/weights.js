// Seed 003's figures on the run page, each only where the run has the data: the whole weight
// matrix at a chosen epoch (or its change since another), unit images, class templates and
// conv filters; and the per-class gap as a class x epoch heat-map with per-class onsets.
import { el, fmt, get, num } from "../api.js";
import { heat } from "../charts.js";

const TILES_SHOWN = 64;

export function weights(runId) {
  const param = el("select", { id: "weights-param" });
  const epoch = el("select", { id: "weights-epoch" });
  const since = el("select", { id: "weights-since" });
  const matrix = el("div", { class: "chart tall", id: "chart-weights-matrix" });
  const images = el("div", { class: "tiles", id: "weight-images" });
  const note = el("p", { class: "muted" });
  const node = el("section", { class: "card", id: "weights", hidden: true }, el("h2", {}, "Weights over epochs"),
    el("div", { class: "controls" }, el("label", {}, "parameter ", param), el("label", {}, "epoch ", epoch),
      el("label", {}, "change since ", since)), note, matrix, images);
  let index = new Map(); // param -> [{epoch, shape, why}]
  let inputShape = null; // the run's input (channels, height, width) on image data

  async function drawMatrix() {
    const info = (index.get(param.value) || []).find((s) => s.epoch === Number(epoch.value));
    if (!info) return;
    images.replaceChildren();
    const diff = since.value === "" ? null : Number(since.value);
    if (info.shape.length === 2) {
      const m = await get(`/runs/${runId}/weights`, { param: param.value, epoch: info.epoch, diff_from: diff });
      // Units across, inputs down: a wide layer's thousand units fit the page's width.
      const cells = [];
      m.values.forEach((row, r) => row.forEach((v, c) => { const x = num(v); if (Number.isFinite(x)) cells.push([r, c, x]); }));
      matrix.hidden = false;
      heat("weights-matrix", matrix, {
        title: diff === null ? `${m.param} at epoch ${m.epoch} (${m.shape.join("×")}, ${m.method})`
          : `${m.param}: W(${m.epoch}) − W(${diff})`,
        xName: "unit", yName: "input", x: m.values.map((_, r) => r), y: m.values[0].map((_, c) => c),
        cells, diverging: true, valueName: diff === null ? "weight" : "change" });
    } else matrix.hidden = true;
    note.textContent = `kept because: ${info.why.join(", ")}; ${info.method}`;
    if (hasImages(info)) await drawImages(info.epoch);
  }

  // As the API decides (api.weights.service): a convolution's filters, or a whole first layer
  // whose rows are as long as an image input.
  const hasImages = (info) => info.shape.length === 4 || (info.shape.length === 2 && info.method === "whole"
    && inputShape !== null && info.shape[1] === inputShape.reduce((a, b) => a * b, 1));

  async function drawImages(at) {
    const body = await get(`/runs/${runId}/weights/images`, { param: param.value, epoch: at });
    const what = { units: "each hidden unit's weights as an image", classes: "each class's template",
      filters: "each filter, per input channel" }[body.kind];
    const tiles = body.tiles.slice(0, TILES_SHOWN);
    images.replaceChildren(el("p", { class: "muted caption" }, `${what} at epoch ${at} (${tiles.length} of ${body.tiles.length})`),
      ...tiles.map((t) => tile(t, body.kind)));
    images.dataset.tiles = String(tiles.length);
  }

  async function refresh() {
    const found = await get(`/runs/${runId}/weights`);
    const listed = found.snapshots;
    inputShape = found.input_shape;
    if (!listed.length) return;
    index = new Map();
    for (const s of listed) {
      if (!index.has(s.param)) index.set(s.param, []);
      index.get(s.param).push(s);
    }
    node.hidden = false;
    const keep = param.value;
    param.replaceChildren(...[...index.keys()].map((p) => el("option", { value: p }, p)));
    param.value = index.has(keep) ? keep : [...index.keys()][0];
    fillEpochs();
    await drawMatrix();
  }

  function fillEpochs() {
    const snaps = index.get(param.value) || [];
    epoch.replaceChildren(...snaps.map((s) => el("option", { value: s.epoch }, `${s.epoch} (${s.why.join(", ")})`)));
    epoch.value = String(snaps[snaps.length - 1].epoch);
    since.replaceChildren(el("option", { value: "" }, "–"), ...snaps.map((s) => el("option", { value: s.epoch }, String(s.epoch))));
  }

  param.addEventListener("change", () => { fillEpochs(); drawMatrix(); });
  epoch.addEventListener("change", drawMatrix);
  since.addEventListener("change", drawMatrix);
  return { node, refresh };
}

// One tile as pixels (blue negative, white zero, red positive): an image, not a chart.
function tile(t, kind) {
  const rows = t.values.length;
  const cols = t.values[0].length;
  const canvas = el("canvas", { width: cols, height: rows, class: "tile" });
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(cols, rows);
  const top = Math.max(1e-12, ...t.values.flat().map((v) => Math.abs(v)));
  t.values.flat().forEach((v, i) => {
    const x = Math.max(-1, Math.min(1, v / top));
    pixels.data.set(x >= 0 ? [255, 255 * (1 - x), 255 * (1 - x), 255] : [255 * (1 + x), 255 * (1 + x), 255, 255], i * 4);
  });
  ctx.putImageData(pixels, 0, 0);
  const label = kind === "classes" ? `class ${t.label ?? t.index}` : kind === "filters" ? `${t.index}/${t.channel}` : `unit ${t.index}`;
  return el("figure", {}, canvas, el("figcaption", {}, label));
}

export function perClass(runId) {
  const box = el("div", { class: "chart tall", id: "chart-per-class-gap" });
  const summary = el("p", { class: "muted", id: "per-class-summary" });
  const node = el("section", { class: "card", id: "per-class", hidden: true },
    el("h2", {}, "Overfitting class by class"), summary, box);
  async function refresh(run) {
    if (!run.diagnosis?.per_class?.length) return; // not evaluated per class (yet)
    const d = await get(`/runs/${runId}/per_class`);
    if (!d.epochs.length) return;
    node.hidden = false;
    const cells = [];
    d.gap.forEach((row, c) => row.forEach((v, e) => { const x = num(v); if (Number.isFinite(x)) cells.push([e, c, x]); }));
    const onset = new Map(d.onsets.map((o) => [o.label, o.onset_epoch]));
    heat("per-class-gap", box, { title: "Validation − training loss per class (▲ onset)", xName: "epoch",
      yName: "class", x: d.epochs, y: d.labels.map((l) => (onset.get(l) ? `${l} ▲${onset.get(l)}` : l)),
      cells, diverging: true, valueName: "gap" });
    summary.textContent = `${d.summary} (${d.method}); last gap per class: ` +
      d.onsets.map((o) => `${o.label} ${fmt(o.gap, 3)}`).join(", ");
  }
  return { node, refresh };
}
