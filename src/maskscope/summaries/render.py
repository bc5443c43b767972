"""The summary report: ``summaries.json`` and an ``index.html`` laid out as Godi et al.'s Figure 1.

One row per summary; each member is shown as its region (the rest of the image dimmed) with the
shared part tinted and outlined in red, so a reader sees at a glance which part recurs. The page
only references PNG files written beside it, so it opens from disk in any browser.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import OutputError
from .pipeline import Part, SummaryResult

TILE_HEIGHT = 112
MARGIN = 4  # pixels of context kept around a region's box


def member_tile(image: np.ndarray, labels: np.ndarray, part: Part, height: int = TILE_HEIGHT) -> Image.Image:
    """The region of ``part`` cropped from ``image``, outside-region pixels dimmed, part in red."""
    h, w = labels.shape
    out = image.astype(np.float32)
    region = labels == part.region
    out[~region] *= 0.3
    x0, y0, x1, y1 = part.box
    red = np.zeros((h, w), dtype=bool)
    red[y0:y1, x0:x1] = True
    red &= region
    out[red] = 0.5 * out[red] + 0.5 * np.array([255.0, 0.0, 0.0])
    t = 2  # outline thickness
    out[y0 : y0 + t, x0:x1] = out[max(y1 - t, 0) : y1, x0:x1] = (255, 0, 0)
    out[y0:y1, x0 : x0 + t] = out[y0:y1, max(x1 - t, 0) : x1] = (255, 0, 0)
    rx0, ry0, rx1, ry1 = part.region_box
    rx0, ry0 = max(min(rx0, x0) - MARGIN, 0), max(min(ry0, y0) - MARGIN, 0)
    rx1, ry1 = min(max(rx1, x1) + MARGIN, w), min(max(ry1, y1) + MARGIN, h)
    crop = Image.fromarray(out[ry0:ry1, rx0:rx1].clip(0, 255).astype(np.uint8))
    width = max(1, round(crop.width * height / max(crop.height, 1)))
    return crop.resize((width, height), Image.Resampling.BILINEAR)


def summary_records(result: SummaryResult, names: list[str]) -> list[dict[str, Any]]:
    """JSON-ready summaries: member images, their regions and the parts (boxes, scores)."""
    records = []
    for k, summary in enumerate(result.summaries):
        members: dict[tuple[int, int], dict[str, Any]] = {}
        for p in summary.parts:
            m = members.setdefault((p.image, p.region), {
                "image": names[p.image], "region": {"id": p.region, "box": p.region_box}, "parts": []})
            m["parts"].append({"box": p.box, "score": p.score})
        records.append({
            "id": k + 1,
            "images": [names[i] for i in summary.images],
            "num_images": len(summary.images),
            "median_ssim": summary.median_ssim,
            "members": list(members.values()),
        })
    return records


def write_report(
    out_dir: str | os.PathLike,
    result: SummaryResult,
    images: list[np.ndarray],
    names: list[str],
    header: dict[str, Any],
    image_info: list[dict[str, Any]],
) -> Path:
    """Write ``summaries.json``, ``summaries/*.png`` and ``index.html``; returns the HTML path.

    Boxes in the JSON are [x0, y0, x1, y1) (exclusive ends) in the working-size image
    (``header['work_size']``), the size at which masks, proposals and matching were computed.
    """
    out = Path(out_dir)
    tiles = out / "summaries"
    try:
        tiles.mkdir(parents=True, exist_ok=True)
        for old in tiles.glob("s*_*.png"):
            old.unlink()
        records = summary_records(result, names)
        for i, info in enumerate(image_info):
            r = result.regions[i]
            info["regions"] = [{"id": j + 1, "box": [int(v) for v in r.boxes[j]], "area": int(r.areas[j])}
                               for j in range(len(r))]
        payload = {**header, "stats": result.stats,
                   "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
                   "images": image_info, "summaries": records}
        (out / "summaries.json").write_text(json.dumps(payload, indent=2))
        rows = []
        for k, summary in enumerate(result.summaries):
            cells = []
            for j, part in enumerate(summary.best_parts()):
                file = f"summaries/s{k + 1:02d}_{j + 1:02d}.png"
                member_tile(images[part.image], result.regions[part.image].labels, part).save(out / file)
                title = html.escape(f"{names[part.image]} (score {part.score:.3f})")
                cells.append(f'<img src="{file}" alt="{title}" title="{title}">')
            rows.append(
                f'<section class="summary"><h2>Summary {k + 1}</h2><p>{len(summary.images)} images, '
                f"median SSIM {summary.median_ssim:.3f}</p>"
                f'<div class="row">{"".join(cells)}</div></section>'
            )
        (out / "index.html").write_text(_page(header, result, rows))
    except OSError as exc:
        raise OutputError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return out / "index.html"


def _page(header: dict[str, Any], result: SummaryResult, rows: list[str]) -> str:
    s = result.stats
    title = html.escape(f"Visual summaries: {header.get('title', '')}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    body = "\n".join(rows) or "<p>No summary survived: no part recurs across enough images.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; }}
.row {{ display: flex; flex-wrap: wrap; gap: 4px; }}
.row img {{ height: {TILE_HEIGHT}px; border: 1px solid #ccc; }}
.summary {{ margin-bottom: 1.2em; }} h2 {{ margin: 0.2em 0; font-size: 1.1em; }}
p {{ margin: 0.2em 0; color: #444; }}
</style></head><body>
<h1>{title}</h1>
<p id="count"><strong>{s['summaries']} summaries</strong> from {s['images']} images
({s['images_with_regions']} with salient regions, {s['regions']} regions, {s['kept_proposals']} of
{s['proposals']} proposals inside regions; {s['dropped_by_ssim']} clusters dropped by the SSIM check).</p>
<p>Model: {html.escape(str(header.get('model', '')))}; target: {html.escape(str(header.get('target', '')))}.
Each row is one summary: the member regions (rest of the image dimmed) with the shared part in red.</p>
<p>Time per stage: {html.escape(timing)}.</p>
{body}
</body></html>
"""
