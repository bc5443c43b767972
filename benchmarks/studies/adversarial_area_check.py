"""Is the masker's adversarial detection more than mask area? Re-runs the 200-image attack and the
realtime masks of ``adversarial_imagenet.py --limit 200`` and fits the same grouped-5-fold detector
on the full 14 × 14 features, on the mean mask alone (1 × 1), and on masks scaled to unit mean
(shape without area).

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/studies/adversarial_area_check.py --masker MASKER.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

from maskscope.analysis.adversarial import detection_accuracy, explain, iterative_fgsm
from maskscope.data.folders import load_folder, select
from maskscope.images import load_batch
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    p.add_argument("--data", default=str(SHARED_DATA / "imagenet-val-sample"))
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--masker", default=None, help="masker checkpoint (default: the shipped one)")
    args = p.parse_args(argv)
    printed = Report(args.result)
    items = select(load_folder(Path(args.data)).items, args.limit, 0)  # the CLI's subset (seed 0)
    model = load_classifier()
    images = load_batch([it.path for it in items], (224, 224))
    attack = iterative_fgsm(model, images)
    options = {"masker": args.masker} if args.masker else {}
    clean, _ = explain("realtime", model, images, attack.clean_labels, options)
    adversarial, _ = explain("realtime", model, attack.adversarial, attack.adversarial_labels, options)

    def unit_mean(m):
        return m / m.mean((1, 2, 3), keepdim=True).clamp_min(1e-6)

    printed.print(f"{len(items)} images; mean mask clean {clean.mean():.3f}, "
                  f"adversarial {adversarial.mean():.3f}")
    shape = unit_mean(clean), unit_mean(adversarial)
    for name, a, b, size in (("14x14 features (as reported)", clean, adversarial, 14),
                             ("mean mask only", clean, adversarial, 1),
                             ("14x14, masks scaled to unit mean", *shape, 14)):
        printed.print(f"{name}: {100 * detection_accuracy(a, b, size=size)['accuracy']:.1f} %")
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
