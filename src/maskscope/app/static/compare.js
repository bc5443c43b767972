"use strict";
// The compare page: a grid of images (rows) × methods (columns), each cell an overlay.

const grid = document.getElementById("compare-grid");
const names = Object.fromEntries(PAGE.images.map((i) => [i.id, i.name]));

document.getElementById("compare-run").addEventListener("click", () => {
  const images = [...document.getElementById("compare-images").selectedOptions].map((o) => o.value);
  const methods = [...document.querySelectorAll("#compare-methods input:checked")].map((i) => i.value);
  if (!images.length || !methods.length) { showMessage("choose at least one image and one method"); return; }
  showMessage("");
  const iterations = parseInt(document.getElementById("compare-iterations").value, 10) || null;
  grid.replaceChildren(el("tr", {}, [el("th", {}, ["image"]), ...methods.map((m) => el("th", {}, [m === "realtime" ? "masker" : m]))]));
  for (const image of images) {
    const cells = methods.map(() => el("td", {}, [el("progress", {max: 1, value: 0})]));
    grid.append(el("tr", {}, [el("th", {}, [names[image]]), ...cells]));
    methods.forEach((method, k) => fill(cells[k], image, method, iterations));
  }
});

async function fill(cell, image, method, iterations) {
  try {
    const job = await explainJob({image, method, options: {iterations}}, (j) => {
      const bar = cell.querySelector("progress");
      if (bar) bar.value = j.progress;
    });
    if (job.state === "cancelled") { cell.replaceChildren("cancelled"); return; }
    cell.replaceChildren();
    for (const row of job.result.rows) {
      const rec = row.record;
      cell.append(el("div", {class: "stack small"}, [el("img", {src: `/api/images/${image}`, alt: ""}),
        el("img", {class: "heat", src: row.urls.heat, alt: `${method} heat map`})]),
      el("div", {class: "caption"}, [`${rec.class_name} p=${fmt(rec.p_original)} deleted=${fmt(rec.p_deleted)}`]));
    }
  } catch (error) { cell.replaceChildren(el("span", {class: "failed"}, [error.message])); }
}
