"use strict";
// The compare page: a grid of images (rows) × methods (columns), each cell an overlay.

const grid = document.getElementById("compare-grid");
const names = Object.fromEntries(PAGE.images.map((i) => [i.id, i.name]));
document.getElementById("compare-bar").append(colourBar(JET, "jet"));

document.getElementById("compare-run").addEventListener("click", () => {
  const images = [...document.getElementById("compare-images").selectedOptions].map((o) => o.value);
  const methods = [...document.querySelectorAll("#compare-methods input:checked")].map((i) => i.value);
  if (!images.length || !methods.length) { showMessage("choose at least one image and one method"); return; }
  showMessage("");
  document.getElementById("compare-empty").hidden = true;
  const iterations = parseInt(document.getElementById("compare-iterations").value, 10) || null;
  grid.replaceChildren(el("tr", {}, [el("th", {}, ["image"]), ...methods.map((m) => el("th", {}, [m]))]));
  for (const image of images) {
    const cells = methods.map(() => el("td", {}, [el("progress", {max: 1, value: 0})]));
    grid.append(el("tr", {}, [el("th", {class: "image-name"}, [names[image]]), ...cells]));
    methods.forEach((method, k) => fill(cells[k], image, method, iterations));
  }
});

// A region mask (only 0 and 1) hides its heat map and shows its outline instead.
function outlineIfRegion(url, stack) {
  const img = new Image();
  img.addEventListener("load", () => {
    const mask = maskPixels(img);
    if (!isBinary(mask.pixels)) return;
    const box = el("div", {class: "box"});
    stack.append(box);
    stack.classList.add("binary");
    placeBox(box, thresholdBox(mask.pixels, mask.width, mask.height, 0.5));
  });
  img.src = url;
}

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
      const stack = el("div", {class: "stack small"}, [el("img", {src: `/api/images/${image}`, alt: ""}),
        el("img", {class: "heat", src: row.urls.heat, alt: `${method} heat map`})]);
      outlineIfRegion(row.urls.view, stack);
      cell.append(stack, el("div", {class: "caption"}, [
        el("div", {}, [el("strong", {}, [rec.class_name]), ` p=${fmtP(rec.p_original)}`]),
        el("div", {}, [`deleted: p=${fmtP(rec.p_deleted)} · area ${fmt(100 * rec.area, 1)}%` +
          (rec.requested_area !== undefined ? ` (asked ${fmt(100 * rec.requested_area, 0)}%)` : "")]),
        el("div", {class: "muted"}, [[fmtSeconds(job.result.seconds), ...settingsOf(rec)].join(" · ")]),
      ]));
    }
  } catch (error) { cell.replaceChildren(el("span", {class: "failed"}, [error.message])); }
}
