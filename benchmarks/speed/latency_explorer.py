"""Latency of the explorer (``maskscope serve``) on the default model at 224×224.

    python benchmarks/speed/latency_explorer.py [--runs 20] [--chromium /usr/bin/chromium]

1. Click to mask: in headless chromium, click "Explain" with the masker and wait until the mask
   image has loaded in the page, ``--runs`` times (a different target class each time, so the
   server's result cache never answers). Reported next to the masker's own time, the same call
   (``realtime_saliency`` on one 224×224 image, with its three scoring passes) timed in this
   process: the difference is what the page adds (request, image loading, files, drawing). The
   server's own time per request (``result.seconds``) splits that difference.
2. Responsiveness: ``/api/health`` answer times while a meaningful-perturbation job (300
   iterations) runs on the worker.

The server runs as its own process (``maskscope serve``, demo photos), as a user would start it.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch

from maskscope.data.photos import demo_photos
from maskscope.images import resize_image, to_tensor
from maskscope.methods.realtime import load_masker, realtime_saliency
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import RESULTS, Report  # noqa: E402
from benchmarks.harness import parser as make_parser  # noqa: E402

OUT = RESULTS / "latency_explorer"


def start_server() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "maskscope.cli.main", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        match = re.search(r"(http://\S+)/", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"the server did not start (exit {proc.wait()})")


def masker_own_time(runs: int) -> list[float]:
    """Seconds of the masker itself on the demo cat at 224×224, scores included."""
    model = load_classifier()
    masker = load_masker(model, None)
    image = resize_image(to_tensor(demo_photos()["chelsea"]), (224, 224))[None]
    times = []
    for k in range(runs + 1):
        start = time.perf_counter()
        realtime_saliency(model, image, target=k, masker=masker)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first call warms up


CLICK = """async (target) => {
  setTarget(target, "class " + target);
  const before = document.querySelectorAll("article.result").length;
  const start = performance.now();
  document.getElementById("explain").click();
  while (document.querySelectorAll("article.result").length === before) await sleep(2);
  const mask = document.querySelector("article.result img.mask");
  if (!mask.complete || !mask.naturalWidth) await new Promise((ok) => mask.addEventListener("load", ok));
  const shown = performance.now() - start;
  const seconds = parseFloat(document.querySelector("article.result .downloads small").textContent.slice(3));
  // let the card's other images (deleted / preserved, made on request) finish before the next click
  for (const img of document.querySelectorAll("article.result img")) {
    if (!img.complete) {
      await new Promise((ok) => { img.addEventListener("load", ok); img.addEventListener("error", ok); });
    }
  }
  return [shown / 1000, seconds];
}"""


def click_to_mask(url: str, runs: int, chromium: str) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/explain")
        page.select_option("#image", label="chelsea.png")
        page.wait_for_selector("#top5 li")
        page.evaluate(CLICK, 999)  # warm-up: loads the masker in the server
        results = [page.evaluate(CLICK, k) for k in range(runs)]
        browser.close()
    return [r[0] for r in results], [r[1] for r in results]


def health_during_job(url: str, samples: int = 50) -> tuple[list[float], int]:
    with httpx.Client(base_url=url, timeout=30) as client:
        image = next(i["id"] for i in client.get("/api/images").json() if i["name"] == "chelsea.png")
        job = client.post("/api/jobs", json={"image": image, "method": "meaningful",
                                              "options": {"iterations": 300}}).json()
        while client.get(f"/api/jobs/{job['id']}").json()["done"] == 0:
            time.sleep(0.05)
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            client.get("/api/health").raise_for_status()
            times.append(time.perf_counter() - start)
            time.sleep(0.05)
        done = client.get(f"/api/jobs/{job['id']}").json()["done"]
        client.post(f"/api/jobs/{job['id']}/cancel")
    return times, done


def ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.0f}"


def main() -> None:
    parser = make_parser(__doc__, "result")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.set_defaults(result=OUT)
    args = parser.parse_args()
    printed = Report(args.result)
    own = masker_own_time(args.runs)
    proc, url = start_server()
    try:
        shown, server = click_to_mask(url, args.runs, args.chromium)
        health, steps = health_during_job(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    added = statistics.median(shown) - statistics.median(own)
    p95 = sorted(health)[int(0.95 * (len(health) - 1))]
    lines = [
        "# Explorer latency (`benchmarks/speed/latency_explorer.py`)",
        "",
        f"Default model (efficientnet-lite0) at 224×224, CPU, torch threads {torch.get_num_threads()}, "
        f"median of {args.runs} runs.",
        "",
        "| measure | ms |",
        "|---|---|",
        f"| masker's own time (`realtime_saliency`, 1 image, with scores) | {ms(own)} |",
        f"| server time per request (load the image file, masker) | {ms(server)} |",
        f"| click \"Explain\" → mask shown in chromium | {ms(shown)} |",
        f"| **added by the page** (click-to-mask − masker's own) | **{1000 * added:.0f}** |",
        f"| `/api/health` during a meaningful job, median / p95 / max of {len(health)} | "
        f"{ms(health)} / {1000 * p95:.0f} / {1000 * max(health):.0f} |",
        "",
        f"The meaningful job ran {steps} of its 300 iterations while health was sampled.",
    ]
    text = "\n".join(lines)
    printed.print(text)
    printed.close()


if __name__ == "__main__":
    main()
