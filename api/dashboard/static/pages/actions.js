// Acting on a run from its page: cancel, retry, run again with changes (the spec prefilled,
// its diff shown before it is sent) and a fix study for an overfitting run. Offered only to
// a writer of the run's team, as the API allows; a refusal shows the API's own message.
import { call, canWrite, el } from "../api.js";
import { differing, shown, valueAt } from "./spec.js";


export function actions(run, changed) {
  const node = el("section", { class: "card", id: "actions" });
  const message = el("p", { class: "error", id: "action-message" });
  const act = async (what, fn) => {
    message.textContent = "";
    try {
      await fn();
    } catch (e) {
      message.textContent = `${what} refused: ${e.message}`;
    }
  };
  function draw() {
    node.hidden = !canWrite(run.team_id);
    if (node.hidden) return;
    const live = run.status === "queued" || run.status === "running";
    const worker = trainedByWorker(run);
    const buttons = [];
    if (live) {
      buttons.push(el("button", { id: "action-cancel", onclick: () => act("Cancel", async () => {
        changed(await call(`/runs/${run.id}/cancel`, { method: "POST" }));
      }) }, "Cancel"));
    }
    if (worker && run.status !== "running" && run.status !== "succeeded") {
      buttons.push(el("button", { id: "action-retry", onclick: () => act("Retry", async () => {
        await call(`/runs/${run.id}/retry`, { method: "POST" });
        // A new attempt: the page follows it afresh (the ended run's stream has closed).
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      }) }, "Retry"));
    }
    if (worker) buttons.push(el("button", { id: "action-again", onclick: () => { form.hidden = !form.hidden; } }, "Run again with changes…"));
    if (worker && run.diagnosis?.verdict === "overfitting") {
      buttons.push(el("button", { class: "primary", id: "action-fix-study", onclick: () => act("Fix study", async () => {
        const study = await call(`/runs/${run.id}/fix_study`, { method: "POST", body: {} });
        location.hash = `#/studies/${study.id}`;
      }) }, "Start a fix study"));
    }
    node.replaceChildren(el("h2", {}, "Actions"), el("div", { class: "controls" }, buttons), message, form);
  }
  const form = trainedByWorker(run) ? againForm(run, act) : el("div");
  form.hidden = true;
  draw();
  return { node, update: (next) => { Object.assign(run, next); draw(); } };
}

const trainedByWorker = (run) => run.source !== "client";

// The spec as JSON to edit; what would change is listed as it is typed.
function againForm(run, act) {
  const area = el("textarea", { id: "again-spec", rows: 14, cols: 80, spellcheck: "false" },
    JSON.stringify(run.spec, null, 2));
  const name = el("input", { id: "again-name", value: `${run.name} (again)`, size: 40 });
  const diff = el("ul", { id: "again-diff", class: "diff" });
  const showDiff = () => {
    let edited;
    try {
      edited = JSON.parse(area.value);
    } catch (e) {
      diff.replaceChildren(el("li", { class: "error" }, `Not JSON yet: ${e.message}`));
      return null;
    }
    const paths = differing([run.spec, edited]);
    diff.replaceChildren(...(paths.length ? paths.map((p) => el("li", { "data-path": p },
      el("b", {}, p), `: ${shown(valueAt(run.spec, p), "(absent)")} → ${shown(valueAt(edited, p), "(absent)")}`))
      : [el("li", { class: "muted" }, "No change yet: the same spec again.")]));
    return edited;
  };
  area.addEventListener("input", showDiff);
  const submit = el("button", { class: "primary", id: "again-submit", type: "submit" }, "Submit this run");
  const form = el("form", { class: "again", onsubmit: (e) => {
    e.preventDefault();
    const spec = showDiff();
    if (!spec) return;
    act("Submit", async () => {
      const made = await call("/jobs", { method: "POST", body: { spec, name: name.value, project: run.project, tags: run.tags } });
      location.hash = `#/runs/${made.id}`;
    });
  } }, el("h3", {}, "Run again with changes"), el("label", {}, "name ", name), area,
  el("h3", {}, "What changes"), diff, submit);
  showDiff();
  return form;
}
