"""The figures in this folder: meaningful perturbation on two demo photos, the default preset
(fong2017) against the paper's recipe (fong2017-paper-blur), 150 iterations, deletion game.

    OMP_NUM_THREADS=1 python docs/meaningful/make_figures.py   # writes docs/meaningful/out_*/
"""

from pathlib import Path

import torch

import maskscope as ms
from maskscope.data.photos import demo_photos
from maskscope.images import resize_image, to_tensor

HERE = Path(__file__).resolve().parent
photos = demo_photos()
names = ["chelsea", "coffee"]
x = torch.stack([resize_image(to_tensor(photos[n][..., :3]), (224, 224)) for n in names])
model = ms.load_classifier()
for preset in ("fong2017", "fong2017-paper-blur"):
    e = ms.meaningful_perturbation(model, x, iterations=150, preset=preset)
    e.save(HERE / f"out_{preset}", overwrite=True)
    print(preset, "p", e.p_original.tolist(), "p deleted", e.p_deleted.tolist(), "area", e.area.tolist())
