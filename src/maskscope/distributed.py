"""Running one command as several processes under ``torchrun``: who this process is, and its share.

``torchrun`` describes the job in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``);
``init_distributed`` joins its process group: NCCL when the device is a GPU (each process takes the
GPU of its ``LOCAL_RANK``), gloo on CPUs. Without torchrun everything here is a no-op for a world
of one, so the same code path serves both.

Dataset commands share work by *batches*: batch k of the deterministic image list goes to rank
k mod world. A fresh sharded run therefore computes exactly the batches a single process would
(the same images together), which is what makes its results identical, not merely close.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

from .errors import MaskscopeError

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def batches(self, items: Sequence[T], batch_size: int) -> list[list[T]]:
        """This rank's batches of ``items``: batch k (of ``batch_size`` consecutive items) when
        k mod world = rank."""
        chunks = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
        return chunks[self.rank :: self.world]

    def share(self, items: Sequence[T], batch_size: int) -> list[T]:
        """The items of this rank's batches, in order."""
        return [item for chunk in self.batches(items, batch_size) for item in chunk]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if self.world == 1:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def agree(self, error: MaskscopeError | None) -> None:
        """Raise the first rank's error on every rank (none: return), so that a failure on one rank
        stops them all with the same one line instead of leaving the others waiting at a barrier."""
        errors = [e for e in self.gather(None if error is None else (type(error), str(error))) if e]
        if errors:
            kind, text = errors[0]
            raise kind(text)


def init_distributed(device: str) -> tuple[Distributed, str]:
    """Join the process group that torchrun describes in the environment (if any); returns this
    process's place in it and the device it should use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), backend), device


def finish(ddp: Distributed, clean: bool = True) -> None:
    """Leave the process group (torchrun otherwise warns about a leaked group): after a clean run
    all together (barrier, then destroy: no rank tears its connections down while another is still
    working); after an error each rank at once, and torchrun stops the others."""
    if ddp.world > 1 and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End a torchrun rank here, without the interpreter's shutdown.

    A gloo worker thread can still be releasing a finished collective's tensors while Python
    finalises; it then needs the GIL, cannot get it, and the C++ runtime aborts the rank (SIGABRT,
    "terminate called without an active exception"; pytorch/pytorch#179291), after everything was
    written, so torchrun calls a complete run failed. Beside a busy core this hit 3 of about 35
    two-rank runs.
    Every file a command writes is closed by the time it returns: only the standard streams need
    flushing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def process_group(ddp: Distributed) -> Iterator[None]:
    """The body of a command run under torchrun: ``finish`` after it, together when it ended
    cleanly, at once when it raised."""
    try:
        yield
    except BaseException:
        finish(ddp, clean=False)
        raise
    finish(ddp)


def on_main(ddp: Distributed, action: Callable[[], T]) -> T | None:
    """``action()`` on rank 0 only (creating a folder, writing shared inputs), its failure raised on
    every rank; the others wait for it and get ``None``."""
    result, error = None, None
    if ddp.main:
        try:
            result = action()
        except MaskscopeError as exc:
            error = exc
    ddp.agree(error)
    return result


@contextlib.contextmanager
def main_lock(ddp: Distributed, folder: str | os.PathLike) -> Iterator[None]:
    """``storage.output_lock`` held by rank 0 for the whole run (the ranks of one run share the
    folder; a second run is still refused), its failure raised on every rank."""
    from .storage import output_lock

    with contextlib.ExitStack() as stack:
        on_main(ddp, lambda: stack.enter_context(output_lock(folder)))
        yield
