"""What ``maskscope train`` tells the user while it runs: one line per epoch with the time left."""

from __future__ import annotations


def epoch_line(step: int, per_epoch: int, total: int, elapsed: float, done: int, running: dict) -> str:
    """One line at the end of an epoch: where training is, its loss, and the time left at this pace
    (``done`` steps in ``elapsed`` seconds in this run)."""
    left = (total - step) * elapsed / max(1, done)
    loss = f", loss {running['loss']:.4g}" if "loss" in running else ""
    return (f"epoch {step // per_epoch}/{total // per_epoch}: step {step}/{total}{loss}, "
            f"{_clock(elapsed)} so far, about {_clock(left)} left")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
