"use strict";
// Shared helpers: page data, JSON requests with one-line errors, safe element building (text only).

const PAGE = JSON.parse(document.getElementById("page-data").textContent);

async function api(url, options = {}) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    let detail = body && body.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

// el("div", {class: "x"}, [child, "text"]): attributes set as attributes, strings as text nodes.
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

// A probability as people read it: 0.788, and 3.2e-5 below 0.001 (where 0.000 would hide it).
function fmtP(value) {
  if (value === null || value === undefined) return "–";
  const p = Number(value);
  return p !== 0 && Math.abs(p) < 0.001 ? p.toExponential(1).replace("e-", "e−") : p.toFixed(3);
}

function fmtSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "time –";
  const s = Number(seconds);
  return `time ${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
}

// The CLI's colour maps as evenly spaced stops: magma for masks (maskscope.viz.MASK_CMAP), jet for
// the heat overlay (maskscope.viz.overlay, the _overlay.png files).
const MAGMA = ["#000004", "#0a0822", "#1d1147", "#36106b", "#51127c", "#6a1c81", "#832681", "#9c2e7f",
  "#b73779", "#d0416f", "#e75263", "#f56b5c", "#fc8961", "#fea772", "#fec488", "#fde2a3", "#fcfdbf"];
const JET = ["#000080", "#0000ff", "#0080ff", "#16ffe1", "#7dff7a", "#e4ff13", "#ff9400", "#ff1e00", "#800000"];

function gradient(stops) { return `linear-gradient(to right, ${stops.join(", ")})`; }

// A colour bar: the map from 0 (left) to 1 (right), labelled.
function colourBar(stops, name) {
  return el("div", {class: "colourbar", title: `${name}: mask value 0 (left) to 1 (right)`}, [
    el("span", {class: "bar", style: `background: ${gradient(stops)}`}),
    el("span", {class: "ticks"}, [el("span", {}, ["0"]), el("span", {}, [name]), el("span", {}, ["1"])]),
  ]);
}

// 256 RGB entries interpolated linearly between the stops.
function lookupTable(stops) {
  const rgb = stops.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const table = new Uint8ClampedArray(256 * 3);
  for (let v = 0; v < 256; v++) {
    const x = (v / 255) * (rgb.length - 1), k = Math.min(Math.floor(x), rgb.length - 2), f = x - k;
    for (let c = 0; c < 3; c++) table[3 * v + c] = rgb[k][c] * (1 - f) + rgb[k + 1][c] * f;
  }
  return table;
}
const MAGMA_TABLE = lookupTable(MAGMA);

// The grey pixels of a loaded mask image (RGBA, the value in the red channel).
function maskPixels(img) {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return {pixels: ctx.getImageData(0, 0, canvas.width, canvas.height).data, width: canvas.width, height: canvas.height};
}

// The mask in magma, as a PNG data URL (made here: the grey file stays what the box is read from).
function magmaURL(mask) {
  const canvas = document.createElement("canvas");
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(mask.width, mask.height);
  for (let i = 0; i < mask.pixels.length; i += 4) {
    const v = mask.pixels[i];
    out.data.set(MAGMA_TABLE.subarray(3 * v, 3 * v + 3), i);
    out.data[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return canvas.toDataURL("image/png");
}

// Whether the mask is a region (the centre box, the full image) rather than a map: all pixels 0 or
// 255 but a thin seam of few distinct values where it was resized to the image.
function isBinary(pixels) {
  const values = new Set();
  let between = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const v = pixels[i];
    if (v === 0 || v === 255) continue;
    between += 1;
    values.add(v);
    if (values.size > 16) return false;
  }
  return between <= 0.05 * (pixels.length / 4);
}

function placeBox(node, b) {
  node.hidden = !b;
  if (!b) return;
  Object.assign(node.style, {left: `${(100 * b.left).toFixed(2)}%`, top: `${(100 * b.top).toFixed(2)}%`,
    width: `${(100 * b.width).toFixed(2)}%`, height: `${(100 * b.height).toFixed(2)}%`});
}

// The settings an explanation was made with (its record's params), the most telling first.
const KEY_SETTINGS = ["game", "iterations", "preset", "perturbation", "recipe", "seed", "layer", "n_masks",
  "window", "stride", "encoder"];

function settingsOf(record) {
  const params = record.params || {};
  const shown = [];
  for (const key of KEY_SETTINGS) {
    if (params[key] === undefined || params[key] === null) continue;
    let text = `${key.replace(/_/g, " ")} ${params[key]}`;
    if (key === "iterations" && record.iterations_used !== undefined && record.iterations_used !== params[key]) {
      text += ` (ran ${record.iterations_used})`;
    }
    shown.push(text);
  }
  return shown;
}

function settingsDetails(record) {
  const params = Object.entries(record.params || {});
  if (!params.length) return null;
  return el("details", {class: "all-settings"}, [el("summary", {}, [`all ${params.length} settings`]),
    el("dl", {}, params.flatMap(([k, v]) => [el("dt", {}, [k]), el("dd", {}, [String(v)])]))]);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Submit one explanation; resolves with the finished job, calling onProgress while it runs.
async function explainJob(body, onProgress) {
  let job = await api("/api/jobs", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  while (job.state === "queued" || job.state === "running") {
    if (onProgress) onProgress(job);
    await sleep(250);
    job = await api(`/api/jobs/${job.id}`);
  }
  if (onProgress) onProgress(job);
  if (job.state === "failed") throw new Error(job.error);
  return job;
}

// The tightest box around the mask pixels at or above `alpha` after min-max normalisation (the
// "value" rule of maskscope.boxes.threshold_mask), in fractions of the width and height.
function thresholdBox(pixels, width, height, alpha) {
  let lo = 255, hi = 0;
  for (let i = 0; i < pixels.length; i += 4) { lo = Math.min(lo, pixels[i]); hi = Math.max(hi, pixels[i]); }
  if (hi <= 0) return null;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = pixels[(y * width + x) * 4];
      const norm = hi > lo ? (v - lo) / (hi - lo) : 1;
      if (norm >= alpha) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    }
  }
  if (x1 < 0) return null;
  return {left: x0 / width, top: y0 / height, width: (x1 - x0 + 1) / width, height: (y1 - y0 + 1) / height};
}
