"""Baseline saliency methods with the call shape of ours: ``fn(model, images, target=None, **options)``.

Gradient, guided backprop, Grad-CAM and occlusion are Captum's implementations; RISE (Petsiuk et al.
2018) has no Captum counterpart and is written here. ``center_box`` / ``full_image`` are the papers'
trivial baselines and ``ground_truth_boxes`` turns annotations into masks so that ground truth can be
scored by the same metrics.

Every raw attribution goes through one function, ``normalise_saliency``, before it becomes a mask, so
thresholds (localisation, saliency metric, pointing) treat every method alike. Each Explanation also
carries p_original / p_deleted / p_preserved under the blur perturbation (σ0 = 10), computed as for
our own methods, so the deletion % drop is comparable across methods.

Captum is driven through a small module returning one score per image (the target logit, or its
probability, summed over K targets for top-k), so that per-sample and top-k targets work uniformly;
Captum then always attributes output column 0.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam, Occlusion, Saliency
from torch import nn

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..boxes import box_area, box_to_mask
from ..boxes import center_box as centred_half_box
from ..errors import ConfigError
from ..explanation import Explanation
from ..images import image_batch
from ..objectives import class_score
from ..perturb import fill_perturbation, pixel_scale, seeded
from .optimise import build_explanation, final_scores, scoring_perturbation

SIGNS = ("abs", "positive")


def normalise_saliency(attributions: torch.Tensor, sign: str = "abs") -> torch.Tensor:
    """Raw attributions (B, C, H, W) or (B, H, W) → saliency masks (B, 1, H, W) in [0, 1].

    ``sign`` says which attributions count as evidence: ``abs`` (magnitude, the convention of
    gradient maps, Simonyan et al.) or ``positive`` (only positive values: Grad-CAM's ReLU, the
    score *drop* of occlusion; negative = counter-evidence is set to 0). Then the maximum over
    channels and a per-image min-max rescale. For magnitude maps the minimum is ~0, so this is the
    usual divide-by-maximum; for maps with a floor (RISE) it spreads the informative range over
    [0, 1]. A constant map carries no location information and becomes all zeros.
    """
    if sign not in SIGNS:
        raise ConfigError(f"unknown sign {sign!r}; choose abs or positive")
    a = attributions.detach().float()
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.dim() != 4:
        raise ValueError(f"expected attributions (B, C, H, W), got {tuple(attributions.shape)}")
    a = a.abs() if sign == "abs" else a.clamp(min=0)
    a = a.amax(dim=1, keepdim=True)
    low = a.amin(dim=(2, 3), keepdim=True)
    span = a.amax(dim=(2, 3), keepdim=True) - low
    return torch.where(span > 0, (a - low) / span.clamp(min=1e-30), torch.zeros_like(a))


class TargetScore(nn.Module):
    """One score per image (B, 1): target logit or probability, summed over the K targets given."""

    def __init__(self, blackbox: BlackBox, kind: str = "logit") -> None:
        super().__init__()
        self.blackbox = blackbox
        self.kind = kind

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return class_score(self.blackbox(images), targets, self.kind).unsqueeze(1)


def _setup(model, images: torch.Tensor, target: TargetSpec) -> tuple[BlackBox, torch.Tensor, torch.Tensor]:
    blackbox = as_blackbox(model)
    x = image_batch(images).detach().to(blackbox.device, torch.float32)
    blackbox.check_images(x)
    with blackbox.evaluating():
        targets = blackbox.resolve_targets(x, target).to(x.device)
    return blackbox, x, targets


def _finish(blackbox, images, x, masks, targets, method: str, params: dict) -> Explanation:
    """Score the masks with ``scoring_perturbation()`` (the rule: ``Explanation``) and package them."""
    pert = scoring_perturbation()
    with blackbox.evaluating():
        scores = final_scores(blackbox, pert.prepare(x), x, masks, targets)
    images = image_batch(images, check_values=False)  # a numpy batch is kept as the tensor it became
    return build_explanation(blackbox, images, masks, targets, method, scores, None, params, pert)


def _quiet(fn, *args, **kwargs):
    """Call a Captum routine without its per-call "setting hooks" UserWarnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
        return fn(*args, **kwargs)


# -- gradient-based -------------------------------------------------------------------------------
def _input_gradient(blackbox: BlackBox, x: torch.Tensor, targets: torch.Tensor, score: str) -> torch.Tensor:
    """∂ score / ∂ pixel (B, 3, H, W) through Captum's Saliency, with whatever hooks are active."""
    return _quiet(
        Saliency(TargetScore(blackbox, score)).attribute,
        x,
        target=0,
        additional_forward_args=(targets,),
        abs=False,
    )


def gradient(model, images: torch.Tensor, target: TargetSpec = None, score: str = "logit") -> Explanation:
    """Simonyan et al. (2014) gradient saliency: |∂ score / ∂ pixel|, max over colour channels."""
    blackbox, x, targets = _setup(model, images, target)
    with blackbox.evaluating():
        raw = _input_gradient(blackbox, x, targets, score)
    masks = normalise_saliency(raw, "abs")
    return _finish(blackbox, images, x, masks, targets, "gradient", {"score": score, "sign": "abs"})


RECTIFIERS = (nn.ReLU, nn.ReLU6)


@contextlib.contextmanager
def _guided_rectifiers(model: nn.Module) -> Iterator[None]:
    """Guided backprop's gate at every rectifier module, with public hooks only, removed on exit.

    Captum's ``GuidedBackprop`` hooks ``nn.ReLU`` alone (and through a private helper); ReLU6
    (EfficientNet-Lite, MobileNets) is a clipped rectifier with the same gating, so it is guided too.
    Zeroing the negative gradient at a rectifier's *output* gives exactly Captum's relu(grad_input):
    the rectifier's own gate is a non-negative factor, so relu(gate · g) = gate · relu(g). Smooth
    activations (SiLU, GELU) and functional ReLUs are left alone: on a model that has no rectifier
    *modules* guided backprop is plain gradient, and ``guided_backprop`` warns about that.
    """

    def gate(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda grad: grad.clamp(min=0))

    handles = [m.register_forward_hook(gate) for m in model.modules() if isinstance(m, RECTIFIERS)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(
    model, images: torch.Tensor, target: TargetSpec = None, score: str = "logit"
) -> Explanation:
    """Springenberg et al. (2015): gradients with negative values zeroed at every rectifier."""
    blackbox, x, targets = _setup(model, images, target)
    rectifiers = sum(isinstance(m, RECTIFIERS) for m in blackbox.modules())
    if rectifiers == 0:
        warnings.warn(
            "guided backprop: the model has no nn.ReLU / nn.ReLU6 modules, so the result is the "
            "plain gradient",
            stacklevel=2,
        )
    with blackbox.evaluating(), _guided_rectifiers(blackbox):
        raw = _input_gradient(blackbox, x, targets, score)
    masks = normalise_saliency(raw, "abs")
    return _finish(
        blackbox,
        images,
        x,
        masks,
        targets,
        "guided-backprop",
        {"score": score, "sign": "abs", "rectifiers": rectifiers},
    )


SHORTCUT_NAMES = ("shortcut", "downsample", "skip")


def last_conv_layer(model, images: torch.Tensor) -> nn.Module:
    """The default Grad-CAM layer (``gradcam_layer``'s module)."""
    return gradcam_layer(model, images)[1]


def gradcam_layer(model, images: torch.Tensor) -> tuple[str, nn.Module]:
    """(name, module) of the last ``nn.Conv2d`` *on the main path* whose output is spatial (H, W > 1),
    found by one probe forward (registration order need not be execution order).

    A residual block's shortcut is not the main path: a conv named ``shortcut``/``downsample``/
    ``skip``, or a 1×1 conv reading the very tensor an earlier conv already read (the branch beside
    the block's first conv), is passed over, so a ResNet gets its last block's last conv, not the
    1×1 projection that may run after it. A model whose only spatial conv is a patch embedding
    (kernel = stride, as in a ViT) has no spatial layer to explain: ConfigError asking for ``layer=``.
    """
    blackbox = as_blackbox(model)
    names = {m: n for n, m in blackbox.named_modules()}
    executed: list[tuple[nn.Conv2d, torch.Tensor, torch.Size]] = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out: executed.append((mod, inp[0], out.shape)))
        for m in blackbox.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].detach().to(blackbox.device, torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    main_path = []
    for i, (conv, inp, shape) in enumerate(executed):
        name = names.get(conv, "")
        named_branch = any(part in SHORTCUT_NAMES for part in name.lower().split("."))
        shared_input = conv.kernel_size == (1, 1) and any(inp is other for _, other, _ in executed[:i])
        spatial = len(shape) == 4 and shape[-1] > 1 and shape[-2] > 1
        if spatial and not (named_branch or shared_input):
            main_path.append(conv)
    if not main_path:
        raise ConfigError("Grad-CAM needs a Conv2d layer with spatial output; pass layer= explicitly")
    layer = main_path[-1]
    first = executed[0][0]
    if layer is first and layer.kernel_size == layer.stride and layer.kernel_size != (1, 1):
        raise ConfigError(
            f"Grad-CAM: the only spatial conv of this model is {_layer_name(names, layer)}, a patch "
            "embedding (transformer-like model): pass layer= a module whose output is (B, C, H, W)"
        )
    return _layer_name(names, layer), layer


def _layer_name(names: dict, layer: nn.Module) -> str:
    return names.get(layer, type(layer).__name__).removeprefix("model.") or type(layer).__name__


def _find_layer(blackbox: BlackBox, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """A layer given as a module or by its name in the model (``layer4.1.conv2``)."""
    names = {m: n for n, m in blackbox.named_modules()}
    if isinstance(layer, nn.Module):
        if layer not in names:
            raise ConfigError(f"Grad-CAM: layer {type(layer).__name__} is not part of the model")
        return _layer_name(names, layer), layer
    for prefix in ("model.", ""):
        try:
            return layer, blackbox.get_submodule(prefix + layer)
        except AttributeError:
            continue
    raise ConfigError(f"Grad-CAM: the model has no layer named {layer!r}")


def gradcam(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    layer: nn.Module | str | None = None,
    score: str = "logit",
) -> Explanation:
    """Selvaraju et al. (2017) Grad-CAM on ``layer`` (a module or its name; default: the last spatial
    Conv2d on the main path, named in a warning), ReLU'd and upsampled bilinearly to the image size."""
    blackbox, x, targets = _setup(model, images, target)
    if layer is None:
        name, layer = gradcam_layer(blackbox, x)
        warnings.warn(f"Grad-CAM: no layer given, using {name}; pass layer= to choose another", stacklevel=2)
    else:
        name, layer = _find_layer(blackbox, layer)
    with blackbox.evaluating():
        cam = _quiet(
            LayerGradCam(TargetScore(blackbox, score), layer).attribute,
            x,
            target=0,
            additional_forward_args=(targets,),
            relu_attributions=True,
        )
    if not isinstance(cam, torch.Tensor) or cam.dim() != 4:
        raise ConfigError(f"Grad-CAM: layer {name} does not output (B, C, H, W) feature maps")
    cam = F.interpolate(cam.detach().float(), size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    masks = normalise_saliency(cam, "positive")
    params: dict[str, object] = {"score": score, "sign": "positive", "layer": name}
    weight = getattr(layer, "weight", None)
    if isinstance(weight, torch.Tensor):
        params["layer_shape"] = list(weight.shape)
    return _finish(blackbox, images, x, masks, targets, "gradcam", params)


# -- perturbation-based ---------------------------------------------------------------------------
def occlusion(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    window: int | None = None,
    stride: int | None = None,
    baseline: str = "mean",
    score: str = "prob",
    perturbations_per_eval: int = 16,
) -> Explanation:
    """Zeiler & Fergus (2014) occlusion: slide a ``window``² patch of ``baseline`` (per-image mean
    colour by default; ``zero``, ``blur``) with ``stride`` and record the score drop per pixel.

    Cost: ((H − window)/stride + 1)² forwards per image (169 at 224 px with 32/16), in batches of
    ``perturbations_per_eval`` per image. Window and stride default to 32 and 16 px at 224 px,
    scaled with the image's short side (9 and 5 at 64 px), like the mask blur of meaningful.
    """
    blackbox, x, targets = _setup(model, images, target)
    scale = pixel_scale(x.shape)
    window = window if window is not None else max(1, round(32 * scale))
    stride = stride if stride is not None else max(1, round(16 * scale))
    if not (1 <= stride <= window <= min(x.shape[-2:])):
        raise ConfigError(f"occlusion needs 1 <= stride <= window <= image side, got {stride}, {window}")
    with torch.no_grad(), blackbox.evaluating():
        raw = _quiet(
            Occlusion(TargetScore(blackbox, score)).attribute,
            x,
            sliding_window_shapes=(x.shape[1], window, window),
            strides=(x.shape[1], stride, stride),
            baselines=fill_perturbation(baseline, what="occlusion baseline").reference(x),
            target=0,
            additional_forward_args=(targets,),
            perturbations_per_eval=perturbations_per_eval,
        )
    masks = normalise_saliency(raw, "positive")
    return _finish(
        blackbox,
        images,
        x,
        masks,
        targets,
        "occlusion",
        {"window": window, "stride": stride, "baseline": baseline, "score": score, "sign": "positive"},
    )


def rise_masks(cells: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """RISE masks from binary grids ``cells`` (N, 1, s, s) and pixel ``shifts`` (N, 2): upsample
    bilinearly to (s + 1)·cell size, then crop (H, W) at the shift. Soft edges avoid the network
    reacting to sharp grid lines; random shifts make the masks cover every offset."""
    h, w = size
    grid = cells.shape[-1]
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False)
    return torch.stack([up[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])


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
    paper uses 4000–8000 masks; the default 1000 is a CPU compromise (EfficientNet-Lite0 at 224 px on
    one core: about 0.15 s per mask, i.e. minutes per image; raise it on a GPU for smoother maps). The
    masks depend only on ``seed`` and are shared by all images, so batching does not change results.
    """
    if n_masks < 1 or grid < 1 or not 0 < p < 1 or batch_size < 1:
        raise ConfigError("rise needs n_masks >= 1, grid >= 1, 0 < p < 1 and batch_size >= 1")
    blackbox, x, targets = _setup(model, images, target)
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
    result = _finish(
        blackbox,
        images,
        x,
        normalise_saliency(saliency, "positive"),
        targets,
        "rise",
        {"n_masks": n_masks, "grid": grid, "p": p, "seed": seed, "sign": "positive"},
    )
    return result


# -- boxes ------------------------------------------------------------------------------------------
def center_box(model, images: torch.Tensor, target: TargetSpec = None) -> Explanation:
    """The "Center" baseline: a binary mask of the centred box spanning half the image area."""
    blackbox, x, targets = _setup(model, images, target)
    h, w = x.shape[-2:]
    box = box_to_mask(centred_half_box(h, w), (h, w), x.device)
    masks = box.expand(x.shape[0], 1, h, w).clone()
    return _finish(blackbox, images, x, masks, targets, "center", {"box": list(centred_half_box(h, w))})


def full_image(model, images: torch.Tensor, target: TargetSpec = None) -> Explanation:
    """The "Max box" baseline: everything is salient."""
    blackbox, x, targets = _setup(model, images, target)
    masks = torch.ones(x.shape[0], 1, *x.shape[-2:], device=x.device)
    return _finish(blackbox, images, x, masks, targets, "full", {})


def ground_truth_boxes(
    images: torch.Tensor,
    boxes_list: Sequence[Sequence[Sequence[float]]],
    model: BlackBox | nn.Module | None = None,
    target: TargetSpec = None,
) -> Explanation:
    """Annotated boxes as a reference "method": mask = each image's *largest* box (pixels of ``images``).

    The largest box, not the union of the boxes: the localisation protocols (Fong Table 1,
    Dabkowski §4.1) count a box as correct at IoU > 0.5 with *any* ground-truth box, and the box
    around a union of far-apart objects need not overlap any single one that well, so the
    reference row would fail to localise itself. (The saliency metric's ground-truth row still
    averages over every box, as Dabkowski & Gal do: ``evaluate.runner``.)

    With ``model`` the targets are resolved and the blur scores filled like any method's; without it,
    ``target`` must be class indices (an int, a list or a tensor) or is left as −1 ("unknown"), and no
    probabilities are stored.
    """
    if images.dim() != 4 or len(boxes_list) != images.shape[0]:
        raise ConfigError(
            f"need one list of boxes per image: {len(boxes_list)} lists for shape {tuple(images.shape)}"
        )
    size = (images.shape[-2], images.shape[-1])
    if any(len(boxes) == 0 for boxes in boxes_list):
        raise ConfigError("every image needs at least one ground-truth box")
    masks = torch.stack(
        [box_to_mask(max(boxes, key=box_area), size, images.device) for boxes in boxes_list]
    ).unsqueeze(1)
    if model is not None:
        blackbox, x, targets = _setup(model, images, target)
        return _finish(blackbox, images, x, masks.to(x.device), targets, "ground-truth", {})
    batch = images.shape[0]
    if target is None:
        targets = torch.full((batch, 1), -1, dtype=torch.long)
    else:
        given = torch.as_tensor(target, dtype=torch.long)
        targets = given.view(1, 1).expand(batch, 1).clone() if given.numel() == 1 else given.view(batch, -1)
    names = ["unknown" if int(t) < 0 else f"class {int(t)}" for t in targets[:, 0]]
    return Explanation(
        masks=masks, images=images.detach(), targets=targets, class_names=names, method="ground-truth"
    )
