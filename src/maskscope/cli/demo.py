"""``maskscope demo``: explain the bundled offline photos and write an ``index.html`` to look at."""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import sys
from pathlib import Path

from PIL import Image

from ..data.photos import demo_photos
from ..errors import OutputError
from ..methods.optimise import GAMES
from ..storage import content_hash, write_atomic, write_bytes_atomic
from .common import (
    add_model_options,
    iterations,
    load_model,
    out_path,
    output_folder,
    positive_int,
    report_failures,
    summary_line,
)


def write_photos(folder: Path) -> tuple[list[Path], int]:
    """The bundled photos as PNG files in ``folder``; a file already there is reused only when its
    bytes are exactly the photo's (sha256), so a truncated or edited copy is written again.
    Returns (paths, how many were rewritten)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    paths, rewritten = [], 0
    for name, array in demo_photos().items():
        path = folder / f"{name}.png"
        buffer = io.BytesIO()
        Image.fromarray(array[..., :3]).save(buffer, format="PNG")
        data = buffer.getvalue()
        if not (path.is_file() and content_hash(path) == hashlib.sha256(data).hexdigest()):
            rewritten += path.exists()
            try:
                write_bytes_atomic(path, data)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        paths.append(path)
    return paths, rewritten


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(
        name, help="explain the bundled photos and write index.html", description=__doc__
    )
    p.add_argument("--out", type=out_path, default="demo-out", help="output folder")
    p.add_argument("--iterations", type=iterations, default=None, help="optimisation steps (default 300)")
    p.add_argument("--game", default="delete", choices=GAMES)
    p.add_argument("--batch-size", type=positive_int, default=8)
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    blackbox = load_model(args)  # a bad --classifier is refused before --out is created
    with output_folder(args.out) as out:  # locked like explain's: one run at a time in a folder
        return _demo(args, blackbox, out)


def _demo(args: argparse.Namespace, blackbox, out: Path) -> int:
    from ..files import explain_files

    paths, rewritten = write_photos(out / "photos")
    if rewritten:
        print(f"maskscope: {rewritten} photos in {out / 'photos'} did not match the bundled ones and were "
              "written again", file=sys.stderr)
    print(
        f"explaining {len(paths)} photos with {blackbox.name} (meaningful perturbation, {args.game} game)",
        file=sys.stderr,
    )
    records, failures = [], []
    for result in explain_files(
        blackbox,
        paths,
        method="meaningful",
        batch_size=args.batch_size,
        game=args.game,
        iterations=args.iterations,
        progress=True,
    ):
        failures.extend(result.failures)
        if result.explanation is None:
            continue
        for rec in result.explanation.save(out / "results"):
            records.append(rec)
            print(summary_line(rec), file=sys.stderr)
    if records:
        index = write_index(out, records, args.game)
        print(f"open {index}", file=sys.stderr)
    return report_failures(failures)


def write_index(out: Path, records: list[dict], game: str) -> Path:
    rows = []
    for rec in records:
        p0, p1 = rec["p_original"], rec["p_deleted" if game == "delete" else "p_preserved"]
        rows.append(
            f"<section><h2>{html.escape(Path(rec['image']).name)} — {html.escape(rec['class_name'])}</h2>"
            f"<p>p = {p0:.3f} → {game}d {p1:.3f}, salient area {100 * rec['area']:.1f} %</p>"
            f'<img src="results/{rec["files"]["figure"]}" alt="figure">'
            f'<img src="results/{rec["files"]["overlay"]}" alt="overlay" height="300"></section>'
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>maskscope demo</title>'
        "<style>body{font-family:sans-serif;margin:2em} img{margin:4px;vertical-align:middle}"
        " section{border-bottom:1px solid #ddd;padding:1em 0}</style></head><body>"
        f"<h1>maskscope demo: meaningful perturbation ({game} game)</h1>"
        "<p>Masks: 1 = salient. Each figure shows the original with the class probability, the image"
        f" with the salient region {game}d, and the learned mask.</p>" + "".join(rows) + "</body></html>"
    )
    index = out / "index.html"
    write_atomic(index, lambda handle: handle.write(page.encode("utf-8")))
    return index
