"use strict";
// The evaluation page: sortable metrics table and a per-image browser filtered to failures.

// Every metrics table sorts on a click on its column heads (numbers as numbers, blanks last).
for (const table of document.querySelectorAll("table.metrics")) {
  let sortKey = null, ascending = true;
  for (const th of table.querySelectorAll("th[data-col]")) {
    th.addEventListener("click", () => {
      const index = Number(th.dataset.col);
      ascending = sortKey === index ? !ascending : true;
      sortKey = index;
      const rows = [...table.tBodies[0].rows];
      rows.sort((a, b) => {
        const x = a.cells[index].dataset.value, y = b.cells[index].dataset.value;
        if (x === "" || y === "") return (x === "") - (y === "");
        const nx = Number(x), ny = Number(y);
        const c = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
        return ascending ? c : -c;
      });
      table.tBodies[0].append(...rows);
      for (const other of table.querySelectorAll("th")) other.classList.remove("asc", "desc");
      th.classList.add(ascending ? "asc" : "desc");
    });
  }
}

const SVG = "http://www.w3.org/2000/svg";
let data = null;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Through the centres of the box's edge pixels: a box at the image border stays inside the picture.
function rect(box, cls) {
  const [x0, y0, x1, y1] = box;
  return svg("rect", {x: x0 + 0.5, y: y0 + 0.5, width: Math.max(x1 - x0, 0.5), height: Math.max(y1 - y0, 0.5), class: cls});
}

function render() {
  const method = document.getElementById("eval-method").value;
  const filter = document.getElementById("eval-filter").value;
  const list = document.getElementById("eval-images");
  const [h, w] = data.size;
  const shown = data.images.filter((img) => {
    const m = img.methods[method];
    if (!m) return false;
    if (filter === "localisation") return m.localised === false;
    if (filter === "pointing") return m.pointed === false;
    return true;
  });
  document.getElementById("eval-count").textContent = `${shown.length} of ${data.images.length} images`;
  list.replaceChildren();
  for (const img of shown) {
    const m = img.methods[method];
    const drawing = svg("svg", {viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", class: "boxes"});
    for (const b of img.boxes) drawing.append(rect(b, "gt"));
    if (m.box) drawing.append(rect(m.box, "pred"));
    drawing.append(svg("circle", {cx: m.point[0] + 0.5, cy: m.point[1] + 0.5, r: Math.max(w, h) / 60, class: "point"}));
    const outcome = (ok, what) => ok === null ? null : el("span", {class: ok ? "hit" : "miss"}, [`${what} ${ok ? "hit" : "miss"}`]);
    list.append(el("figure", {class: "eval-image", "data-key": img.key}, [
      el("div", {class: "stack"}, [el("img", {src: `/api/evaluation/${encodeURIComponent(PAGE.run)}/images/${encodeURIComponent(img.key)}`, alt: img.name}), drawing]),
      el("figcaption", {}, [
        el("div", {class: "class-name"}, [img.class_name || "no label"]),
        el("div", {class: "file-name", title: img.name}, [img.name]),
        el("div", {class: "outcomes"}, [outcome(m.localised, "localisation"), outcome(m.pointed, "pointing")])]),
    ]));
  }
}

async function load() {
  try {
    data = await api(`/api/evaluation/${encodeURIComponent(PAGE.run)}/images`);
    render();
  } catch (error) { showMessage(error.message); }
}

document.getElementById("eval-method").addEventListener("change", render);
document.getElementById("eval-filter").addEventListener("change", render);
load();
