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
  updateEmpty();
  if (!state.image) { $("preview").hidden = true; return; }
  $("preview").src = `/api/images/${id}`;
  $("preview").hidden = false;
  try {
    const answer = await api(`/api/images/${id}/top`);
    for (const c of answer.top) {
      $("top5").append(el("li", {"data-index": c.index, onclick: () => setTarget(c.index, c.name)}, [
        el("button", {type: "button"}, [`${c.name}`]), el("span", {class: "p"}, [`p=${fmtP(c.p)}`]),
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

// The right half before any result: what to do next.
function updateEmpty() {
  const none = !$("results").children.length;
  $("empty").hidden = !none;
  document.querySelector(".toolbar").hidden = none;  // the sliders act on results: shown with them
  $("empty-title").textContent = state.image ? "Now tick one or more methods and press Explain" : "Choose an image to begin";
}

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
  const ui = jobRow(method);
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

function figure(content, caption, extra = null, cls = null) {
  return el("figure", {}, [content, el("figcaption", cls ? {class: cls} : {}, [caption]), extra]);
}

function addResult(row, job) {
  const rec = row.record;
  const box = el("div", {class: "box"});
  const heat = el("img", {class: "heat", src: row.urls.heat, alt: ""});
  heat.style.opacity = $("opacity").value;
  const stack = el("div", {class: "stack"}, [el("img", {src: `/api/images/${state.image}`, alt: "image"}), heat, box]);
  const mask = el("img", {class: "mask", src: row.urls.view, alt: `${rec.method} mask`});
  const area = rec.requested_area !== undefined ? ` (asked ${fmt(100 * rec.requested_area, 0)}%)` : "";
  const overlayCaption = el("span", {}, ["heat map + box"]);
  const chips = [fmtSeconds(job.result.seconds), ...settingsOf(rec)];
  const card = el("article", {class: "result", "data-method": rec.method}, [
    el("header", {class: "card-head"}, [
      el("h3", {}, [el("span", {class: "method"}, [rec.method]), " · ",
        el("span", {class: "class-name"}, [rec.class_name]), el("small", {}, [` class ${rec.target}`])]),
      el("span", {class: "score"}, [` p=${fmtP(rec.p_original)}`]),
    ]),
    el("ul", {class: "chips"}, chips.map((c, i) => el("li", i === 0 ? {class: "time"} : {}, [c]))),
    el("div", {class: "panels"}, [
      figure(stack, overlayCaption, colourBar(JET, "jet")),
      figure(mask, `mask · area ${fmt(rec.area * 100, 1)}%${area}`, colourBar(MAGMA, "magma")),
      figure(el("img", {src: row.urls.deleted, alt: "deleted"}), `deleted: p=${fmtP(rec.p_deleted)}`, null, "p-deleted"),
      figure(el("img", {src: row.urls.preserved, alt: "preserved"}), `preserved: p=${fmtP(rec.p_preserved)}`, null,
        "p-preserved"),
    ]),
    el("footer", {class: "card-foot"}, [
      el("p", {class: "downloads"}, ["download: ",
        el("a", {href: row.urls.mask_npy, download: row.files.mask_npy}, [".npy"]), " · ",
        el("a", {href: row.urls.mask_png, download: row.files.mask_png}, ["mask PNG"]), " · ",
        el("a", {href: row.urls.json, download: row.files.json}, ["JSON"])]),
      settingsDetails(rec),
    ]),
  ]);
  $("results").prepend(card);
  updateEmpty();
  let read = false;
  mask.addEventListener("load", () => {
    if (read) return;  // the second load is the magma rendering below
    read = true;
    const entry = {...maskPixels(mask), box};
    state.masks.push(entry);
    drawBox(entry);
    if (isBinary(entry.pixels)) {  // a region, not a map: drawn as its outline over the visible image
      stack.classList.add("binary");
      overlayCaption.textContent = "region outline";
    }
    mask.src = magmaURL(entry);
  });
}

function drawBox(entry) {
  placeBox(entry.box, thresholdBox(entry.pixels, entry.width, entry.height, parseFloat($("threshold").value)));
}

$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  state.masks.forEach(drawBox);
});
$("opacity").addEventListener("input", () => {
  for (const img of document.querySelectorAll("img.heat")) img.style.opacity = $("opacity").value;
});

updateEmpty();
const initial = new URLSearchParams(location.search).get("image");
if (initial) { $("image").value = initial; chooseImage(initial); }
