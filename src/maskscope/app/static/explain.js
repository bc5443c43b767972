"use strict";
// The explain page: pick an image and a class, run methods, read the masks side by side.

const state = {image: null, target: null, targetName: null, masks: []};
const $ = (id) => document.getElementById(id);

function setTarget(index, name) {
  state.target = index;
  state.targetName = name;
  $("target-name").textContent = index === null ? "the top class" : `${name} (class ${index})`;
  for (const li of $("top5").children) li.classList.toggle("chosen", Number(li.dataset.index) === index);
}

async function chooseImage(id) {
  state.image = id || null;
  $("explain").disabled = !state.image;
  $("top5").replaceChildren();
  setTarget(null, null);
  if (!state.image) { $("preview").hidden = true; return; }
  $("preview").src = `/api/images/${id}`;
  $("preview").hidden = false;
  try {
    const answer = await api(`/api/images/${id}/top`);
    for (const c of answer.top) {
      $("top5").append(el("li", {"data-index": c.index, onclick: () => setTarget(c.index, c.name)}, [
        el("button", {type: "button"}, [`${c.name}`]), el("span", {class: "p"}, [fmt(c.p)]),
      ]));
    }
    setTarget(answer.top[0].index, answer.top[0].name);
    showMessage("");
  } catch (error) { showMessage(error.message); }
}

$("image").addEventListener("change", (event) => chooseImage(event.target.value));

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("upload").files[0];
  if (!file) { showMessage("choose a file to upload first"); return; }
  const form = new FormData();
  form.append("file", file);
  try {
    const entry = await api("/api/images", {method: "POST", body: form});
    if (![...$("image").options].some((o) => o.value === entry.id)) {
      $("image").append(el("option", {value: entry.id}, [`${entry.name} (upload)`]));
    }
    $("image").value = entry.id;
    await chooseImage(entry.id);
  } catch (error) { showMessage(error.message); }
});

$("class-search").addEventListener("input", (event) => {
  const text = event.target.value.trim().toLowerCase();
  const list = $("class-results");
  list.replaceChildren();
  if (text.length < 2) return;
  const hits = PAGE.classes.filter((c) => c.name.toLowerCase().includes(text)).slice(0, 12);
  for (const c of hits) {
    const short = c.name.split(",")[0];
    list.append(el("li", {}, [el("button", {type: "button", onclick: () => setTarget(c.index, short)},
      [`${c.name} (${c.index})`])]));
  }
});

function options() {
  const iterations = parseInt($("iterations").value, 10);
  const areas = $("areas").value.split(",").map((a) => a.trim()).filter(Boolean).map(Number);
  return {iterations: Number.isFinite(iterations) ? iterations : null, areas};
}

function jobRow(method) {
  const bar = el("progress", {max: 1, value: 0});
  const cancel = el("button", {type: "button", class: "cancel"}, ["cancel"]);
  const label = el("span", {}, [method]);
  const row = el("div", {class: "job", "data-method": method}, [label, bar, cancel]);
  $("jobs").append(row);
  return {row, bar, cancel, label};
}

async function runMethod(method) {
  const opts = options();
  const body = {image: state.image, method, target: state.target,
    options: method === "extremal" ? opts : {iterations: opts.iterations}};
  const ui = jobRow(method === "realtime" ? "masker" : method);
  let jobId = null;
  ui.cancel.addEventListener("click", async () => {
    if (jobId) { try { await api(`/api/jobs/${jobId}/cancel`, {method: "POST"}); } catch (e) { showMessage(e.message); } }
  });
  try {
    const job = await explainJob(body, (j) => {
      jobId = j.id;
      ui.bar.value = j.progress;
      ui.label.textContent = `${j.label} · ${j.state}${j.total ? ` ${j.done}/${j.total}` : ""}`;
    });
    if (job.state === "cancelled") { ui.row.classList.add("cancelled"); return; }
    ui.row.remove();
    for (const row of job.result.rows) addResult(row, job);
  } catch (error) {
    ui.row.classList.add("failed");
    showMessage(error.message);
  }
}

$("explain").addEventListener("click", () => {
  const chosen = [...document.querySelectorAll("#methods input:checked")].map((i) => i.value);
  if (!chosen.length) { showMessage("choose at least one method"); return; }
  showMessage("");
  for (const method of chosen) runMethod(method);
});

function addResult(row, job) {
  const rec = row.record;
  const label = rec.method === "realtime" ? "masker" : rec.method;
  const box = el("div", {class: "box"});
  const heat = el("img", {class: "heat", src: row.urls.heat, alt: ""});
  heat.style.opacity = $("opacity").value;
  const stack = el("div", {class: "stack"}, [el("img", {src: `/api/images/${state.image}`, alt: "image"}), heat, box]);
  const mask = el("img", {class: "mask", src: row.urls.view, alt: `${label} mask`});
  const area = rec.requested_area !== undefined ? ` (asked ${fmt(rec.requested_area, 2)})` : "";
  const card = el("article", {class: "result", "data-method": rec.method}, [
    el("h3", {}, [`${label}: `, el("span", {class: "class-name"}, [rec.class_name]),
      el("span", {class: "score"}, [` p=${fmt(rec.p_original)}`])]),
    el("div", {class: "panels"}, [
      el("figure", {}, [stack, el("figcaption", {}, ["overlay + box"])]),
      el("figure", {}, [mask, el("figcaption", {}, [`mask · area ${fmt(rec.area * 100, 1)}%${area}`])]),
      el("figure", {}, [el("img", {src: row.urls.deleted, alt: "deleted"}),
        el("figcaption", {class: "p-deleted"}, [`deleted: p=${fmt(rec.p_deleted)}`])]),
      el("figure", {}, [el("img", {src: row.urls.preserved, alt: "preserved"}),
        el("figcaption", {class: "p-preserved"}, [`preserved: p=${fmt(rec.p_preserved)}`])]),
    ]),
    el("p", {class: "downloads"}, ["download: ",
      el("a", {href: row.urls.mask_npy, download: row.files.mask_npy}, [".npy"]), " · ",
      el("a", {href: row.urls.mask_png, download: row.files.mask_png}, ["mask PNG"]), " · ",
      el("a", {href: row.urls.json, download: row.files.json}, ["JSON"]),
      el("small", {}, [` · ${job.result.seconds}s`])]),
  ]);
  $("results").prepend(card);
  mask.addEventListener("load", () => {
    const canvas = document.createElement("canvas");
    canvas.width = mask.naturalWidth;
    canvas.height = mask.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(mask, 0, 0);
    const entry = {pixels: ctx.getImageData(0, 0, canvas.width, canvas.height).data,
      width: canvas.width, height: canvas.height, box};
    state.masks.push(entry);
    drawBox(entry);
  });
}

function drawBox(entry) {
  const alpha = parseFloat($("threshold").value);
  const b = thresholdBox(entry.pixels, entry.width, entry.height, alpha);
  entry.box.hidden = !b;
  if (!b) return;
  Object.assign(entry.box.style, {left: `${(100 * b.left).toFixed(2)}%`, top: `${(100 * b.top).toFixed(2)}%`,
    width: `${(100 * b.width).toFixed(2)}%`, height: `${(100 * b.height).toFixed(2)}%`});
}

$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  state.masks.forEach(drawBox);
});
$("opacity").addEventListener("input", () => {
  for (const img of document.querySelectorAll("img.heat")) img.style.opacity = $("opacity").value;
});

const initial = new URLSearchParams(location.search).get("image");
if (initial) { $("image").value = initial; chooseImage(initial); }
