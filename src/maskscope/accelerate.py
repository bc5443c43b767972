"""Run the classifier faster without changing what the methods do: mixed precision and channels-last.

Both only change how the classifier's own forward and backward passes are computed: the images,
masks, perturbations and losses stay float32, and the logits come back as float32. Whether either
helps depends on the hardware (bfloat16 needs AMX or AVX-512 BF16 to be faster on a CPU), so
``benchmarks/speed/speed_meaningful.py --amp --channels-last`` measures them instead of assuming.

The user's model is left as it is: channels-last needs the weights in another memory layout, so
the wrapper converts a private copy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .blackbox import BlackBox
from .errors import ConfigError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class _Accelerated(nn.Module):
    """The classifier under ``torch.autocast`` and/or with channels-last inputs; float32 logits."""

    def __init__(self, model: nn.Module, amp: str | None, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.amp = amp
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.amp is None:
            return self.model(x)
        with torch.autocast(device_type=x.device.type, dtype=AMP_DTYPES[self.amp]):
            return self.model(x).float()


def accelerate(blackbox: BlackBox, amp: str | None = None, channels_last: bool = False) -> BlackBox:
    """``blackbox`` with its classifier run under autocast (``amp``: ``bf16`` or ``fp16``) and/or in
    channels-last memory format; the same BlackBox when neither is asked for.

    fp16 autocast is for GPUs (CPUs lack fast fp16 kernels); bf16 works on both."""
    if amp is None and not channels_last:
        return blackbox
    if amp is not None and amp not in AMP_DTYPES:
        raise ConfigError(f"unknown --amp {amp!r}; choose one of {', '.join(AMP_DTYPES)}")
    if amp == "fp16" and blackbox.device.type == "cpu":
        raise ConfigError("--amp fp16 needs a GPU; use bf16 on a CPU")
    model = blackbox.model
    if not isinstance(model, nn.Module):
        raise ConfigError("--amp / --channels-last need the classifier to be a torch module")
    if channels_last:  # a private copy: converting the weights in place would change the user's model
        # torch's stub omits Module.to's documented memory_format keyword
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    fast = BlackBox(_Accelerated(model, amp, channels_last), input_size=blackbox.input_size,
                    mean=blackbox.mean.flatten().tolist(), std=blackbox.std.flatten().tolist(),
                    class_names=blackbox.class_names, name=blackbox.name)
    return fast.to(blackbox.device)
