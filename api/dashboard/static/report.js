// A study report's figures (api.studies.report inlines this after figures.js, as classic
// scripts): everything drawn from the JSON the report carries, nothing fetched.
(function drawReport() {
  const data = JSON.parse(document.getElementById("fitlens-data").textContent);
  const drawn = [];
  const names = new Map(data.study.configs.map((c) => [c.index, c.name]));
  const nameOf = (i) => names.get(i) || `configuration ${i}`;
  const show = (id, option) => {
    const box = document.getElementById(id);
    if (!box) return;
    echarts.init(box, null, { renderer: "canvas" }).setOption(option);
    drawn.push(id);
  };

  const bandBox = document.getElementById("bands");
  for (const key of ["val_loss", "train_loss", "gap"]) {
    const groups = [];
    for (const c of data.curves.configs) {
      const s = c.curves.find((x) => x.key === key);
      if (s && s.steps.length) groups.push({ name: nameOf(c.config), steps: s.steps, mean: s.mean, std: s.std });
    }
    if (!groups.length) continue;
    const box = document.createElement("div");
    box.className = "chart";
    box.id = `band-${key}`;
    bandBox.append(box);
    show(box.id, bandsOption({ title: key, yName: key, groups }));
  }
  for (const summary of ["min_val_loss", "final_gap", "val_accuracy"]) {
    if (data.effects.configs.some((c) => c.config !== data.effects.baseline)) {
      show(`forest-${summary}`, forestOption({ title: `Effect on ${summary}`, effects: data.effects,
        summary, baselineName: data.effects.baseline_name }));
    }
  }
  if (data.learning_curve) {
    for (const summary of ["min_val_loss", "final_gap"]) {
      show(`learning-${summary}`, learningOption({ title: `${summary} against training examples`,
        curve: data.learning_curve, summary, configNames: (i) => withoutSize(nameOf(i)) }));
    }
  }
  if (data.path) show("path", pathOption({ title: "Regularization path", path: data.path }));
  window.fitlensReport = { drawn };
}());
