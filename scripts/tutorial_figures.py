"""Write the figures the tutorials show: run every page of docs/tutorials as the tests do (each
in a fresh working folder) and copy the files it shows, ``figures/<page>/<path>``, from what its
code wrote. ``tests/test_docs.py`` checks that each tutorial's run writes every file it shows,
that the copies are committed, and that the built site displays them.

    OMP_NUM_THREADS=1 python scripts/tutorial_figures.py             # every tutorial
    OMP_NUM_THREADS=1 python scripts/tutorial_figures.py explain-an-image
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_figures(page: Path) -> list[Path]:
    """Run ``page`` in a temporary folder; copy the files it shows next to it. Returns them."""
    import matplotlib.pyplot as plt
    from doc_blocks import run_page, shown_figures

    written = []
    with tempfile.TemporaryDirectory() as folder:
        run_page(page, Path(folder))
        plt.close("all")
        for relative in shown_figures(page):
            target = page.parent / "figures" / page.stem / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / relative, target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    from doc_blocks import TUTORIALS

    p = argparse.ArgumentParser(description="Write the figures the tutorials show.")
    p.add_argument("pages", nargs="*", help="tutorial names (default: all), e.g. explain-an-image")
    args = p.parse_args(argv)
    pages = [TUTORIALS / f"{name}.md" for name in args.pages] or sorted(TUTORIALS.glob("*.md"))
    for page in pages:
        for path in write_figures(page):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    import matplotlib
    import torch

    matplotlib.use("Agg")
    torch.set_num_threads(1)  # the tutorials' tiny models: more threads only add overhead
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    sys.exit(main())
