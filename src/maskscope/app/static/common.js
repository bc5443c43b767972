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
