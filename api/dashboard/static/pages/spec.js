// What a run is: its spec (or an own-loop run's params) as a tree with the defaults greyed,
// its environment, and dotted paths for the runs list's columns and the compare page's diff.
import { el, get } from "../api.js";

let defaults = null; // GET /jobs/defaults, read once per page load

export async function specDefaults() {
  if (!defaults) defaults = get("/jobs/defaults").catch(() => ({}));
  return defaults;
}

export function valueAt(tree, path) {
  let node = tree;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object" || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

// Every leaf as "a.b.c" -> value (lists are leaves: they are set as a whole).
export function flatten(tree, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(tree || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) flatten(value, path, out);
    else out[path] = value;
  }
  return out;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// A setting's value as text (``missing`` where a tree lacks it).
export function shown(value, missing = "–") {
  if (value === undefined) return missing;
  return typeof value === "string" ? value : JSON.stringify(value);
}

// What a run was set to: its spec, or the params an own-loop run logged.
export const settingsOf = (run) => (run.source === "client" ? run.params || {} : run.spec);

// The paths whose values differ between the trees (missing counts as a value).
export function differing(trees) {
  const flat = trees.map((t) => flatten(t));
  const paths = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return paths.filter((p) => flat.some((f) => !same(f[p], flat[0][p])));
}

function tree(node, base, prefix) {
  const list = el("ul", { class: "tree" });
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const fallback = valueAt(base, path);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const changed = differing([value, fallback || {}]).length > 0;
      list.append(el("li", {}, el("details", { open: changed ? true : null },
        el("summary", { class: changed ? "" : "default" }, key), tree(value, base, path))));
    } else {
      const isDefault = fallback !== undefined && same(value, fallback);
      list.append(el("li", { class: isDefault ? "default" : "set", "data-path": path,
        title: isDefault ? "the default" : fallback === undefined ? "" : `default: ${shown(fallback)}` },
      el("span", { class: "key" }, `${key}: `), shown(value)));
    }
  }
  return list;
}

export async function specSection(run) {
  const node = el("section", { class: "card", id: "spec" });
  const own = run.source === "client";
  const values = settingsOf(run);
  const base = own ? {} : await specDefaults();
  node.append(el("h2", {}, own ? "Params (logged by its own loop)" : "Spec"),
    el("p", { class: "muted" }, own ? "What the script logged." : "Values left at their default are grey; hover for the default."),
    Object.keys(values).length ? tree(values, base, "") : el("p", { class: "muted" }, "None."));
  if (run.overrides && Object.keys(run.overrides).length) {
    node.append(el("p", { class: "muted" }, "Set by its study: ",
      Object.entries(run.overrides).map(([k, v]) => `${k} = ${shown(v)}`).join(", ")));
  }
  const env = run.environment || {};
  if (Object.keys(env).length) {
    node.append(el("details", { id: "environment" }, el("summary", {}, "Environment"),
      el("table", {}, Object.entries(env).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "wrap" }, shown(v)))))));
  }
  return node;
}
