"""Train a masking model on a black box (Dabkowski & Gal 2017, §4.1), alone or data-parallel.

Determinism and exact resumption: the order of images in epoch e is a permutation seeded by
(seed, e) alone, every other random draw (crops, flips, fake selectors, alternative images) comes
from one generator per process whose state is checkpointed, and the checkpoint stores the model,
the optimiser and the step. A run stopped at any point and resumed from its last checkpoint
therefore repeats exactly the steps an uninterrupted run would have taken.

Data-parallel: under ``torchrun`` (WORLD_SIZE > 1) each process takes its share of every global
batch, gradients are averaged by ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU), rank 0
validates, logs and writes checkpoints holding every rank's generator state.

Model selection: at each validation the sum localisation error (fraction, mask ≥ 0.5) + saliency
metric is the criterion; the masker with the lowest so far is kept in ``<out>.best.pt``. Validate on
images held out from training *and* from the final report, so that the report is not tuned on.

The classifier is never modified: training uses a private frozen copy of it (``requires_grad``
off on the copy only), which serves both as the loss's black box and as the masker's encoder.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ...blackbox import BlackBox
from ...boxes import scale_box
from ...distributed import Distributed, init_distributed
from ...errors import CheckpointError, ConfigError, OutputError
from ...storage import write_atomic
from .checkpoint import build_masker, check_compatible, export_weights, masker_config, read_checkpoint
from .data import Sample, augment, fill_labels, load_pixels
from .objective import Weights, draw_selectors, realtime_loss
from .progress import epoch_line
from .validate import evaluate_masker


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32  # global: split across data-parallel processes
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    encoder: str = "auto"  # auto | efficientnet | model (frozen classifier backbone) | small (from scratch)
    encoder_layers: list[str] | None = None  # the classifier's layers the "model" encoder reads
    widths: list[int] | None = None
    blocks: int | None = None
    selector: str = "auto"  # class selector: auto | learned | classifier-init | classifier-tied
    augment: bool = True  # random crops + flips: only for classifiers invariant to them (not synthetic)
    colour_jitter: float = 0.0  # with augment: brightness, contrast, saturation factors in 1 ± this
    schedule: str = "constant"  # learning rate: constant | cosine (to 1 % of lr over all epochs)
    warmup_steps: int = 0  # linear warm-up of the learning rate (cosine schedule)
    cache_features: bool = False  # frozen encoder + no augmentation: compute features once
    load_size: int | None = None  # stored side before cropping; default: input side × 8/7
    amp: bool = False  # bfloat16 autocast (GPU)
    checkpoint_every: int = 100  # steps
    val_every: int = 100  # steps (and at the end)
    max_steps: int | None = None  # stop after this many steps in total (as if killed: no save)
    time_limit_s: float | None = None  # stop (validate, save) once training has run this long
    image_size: int = 64  # training side when the classifier takes any size (input_size None)
    device: str = "cpu"
    weights: Weights = field(default_factory=Weights)


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of all parameters and buffers: equal digests = bitwise identical weights."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _ValSet:
    def __init__(self, blackbox: BlackBox, samples: list[Sample], side: int, device, progress: bool) -> None:
        samples = [s for s in samples if s.boxes and s.label is not None]
        if not samples:
            raise ConfigError("validation images need labels and boxes (annotations.json)")
        self.pixels, kept = load_pixels(samples, side, progress)
        self.pixels = self.pixels.to(device)
        self.labels = torch.tensor([s.label for s in kept])
        self.boxes = []
        for s in kept:
            from_size = s.size or _image_size(s.path)
            self.boxes.append([scale_box(b, from_size, (side, side)) for b in s.boxes])


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.height, img.width


def train_masker(
    blackbox: BlackBox,
    samples: list[Sample],
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    val_samples: list[Sample] | None = None,
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a masker for ``blackbox`` on ``samples``; write the checkpoint to ``out`` (resumable,
    also loadable by ``load_masker``) and the log to ``<out>.log.csv`` / ``<out>.log.json``.

    An existing ``out`` is never replaced by accident (``check_out``): a file that is not a
    maskscope checkpoint is refused, and a checkpoint is replaced only when resuming from it or
    with ``overwrite=True``.

    Returns a summary: steps, the last validation results, the weight digest of every rank.
    """
    cfg = config or TrainConfig()
    if cfg.epochs < 1 or cfg.batch_size < 1 or not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError("epochs and batch size must be at least 1 and the learning rate positive")
    ddp, device = init_distributed(cfg.device)
    if cfg.batch_size % ddp.world:
        raise ConfigError(f"batch size {cfg.batch_size} is not divisible by {ddp.world} processes")
    out = Path(out)
    if ddp.main:
        check_out(out, resume, overwrite)
    show = progress and ddp.main

    # a private frozen copy: the user's classifier keeps its flags, grads and mode untouched
    frozen = copy.deepcopy(blackbox).to(device).eval().requires_grad_(False)
    if cfg.schedule not in SCHEDULES:
        choices = ", ".join(SCHEDULES)
        raise ConfigError(f"unknown learning-rate schedule {cfg.schedule!r}; choose one of {choices}")
    mcfg = masker_config(frozen, cfg.encoder, cfg.widths, cfg.blocks, cfg.selector, cfg.encoder_layers)
    if frozen.input_size is not None and frozen.input_size[0] != frozen.input_size[1]:
        raise ConfigError("training needs a classifier with a square input size")
    side = frozen.input_size[0] if frozen.input_size is not None else cfg.image_size
    with torch.random.fork_rng(devices=[]):  # identical initial weights on every rank, global RNG untouched
        torch.manual_seed(cfg.seed)
        masker = build_masker(frozen, mcfg).to(device).train()
    load_side = cfg.load_size or (round(side * 8 / 7) if cfg.augment else side)

    pixels, samples = load_pixels(samples, load_side, show)
    pixels = pixels.to(device)
    labels = fill_labels(frozen, pixels, samples).to(device)
    val = _ValSet(frozen, val_samples, side, device, show) if val_samples else None
    cache_on = cfg.cache_features and masker.frozen_encoder and not cfg.augment
    cache: dict[int, list[torch.Tensor]] = {}

    optimiser = torch.optim.AdamW(
        [p for p in masker.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + ddp.rank)
    step = 0
    history: list[dict] = []
    if resume is not None:
        step, history = _restore(resume, frozen, masker, optimiser, generator, ddp)
    model = DistributedDataParallel(masker) if ddp.world > 1 else masker

    n = len(samples)
    per_epoch = max(1, n // cfg.batch_size)
    total = cfg.epochs * per_epoch
    local = cfg.batch_size // ddp.world
    resumed_at = step
    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not show)
    running: dict[str, float] = {}
    started = time.time()
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.amp)
    while step < total:
        epoch = step // per_epoch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        batch = order[(step % per_epoch) * cfg.batch_size :][: cfg.batch_size]
        idx = batch[ddp.rank :: ddp.world][:local]
        dev_idx = idx.to(device)
        if cfg.augment:
            images = augment(pixels[dev_idx], side, generator, colour_jitter=cfg.colour_jitter)
        else:
            images = pixels[dev_idx].float() / 255
        selectors, is_fake = draw_selectors(
            labels[dev_idx],
            masker.num_classes,
            generator,
            cfg.weights.fake_prob,
        )
        features = None
        if cache_on:
            missing = [int(i) for i in idx if int(i) not in cache]
            if missing:
                fresh = masker.encode(pixels[torch.tensor(missing, device=device)].float() / 255)
                for j, i in enumerate(missing):
                    cache[i] = [f[j].half() for f in fresh]
            levels = range(len(masker.encoder.channels))
            features = [torch.stack([cache[int(i)][k] for i in idx]).float() for k in levels]
        with autocast:
            masks, attention = model(images, selectors, features=features)
            loss, terms = realtime_loss(
                frozen,
                images,
                masks,
                selectors,
                is_fake,
                attention,
                generator,
                cfg.weights,
            )
        if not math.isfinite(terms["loss"]):
            raise ConfigError(f"the loss became {terms['loss']} at step {step}; lower the learning rate")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimiser.param_groups:  # a function of the step alone: resumption stays exact
            group["lr"] = learning_rate(cfg, step, total)
        optimiser.step()
        step += 1
        for k, v in terms.items():
            running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in running.items() if k != "area_fake"}, refresh=False)

        if show and step % per_epoch == 0:
            bar.write(epoch_line(step, per_epoch, total, time.time() - started, step - resumed_at, running))
        out_of_time = _out_of_time(cfg, started, ddp)
        if step % cfg.val_every == 0 or step == total or out_of_time:
            elapsed = round(time.time() - started, 1)
            record = {"step": step, "epoch": round(step / per_epoch, 3), "time_s": elapsed}
            record.update({k: round(v, 5) for k, v in running.items()})
            if val is not None and ddp.main:
                record.update(
                    {
                        f"val_{k}": round(v, 5)
                        for k, v in evaluate_masker(masker, frozen, val.pixels, val.labels, val.boxes).items()
                    }
                )
            if val is not None and ddp.main:  # the selection criterion: both of the paper's measures
                record["val_score"] = round(record["val_loc_error"] + record["val_saliency_metric"], 5)
                best = min((r["val_score"] for r in history if "val_score" in r), default=math.inf)
                record["best"] = record["val_score"] < best
                if record["best"] and ddp.main:
                    export_weights(masker, best_path(out), half=False)
            history.append(record)
            if ddp.main:
                _write_log(out, history)
                if show:
                    bar.write(json.dumps(record))
        if step % cfg.checkpoint_every == 0 or step == total or out_of_time:
            _save(out, masker, optimiser, step, generator, history, cfg, ddp)
        if out_of_time:
            break
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    bar.close()
    digests = [weights_digest(masker)]
    if ddp.world > 1:
        gathered: list[Any] = [None] * ddp.world
        dist.all_gather_object(gathered, digests[0])
        digests = gathered
    summary = {
        "steps": step,
        "total_steps": total,
        "world_size": ddp.world,
        "rank_digests": digests,
        "last": history[-1] if history else None,
        "best": next((r for r in reversed(history) if r.get("best")), None),
        "config": mcfg,
    }
    if ddp.main:
        (out.parent / (out.name + ".summary.json")).write_text(json.dumps(summary, indent=2))
    if ddp.world > 1:
        dist.barrier()
    return summary


SCHEDULES = ("constant", "cosine")


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``: constant, or a linear warm-up then
    a cosine decay to 1 % of ``cfg.lr`` at the last step."""
    if cfg.schedule == "constant":
        return cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def best_path(out: Path) -> Path:
    """Where the best-validating masker so far is kept (weights only, loadable by ``load_masker``)."""
    return out.parent / (out.name + ".best.pt")


def _out_of_time(cfg: TrainConfig, started: float, ddp: Distributed) -> bool:
    """Whether the time limit is reached; rank 0 decides for all, so every rank stops together."""
    if cfg.time_limit_s is None:
        return False
    flag = torch.tensor([float(time.time() - started > cfg.time_limit_s)])
    if ddp.world > 1:
        if ddp.backend == "nccl":
            flag = flag.cuda()
        dist.broadcast(flag, 0)
    return bool(flag.item())


def _write_log(out: Path, history: list[dict]) -> None:
    (out.parent / (out.name + ".log.json")).write_text(json.dumps(history, indent=2))
    keys: list[str] = []
    for rec in history:
        keys += [k for k in rec if k not in keys]
    with open(out.parent / (out.name + ".log.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def check_out(out: Path, resume: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """OutputError, before any training, unless the checkpoint can be written to ``out`` without
    losing anything: not a folder, an existing file only when it is a maskscope checkpoint that is
    resumed from (or ``overwrite``), and a writable folder."""
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out names the checkpoint file, e.g. {out / 'masker.pt'}")
    if out.exists() or out.is_symlink():
        try:
            read_checkpoint(out)
        except CheckpointError:
            raise OutputError(f"{out}: exists and is not a maskscope checkpoint; refusing to replace it "
                              "(choose another --out)") from None
        resuming_it = resume is not None and Path(resume).resolve() == out.resolve()
        if not (resuming_it or overwrite):
            raise OutputError(f"{out}: already holds a checkpoint; pass --resume to continue it "
                              "or --overwrite to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out.parent / f".{out.name}.probe", lambda handle: None)
        (out.parent / f".{out.name}.probe").unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None


def _save(out, masker, optimiser, step, generator, history, cfg: TrainConfig, ddp: Distributed) -> None:
    state = generator.get_state().cpu()
    states = [state]
    if ddp.world > 1:
        gathered: list[Any] = [None] * ddp.world
        dist.all_gather_object(gathered, state)
        states = gathered
    if ddp.main:
        train = {k: v for k, v in asdict(cfg).items() if k != "weights"}
        train["weights"] = asdict(cfg.weights)
        checkpoint = {
            "config": dict(masker.config),
            "model": masker.state_dict(),
            "optimizer": optimiser.state_dict(),
            "step": step,
            "generator_states": states,
            "history": json.dumps(history),
            "train_config": json.dumps(train),
        }
        try:
            write_atomic(out, lambda handle: torch.save(checkpoint, handle))
        except OSError as exc:
            raise OutputError(f"cannot write checkpoint {out}: {exc.strerror or exc}") from None


def _restore(path, blackbox, masker, optimiser, generator, ddp: Distributed) -> tuple[int, list[dict]]:
    data = read_checkpoint(path)
    check_compatible(data["config"], blackbox, str(path))
    def architecture(config: dict) -> dict:  # the classifier it is for is check_compatible's concern
        return {k: v for k, v in config.items() if k != "classifier_fingerprint"}

    if architecture(data["config"]) != architecture(masker.config):
        raise CheckpointError(f"{path}: made for another masker architecture ({data['config']})")
    if "optimizer" not in data or "step" not in data:
        raise CheckpointError(f"{path}: holds weights only (an exported masker); cannot resume training")
    masker.load_state_dict(data["model"])
    optimiser.load_state_dict(data["optimizer"])
    states = data.get("generator_states") or []
    if len(states) == ddp.world:
        generator.set_state(states[ddp.rank])
    else:  # another process count: streams cannot continue exactly; reseed deterministically
        generator.manual_seed(int(data["step"]) * 7919 + ddp.rank)
    return int(data["step"]), json.loads(data.get("history", "[]"))
