"""The masking model's training objective (Dabkowski & Gal 2017, eq. 4 and §4.1).

    L(M) = λ_tv·TV(M) + λ_area·AV(M) − log f_c(Φ(X, M)) + λ3·f_c(Φ(X, 1 − M))^λ4

with TV the sum of squared neighbour differences (eq. 5), AV the mean mask value, f_c the softmax
probability of the selected class and Φ(X, M) = X·M + A·(1 − M) (eq. 6).

Weights. The paper lists (λ1, λ2, λ3, λ4) = (10, 1e-3, 5, 0.3) for (TV, AV, ...). Taken literally,
the all-ones mask is (near) optimal: TV(1) = 0, AV(1) = 1 costs only 1e-3, −log f_c(X) is minimal and
f_c(A)^0.3 is small — nothing asks the mask to shrink. With the first two swapped (area 10 on the
*mean*, TV 1e-3 on the *sum* over a 224×224 mask, i.e. ~0.1–0.3 for an object outline) the terms
balance: keeping 30 % of an image costs 3 against the ~10 of keeping all or nothing. We use the
swapped reading by default (``Weights()``); ``Weights.paper_literal()`` gives the other.

The balance depends on the number of classes K: keeping the object can lower −log f_c by at most
about ln K (from chance), and λ3·f_c^λ4 only spans λ3·(K^−λ4 … 1). Area 10 suits ImageNet (ln 1000
≈ 6.9); with few classes it can outweigh the whole gain of keeping the object, and the masks shrink
to a fragment of it. The 5-class synthetic benchmark therefore uses area 5, chosen on a validation
split (``benchmarks/quality/realtime_synthetic.py`` documents the numbers).

Fake selectors (30 %): a random wrong class is supplied and only the area term applies, so the only
way to lower the loss is an empty mask; this forces the model to read the class selector.
Auxiliary loss: binary cross-entropy on max_ij X_ijᵀC_s (the feature filter's attention logit),
target 1 for the true class, 0 for a fake one — it trains the embedding faster (§4.1).
Alternative image A: drawn anew at every call of Φ, per image: half the time a strong Gaussian blur
of X (σ = 10), otherwise a random constant colour plus Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...blackbox import BlackBox
from ...objectives import total_variation
from ...perturb import gaussian_blur, pixel_scale


@dataclass(frozen=True)
class Weights:
    tv: float = 1e-3
    area: float = 10.0
    destroy: float = 5.0  # λ3
    destroy_power: float = 0.3  # λ4
    aux: float = 1.0
    fake_prob: float = 0.3
    blur_sigma: float = 10.0
    noise_std: float = 0.2

    @classmethod
    def paper_literal(cls) -> Weights:
        return cls(tv=10.0, area=1e-3)


def alternative_images(images: torch.Tensor, generator: torch.Generator, weights: Weights) -> torch.Tensor:
    """A fresh random alternative image A per image: strong blur or random colour + noise."""
    b = images.shape[0]
    dev = images.device
    use_blur = torch.rand(b, 1, 1, 1, generator=generator, device=dev) < 0.5
    colour = torch.rand(b, 3, 1, 1, generator=generator, device=dev, dtype=images.dtype)
    noise = torch.randn(images.shape, generator=generator, device=dev, dtype=images.dtype) * weights.noise_std
    random_colour = (colour + noise).clamp(0, 1)
    blurred = gaussian_blur(images, weights.blur_sigma * pixel_scale(images.shape))  # σ at 224 px
    return torch.where(use_blur, blurred, random_colour)


def draw_selectors(
    labels: torch.Tensor,
    num_classes: int,
    generator: torch.Generator,
    fake_prob: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class selectors: the label, or with probability ``fake_prob`` a uniformly drawn other class.

    Returns (selectors (B,), is_fake (B,) bool).
    """
    dev = labels.device
    is_fake = torch.rand(labels.shape[0], generator=generator, device=dev) < fake_prob
    offset = torch.randint(1, max(2, num_classes), labels.shape, generator=generator, device=dev)
    fake = (labels + offset) % num_classes
    return torch.where(is_fake, fake, labels), is_fake


def realtime_loss(
    blackbox: BlackBox,
    images: torch.Tensor,
    masks: torch.Tensor,
    selectors: torch.Tensor,
    is_fake: torch.Tensor,
    attention: torch.Tensor,
    generator: torch.Generator,
    weights: Weights = Weights(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """Batch-mean loss and its terms (as floats, for logging).

    ``masks`` (B, 1, H, W) are salient masks at the images' size (1 = keep in Φ(X, M)). The class
    terms are evaluated only for images with a real selector; fakes contribute the area term alone.
    """
    b = images.shape[0]
    real = ~is_fake
    area_term = masks.flatten(1).mean(1)
    tv_term = total_variation(masks, 2.0)  # eq. 5: squared differences, on the 224×224 scale
    loss = weights.area * area_term
    zero = images.new_zeros(b)
    preserve, destroy = zero, zero
    if bool(real.any()):
        x, m, c = images[real], masks[real], selectors[real].view(-1, 1)
        kept = x * m + alternative_images(x, generator, weights) * (1 - m)
        removed = x * (1 - m) + alternative_images(x, generator, weights) * m
        logp_kept = blackbox(kept).float().log_softmax(1).gather(1, c)[:, 0]
        logp_removed = blackbox(removed).float().log_softmax(1).gather(1, c)[:, 0]
        preserve = zero.index_put((real.nonzero()[:, 0],), -logp_kept)
        destroy = zero.index_put((real.nonzero()[:, 0],), torch.exp(weights.destroy_power * logp_removed))
        loss = loss + real.float() * weights.tv * tv_term + preserve + weights.destroy * destroy
    aux = F.binary_cross_entropy_with_logits(attention, real.float(), reduction="none")
    loss = loss + weights.aux * aux
    n_real = max(1, int(real.sum()))
    loss_d, tv_term, area_term, preserve, destroy, aux = (
        t.detach() for t in (loss, tv_term, area_term, preserve, destroy, aux)
    )
    terms = {
        "loss": float(loss_d.mean()),
        "tv": float((tv_term * real).sum()) / n_real,
        "area": float(area_term[real].mean()) if bool(real.any()) else 0.0,
        "area_fake": float(area_term[is_fake].mean()) if bool(is_fake.any()) else 0.0,
        "preserve": float(preserve.sum()) / n_real,
        "destroy": float(destroy.sum()) / n_real,
        "aux": float(aux.mean()),
    }
    return loss.mean(), terms
