"""Peak memory of ``maskscope explain`` on one 8000×8000 PNG, before and after.

Each run is a fresh ``python -m maskscope.cli.main explain`` process (the default classifier, a few
iterations: the peak comes from decoding the image and saving the mask, overlay and figure, not
from the optimisation, which works at the model's 224×224). Its peak RSS is read from
``resource.getrusage(RUSAGE_CHILDREN)`` once it has exited, so nothing samples it while it runs.
``--before COMMIT`` (repeatable) also runs that commit's ``src`` (extracted with ``git archive``),
e.g. the ones before and after the large-image work (reduced decoding, float16 masks):

    OMP_NUM_THREADS=1 python scripts/memory_large_image.py --before REV~1 --before REV
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file: import the benchmark harness
from benchmarks.harness import Report, markdown_table  # noqa: E402
from benchmarks.harness import parser as make_parser  # noqa: E402


def large_png(path: Path, side: int) -> Path:
    """A smooth colour gradient with mild noise: photo-like, so the PNG is small on disk."""
    y = np.linspace(0, 255, side, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, side, dtype=np.float32)[None, :]
    noise = np.random.default_rng(0).integers(0, 16, (side, side), dtype=np.uint8)
    rgb = np.stack([(y + 0 * x).astype(np.uint8), (x + 0 * y).astype(np.uint8),
                    (((x + y) / 2).astype(np.uint8) + noise)], axis=-1)
    Image.fromarray(rgb).save(path, compress_level=1)
    return path


def explain_peak(src: Path, image: Path, out: Path, iterations: int) -> dict:
    """Run one explain process; its peak RSS (GB), wall time and what it wrote."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, "-c", _CHILD, str(image), str(out), str(iterations)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - start
    peak_kb = int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    npy = sorted(out.glob("*.npy"))
    return {"exit": proc.returncode, "peak_gb": None if peak_kb is None else peak_kb / 1024**2,
            "wall_s": wall, "npy_mb": npy[0].stat().st_size / 1e6 if npy else None,
            "error": proc.stderr.strip().splitlines()[-1] if proc.returncode else ""}


# The child runs the CLI in-process and prints its own peak RSS (kB on Linux) as the last line.
_CHILD = """
import resource, sys
from maskscope.cli.main import main
code = main(["explain", sys.argv[1], "--out", sys.argv[2], "--iterations", sys.argv[3]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def old_src(commit: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True,
                             check=True)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def main() -> None:
    parser = make_parser(__doc__, "result")
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--before", action="append", default=[], metavar="COMMIT",
                        help="also measure this commit's src (repeatable)")
    args = parser.parse_args()
    printed = Report(args.result)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        image = large_png(tmp / "large.png", args.side)
        runs = [(f"at {commit}", old_src(commit, tmp / f"old{k}")) for k, commit in enumerate(args.before)]
        runs.append(("this checkout", ROOT / "src"))
        rows = []
        for name, src in runs:
            out = tmp / f"out-{len(rows)}"
            r = explain_peak(src, image, out, args.iterations)
            rows.append([name, r["exit"], "—" if r["peak_gb"] is None else f"{r['peak_gb']:.2f}",
                         "—" if r["npy_mb"] is None else f"{r['npy_mb']:.0f}", f"{r['wall_s']:.0f}",
                         r["error"]])
    printed.print(f"explain on one {args.side}x{args.side} PNG (64 MP for 8000), {args.iterations} "
          "iterations, default classifier, figures on; peak RSS of the explain process\n")
    header = ["code", "exit", "peak RSS (GB)", "mask .npy (MB)", "wall (s)", "error"]
    printed.print(markdown_table(header, rows))
    printed.close()


if __name__ == "__main__":
    main()
