"""``maskscope explain-video``: overlay a trained masker's saliency on every frame of a video."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from .common import add_model_options, load_model, out_path, positive_int


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="explain every frame of a video with a real-time masker")
    p.add_argument("video", help="input video file (anything ffmpeg decodes: mp4, avi, webm, ...)")
    p.add_argument("--out", type=out_path, required=True, help="output video file, e.g. out.mp4")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never the input)")
    p.add_argument("--target", default=None, help="class index or name (default: each frame's top-1)")
    p.add_argument("--masker", default=None, help="masker checkpoint (default: the shipped one)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="frames per masker pass")
    add_model_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..methods.realtime import load_masker
    from ..video import explain_video

    blackbox = load_model(args)
    target = blackbox.check_target(args.target)
    masker = load_masker(blackbox, args.masker)
    info = explain_video(blackbox, masker, args.video, args.out, target, args.batch_size, not args.quiet,
                         overwrite=args.overwrite)
    if args.json:
        print(json.dumps({k: v for k, v in info.items() if k != "targets"} | {"targets": info["targets"]}))
    else:
        common = Counter(info["targets"]).most_common(1)[0][0]
        print(f"wrote {info['out']}: {info['frames']} frames at {info['fps']:g} fps "
              f"(most explained class: {blackbox.class_name(common)})")
    return 0
