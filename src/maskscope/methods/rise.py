"""RISE (Petsiuk et al. 2018): saliency as the score-weighted mean of random masks. Captum has no
counterpart, so it is written here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..blackbox import TargetSpec
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import normalise_saliency
from ..objectives import class_score
from ..perturb import seeded
from .attribution import finish, setup


def rise_masks(cells: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """RISE masks from binary grids ``cells`` (N, 1, s, s) and pixel ``shifts`` (N, 2): upsample
    bilinearly to (s + 1)·cell size, then crop (H, W) at the shift. Soft edges avoid the network
    reacting to sharp grid lines; random shifts make the masks cover every offset."""
    h, w = size
    grid = cells.shape[-1]
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False)
    return torch.stack([up[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])


MAX_MASKS = 1_000_000


def rise(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    n_masks: int = 1000,
    grid: int = 7,
    p: float = 0.5,
    batch_size: int = 50,
    seed: int = 0,
) -> Explanation:
    """Petsiuk et al. (2018) RISE: saliency = E[score(x ⊙ M) · M] / p over random masks M.

    ``n_masks`` binary ``grid``×``grid`` patterns (each cell kept with probability ``p``), upsampled
    and randomly shifted; scores are class probabilities. Cost is ``n_masks`` forwards per image: the
    paper uses 4000–8000 masks; the default 1000 is a CPU compromise (one forward per mask makes it
    minutes per image on one core; raise it on a GPU for smoother maps). The
    masks depend only on ``seed`` and are shared by all images, so batching does not change results.
    """
    if n_masks < 1 or grid < 1 or not 0 < p < 1 or batch_size < 1:
        raise ConfigError("rise needs n_masks >= 1, grid >= 1, 0 < p < 1 and batch_size >= 1")
    if n_masks > MAX_MASKS:  # the masks' cells are drawn at once: a typo must not exhaust memory
        raise ConfigError(f"rise takes at most {MAX_MASKS} masks (the paper uses 4000-8000), got {n_masks}")
    blackbox, x, targets = setup(model, images, target, "rise")
    if grid > min(x.shape[-2:]):
        raise ConfigError(f"rise's grid ({grid}) must not exceed the image's side ({min(x.shape[-2:])} px)")
    assert isinstance(targets, torch.Tensor)  # class indices: setup refuses a callable for rise
    h, w = x.shape[-2:]
    gen = seeded(seed)
    cells = (torch.rand(n_masks, 1, grid, grid, generator=gen) < p).float()
    shifts = torch.stack(
        [
            torch.randint(0, math.ceil(h / grid), (n_masks,), generator=gen),
            torch.randint(0, math.ceil(w / grid), (n_masks,), generator=gen),
        ],
        dim=1,
    )
    saliency = torch.zeros(x.shape[0], 1, h, w, device=x.device)
    with torch.no_grad(), blackbox.evaluating():
        for start in range(0, n_masks, batch_size):
            masks = rise_masks(
                cells[start : start + batch_size], shifts[start : start + batch_size], (h, w)
            ).to(x)
            for b in range(x.shape[0]):
                scores = class_score(
                    blackbox(x[b : b + 1] * masks), targets[b : b + 1].expand(len(masks), -1), "prob"
                )
                saliency[b] += (scores.view(-1, 1, 1, 1) * masks).sum(0)
    saliency /= n_masks * p
    result = finish(
        blackbox,
        images,
        x,
        normalise_saliency(saliency, "positive"),
        targets,
        "rise",
        {"n_masks": n_masks, "grid": grid, "p": p, "seed": seed, "sign": "positive"},
    )
    return result
