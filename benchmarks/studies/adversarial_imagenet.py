"""Adversarial detection and label recovery (Fong & Vedaldi §5.5) on the shared ImageNet sample.

Runs ``maskscope adversarial`` (iterative FGSM, ε = 8/255) with the default classifier on a fixed
random subset and copies ``adversarial.json``, ``.md`` and ``.png`` to ``--export``.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/studies/adversarial_imagenet.py --limit 40 \
        --iterations-per-mask 50
    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/studies/adversarial_imagenet.py --limit 200 \
        --methods realtime,gradient,gradcam --masker MASKER.pt --name adversarial_200

``--masker`` is copied into ``--out`` under its SHA-256 prefix before the run (a checkpoint still
being trained may be replaced meanwhile) and the prefix is written to ``<name>.txt``.

Compute: every attacked image is masked twice (clean and adversarial) by every method; meaningful
costs ``--iterations-per-mask`` forward+backward passes per mask, so a CPU run should stay at a few
tens of images. The paper used 5000 images (4000 to train the detector); a few tens give a
detector accuracy with a fold-to-fold spread of ±10–20 points: read the table as indicative.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, SHARED_DATA, Report, parser  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"
FILES = ("adversarial.json", "adversarial.md", "adversarial.png")


def main(argv: list[str] | None = None) -> int:
    from maskscope.cli.main import main as cli

    p = parser(__doc__, "result")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--methods", default="meaningful,realtime,gradient,gradcam")
    p.add_argument("--iterations-per-mask", type=int, default=100)
    p.add_argument("--out", default=str(ROOT / "out" / "adversarial_imagenet"))
    p.add_argument("--export", default=str(ROOT / "benchmarks" / "results" / "adversarial_imagenet"))
    p.add_argument("--name", default="adversarial", help="exported file names: NAME.json, .md, .png, .txt")
    p.add_argument("--masker", default=None, help="masker checkpoint for realtime (default: the shipped one)")
    args = p.parse_args(argv)
    printed = Report(args.result)
    command = ["adversarial", args.data, "--limit", str(args.limit), "--methods", args.methods,
               "--iterations-per-mask", str(args.iterations_per_mask), "--out", args.out]
    masker_note = "realtime: the shipped masker"
    if args.masker:
        digest = hashlib.sha256(Path(args.masker).read_bytes()).hexdigest()
        snapshot = Path(args.out).with_name(f"masker-{digest[:12]}.pt")
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.masker, snapshot)
        command += ["--option", f"realtime.masker={snapshot}"]
        masker_note = f"realtime: masker {args.masker} (sha256 {digest[:12]})"
    start = time.perf_counter()
    code = cli(command)
    seconds = time.perf_counter() - start
    if code:
        return code
    export = Path(args.export)
    export.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(Path(args.out) / name, export / name.replace("adversarial", args.name))
    command = " ".join(["python benchmarks/studies/adversarial_imagenet.py", *(argv or sys.argv[1:])])
    run_file = "run.txt" if args.name == "adversarial" else f"{args.name}.txt"
    (export / run_file).write_text(f"{command}\nwall-clock {seconds / 60:.1f} min, "
                                   f"OMP_NUM_THREADS=1, shared 2-core CPU\n{masker_note}\n")
    printed.print(f"{seconds / 60:.1f} min; tables in {export}")
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
