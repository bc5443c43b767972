"""``maskscope explain IMAGE...``: masks for image files, saved as PNG/NPY/figure/JSON.

Output names are the files' stems, made unique where two inputs would share one (``a/x.jpg`` and
``b/x.png``: a short hash of each path is appended); each JSON records its source path. Every
file is written atomically, and the output folder is locked for the run: a second run into the
same ``--out`` stops at once with one line. Re-running into a folder replaces the files of the
images explained again; ``manifest.json`` lists what this run wrote and, under ``stale``, the files
already there that it did not write (reported on stderr; ``--clean`` deletes those an earlier run's
manifest lists).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..images import MAX_PIXELS
from ..methods import METHODS, get_method
from ..methods.optimise import GAMES, PRESETS
from ..perturb import PERTURBATIONS
from ..storage import write_atomic
from .common import (
    add_model_options,
    area_list,
    iterations,
    load_model,
    output_folder,
    positive_int,
    report_failures,
    seed_number,
    summary_line,
)
from .speed import add_speed_options, schedule_options, speed_model


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="explain image files", description=__doc__)
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--method", default="meaningful", choices=sorted(METHODS), help="saliency method")
    p.add_argument("--target", default=None, help="class index, class name, top1 or topK (default: top1)")
    p.add_argument("--game", default=None, choices=[*GAMES, "dual"],
                   help="default: delete (extremal: preserve); dual is extremal only")
    p.add_argument("--area", action="append", type=area_list, default=None, metavar="A[,A...]",
                   help="extremal: area(s) in (0, 1) to explain at, repeatable (default 0.05,0.1,0.2)")
    p.add_argument("--perturbation", default=None, choices=sorted(PERTURBATIONS),
                   help="default: the preset's (fong2017: fixed-blur)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="default: fong2017")
    p.add_argument(
        "--iterations", type=iterations, default=None, help="optimisation steps (default: preset)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--max-pixels", type=positive_int, default=MAX_PIXELS, metavar="N",
                   help=f"skip images of more than N pixels, like unreadable files (default {MAX_PIXELS:,})")
    p.add_argument("--masker", default=None, help="masker checkpoint for --method realtime")
    p.add_argument("--out", default="maskscope-out", help="output folder")
    p.add_argument("--json", action="store_true", help="print one JSON record per image on stdout")
    p.add_argument("--no-figures", action="store_true", help="skip the three-panel figures (faster)")
    p.add_argument("--clean", action="store_true",
                   help="delete files an earlier run wrote into --out (per its manifest.json) that this run "
                        "did not rewrite")
    add_model_options(p)
    add_speed_options(p)
    p.set_defaults(run=run)


def method_options(args: argparse.Namespace) -> dict:
    """The flags that name one of the method's own parameters (read from its signature, so a
    method that gains ``seed`` or ``game`` gets the flag without an edit here); iterative methods
    also show their progress."""
    if args.area is not None and args.method != "extremal":
        raise ConfigError("--area applies to --method extremal only")
    accepted = inspect.signature(get_method(args.method)).parameters
    given = {"--game": "game", "--perturbation": "perturbation", "--preset": "preset",
             "--iterations": "iterations", "--masker": "masker"}
    idle = [flag for flag, name in given.items() if getattr(args, name) is not None and name not in accepted]
    if idle:  # an option that would change nothing is refused, not silently ignored
        raise ConfigError(f"{idle[0]} does not apply to --method {args.method}")
    flags = {
        "game": args.game or ("preserve" if args.method == "extremal" else "delete"),
        "areas": None if args.area is None else [a for group in args.area for a in group],
        "perturbation": args.perturbation,
        "preset": args.preset or "fong2017",
        "iterations": args.iterations,
        "seed": args.seed,
        "masker": args.masker,
    }
    options = {k: v for k, v in flags.items() if k in accepted and v is not None}
    options.update(schedule_options(args, [args.method]).get(args.method, {}))
    if "iterations" in accepted:
        options["progress"] = True
    return options


MANIFEST = "manifest.json"


def _present(out: Path) -> set[str]:
    """Files already in ``out`` that a run could have written (not hidden, not the manifest)."""
    return {p.name for p in out.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST}


def _previous_manifest(out: Path) -> set[str]:
    """What earlier runs wrote, per the last manifest: its files and its stale files of earlier runs."""
    try:
        old = json.loads((out / MANIFEST).read_text())
        files = [*old.get("files", []), *old.get("earlier", [])]
        return {str(f) for f in files if isinstance(f, str) and "/" not in f and not f.startswith(".")}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def write_manifest(out: Path, written: dict[str, str], before: set[str],
                   clean: bool) -> tuple[list[str], int]:
    """``manifest.json``: ``files`` written (``sources``: file → source image), ``stale`` files
    (there before, not rewritten) and among them ``earlier``, those an earlier run wrote; with
    ``clean`` those are deleted. Returns (stale files kept, how many were deleted)."""
    ours = _previous_manifest(out)
    stale = sorted(before - set(written))
    removed = 0
    if clean:
        for name in [s for s in stale if s in ours]:
            try:
                (out / name).unlink()
                removed += 1
            except OSError as exc:
                raise OutputError(f"cannot delete stale file {out / name}: {exc.strerror or exc}") from None
        stale = [s for s in stale if s not in ours]
    manifest = {"command": "explain", "files": sorted(written), "sources": dict(sorted(written.items())),
                "stale": stale, "earlier": [s for s in stale if s in ours]}
    text = json.dumps(manifest, indent=1).encode("utf-8")
    try:
        write_atomic(out / MANIFEST, lambda handle: handle.write(text))
    except OSError as exc:
        raise OutputError(f"cannot write {out / MANIFEST}: {exc.strerror or exc}") from None
    return stale, removed


def run(args: argparse.Namespace) -> int:
    """Under ``torchrun`` each process explains its share of the batches and writes their files;
    rank 0 writes the manifest and the summary lines."""
    from ..distributed import init_distributed, process_group

    ddp, args.device = init_distributed(args.device)
    with process_group(ddp), output_folder(args.out, ddp) as out:
        return _run(args, out, ddp)


def _run(args: argparse.Namespace, out: Path, ddp) -> int:
    from ..distributed import on_main
    from ..files import expand_inputs, explain_files
    from ..outputs import output_names, save_explanation

    before = on_main(ddp, lambda: _present(out)) or set()  # before any rank writes
    every, bad_inputs = expand_inputs(args.images)
    names = output_names(every)
    paths = ddp.share(every, args.batch_size)
    blackbox = speed_model(args, load_model(args))
    target = blackbox.check_target(args.target)
    options = method_options(args)
    if args.method == "realtime":  # load (and check) the masker once, before any image is read
        from ..methods.realtime import load_masker

        options["masker"] = load_masker(blackbox, args.masker)
    failures: list[tuple[str, str]] = list(bad_inputs) if ddp.main else []
    written: dict[str, str] = {}
    # closed on an error too, so the error line starts a line of its own instead of being glued
    # onto the bar's last frame
    with _progress(len(paths), args, ddp.main) as progress:
        for result in explain_files(
            blackbox,
            paths,
            method=args.method,
            target=target,
            batch_size=args.batch_size,
            max_pixels=args.max_pixels,
            **options,
        ):
            failures.extend(result.failures)
            progress.update(len(result.failures))
            if result.explanation is None:
                continue
            records = save_explanation(result.explanation, out, figures=not args.no_figures, names=names)
            sources = result.explanation.sources
            assert sources is not None  # explain_files names each mask's file
            progress.update(len(set(sources)))  # images, not masks (extremal: several)
            for rec in records:
                for name in [*rec["files"].values(), rec["files"]["mask_npy"][: -len(".npy")] + ".json"]:
                    written[name] = rec.get("source") or rec.get("image") or ""
                if args.json:
                    print(json.dumps(rec), flush=True)
                else:
                    progress.write(summary_line(rec))
    parts = ddp.gather((written, failures))
    failures = [f for _, fs in parts for f in fs]
    if not ddp.main:
        return 2 if failures else 0
    written = {k: v for w, _ in parts for k, v in w.items()}
    if written or before:
        stale, removed = write_manifest(out, written, before, args.clean)
        replaced = len(before & set(written))
        notes = []
        if replaced:
            notes.append(f"{replaced} files of an earlier run replaced")
        if removed:
            notes.append(f"{removed} stale files of an earlier run deleted (--clean)")
        if stale:
            notes.append(f"{len(stale)} files not written by this run kept (listed as stale in "
                         f"{out / MANIFEST}; --clean deletes those an earlier run wrote)")
        if notes:
            print(f"maskscope: {'; '.join(notes)}", file=sys.stderr)
    if written and not args.json:
        print(f"results in {out}", file=sys.stderr)
    return report_failures(failures)


def _progress(total: int, args: argparse.Namespace, show: bool = True):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"explain ({args.method})", unit="img", file=sys.stderr, disable=not show)
