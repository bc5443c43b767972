"""``maskscope explain IMAGE...``: masks for image files, saved as PNG/NPY/figure/JSON.

Output names are the files' stems, made unique where two inputs would share one (``a/x.jpg`` and
``b/x.png``: a short hash of each path is appended), and across runs: a name whose files in
``--out`` hold another image's results, or files maskscope did not write, is passed over for the
hashed one, with one line. Each JSON records its source path. Every file is written atomically,
and the output folder is locked for the run: a second run into the same ``--out`` stops at once
with one line. Re-running into a folder replaces the files of the images explained again;
``manifest.json`` lists what this run wrote and, under ``stale``, the files already there that it
did not write (reported on stderr; ``--clean`` deletes those an earlier run's manifest lists).
Files a manifest lists are never read as inputs, so ``explain DIR --out DIR`` explains only the
photos.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ..images import MAX_PIXELS
from ..manifest import MANIFEST, owners, write_manifest
from ..methods import METHODS, get_spec
from ..methods.optimise import GAMES, PRESETS
from ..perturb import PERTURBATIONS
from .common import (
    add_method_options,
    add_model_options,
    area_list,
    iterations,
    load_model,
    method_extras,
    out_path,
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
    p.add_argument("--masker-any-classifier", action="store_true",
                   help="use --masker even if it was trained for a classifier with other weights")
    p.add_argument("--out", type=out_path, default="maskscope-out", help="output folder")
    p.add_argument("--json", action="store_true", help="print one JSON record per image on stdout")
    p.add_argument("--no-figures", action="store_true", help="skip the three-panel figures (faster)")
    p.add_argument("--clean", action="store_true",
                   help="delete files an earlier run wrote into --out (per its manifest.json) that this run "
                        "did not rewrite")
    add_method_options(p)
    add_model_options(p)
    add_speed_options(p)
    p.set_defaults(run=run)


def _note_renamed(names: dict[str, str], existing, out: Path) -> None:
    """One line per image whose plain name was passed over for the folder's files' sake."""
    from ..outputs import passed_over

    for path, plain in passed_over(names, existing).items():
        print(f"maskscope: {path}: results named {names[path]} in {out}, since the files of {plain} "
              f"there hold another image's results or files maskscope did not write", file=sys.stderr)


def method_options(args: argparse.Namespace) -> dict:
    """The flags that name one of the method's own options (its spec's, so a method that gains
    ``seed`` or ``game`` gets the flag without an edit here); iterative methods also show their
    progress."""
    spec = get_spec(args.method)
    spec.function()  # imported now: a missing extra is one line before any work (options are cached)
    if args.area is not None and not spec.areas:
        with_areas = [name for name, other in METHODS.items() if other.areas]
        raise ConfigError(f"--area applies to --method {' or '.join(with_areas)} only")
    given = {"--game": "game", "--perturbation": "perturbation", "--preset": "preset",
             "--iterations": "iterations", "--masker": "masker"}
    idle = [flag for flag, name in given.items()
            if getattr(args, name) is not None and not spec.accepts(name)]
    if idle:  # an option that would change nothing is refused, not silently ignored
        raise ConfigError(f"{idle[0]} does not apply to --method {args.method}")
    flags = {
        "game": args.game or spec.default_game,
        "areas": None if args.area is None else [a for group in args.area for a in group],
        "perturbation": args.perturbation,
        "preset": args.preset or "fong2017",
        "iterations": args.iterations,
        "seed": args.seed,
        "masker": args.masker,
    }
    options = {k: v for k, v in flags.items() if spec.accepts(k) and v is not None}
    options.update(schedule_options(args, [args.method]).get(args.method, {}))
    options.update(method_extras(args, spec))
    if spec.iterative and spec.progress:
        options["progress"] = True
    return options


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
    from ..outputs import name_filter, output_names, save_explanation

    every, bad_inputs = expand_inputs(args.images)
    existing = on_main(ddp, lambda: owners(out, name_filter(every)))  # before any rank writes
    before = set(existing or {})
    names = ddp.gather(output_names(every, existing) if ddp.main else None)[0]
    if ddp.main:
        _note_renamed(names, existing, out)
    paths = ddp.share(every, args.batch_size)
    blackbox = speed_model(args, load_model(args))
    target = blackbox.check_target(args.target)
    options = method_options(args)
    if "layer" in options:  # a wrong name fails before any image is read
        from ..layers import find_layer

        find_layer(blackbox, options["layer"])
    if get_spec(args.method).masker:  # load (and check) the masker once, before any image is read
        from ..methods.realtime import load_masker

        options["masker"] = load_masker(blackbox, args.masker,
                                        allow_other_classifier=args.masker_any_classifier)
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
