"""The explorer's job queue: one worker thread runs the iterative methods, one at a time.

A job is identified by its id and keyed by what it computes (image content hash, method, target,
options): asking again for the same key returns the job already queued, running or finished, so a
result is computed once. The web server only enqueues and reads jobs, so its event loop never waits
on torch. Progress arrives through the methods' ``progress(done, total)`` callback, which is also
where a cancelled job stops: the callback raises ``JobCancelled`` at the next step. At most
``max_pending`` jobs wait or run at once, so no client can queue hours of work for the one worker.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MaskscopeError

STATES = ("queued", "running", "done", "failed", "cancelled")
MAX_PENDING = 8  # jobs queued or running at once, per server


class QueueFull(MaskscopeError):
    """The server already has its limit of jobs queued or running (it answers 429)."""


class JobCancelled(Exception):
    """Raised inside a running job (from its progress callback) once it has been cancelled."""


@dataclass
class Job:
    id: str
    key: str
    label: str  # what the page shows: "meaningful on cat.jpg"
    run: Callable[[Job], Any]  # the work; gets the job to report progress through
    state: str = "queued"
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None
    exception: MaskscopeError | None = None  # the bad input a failed job stopped on
    created: float = field(default_factory=time.time)
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: int, total: int) -> None:
        """The methods' progress callback: records the step, stops a cancelled job."""
        if self.cancel_requested.is_set():
            raise JobCancelled()
        self.done, self.total = done, total

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def status(self) -> dict[str, Any]:
        fraction = 1.0 if self.state == "done" else (self.done / self.total if self.total else 0.0)
        return {"id": self.id, "label": self.label, "state": self.state, "done": self.done,
                "total": self.total, "progress": round(fraction, 4), "error": self.error}


class JobQueue:
    """Jobs by id and by key, and the single worker thread that runs them in order."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self._jobs: dict[str, Job] = {}
        self._by_key: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._worker = threading.Thread(target=self._work, name="maskscope-jobs", daemon=True)
        self._worker.start()

    def submit(self, key: str, label: str, run: Callable[[Job], Any]) -> tuple[Job, bool]:
        """(the job for ``key``, whether it is new). A failed or cancelled job is not reused."""
        with self._lock:
            job = self._by_key.get(key)
            if job is not None and job.state not in ("failed", "cancelled"):
                return job, False
            pending = sum(j.state in ("queued", "running") for j in self._jobs.values())
            if pending >= self.max_pending:
                raise QueueFull(f"the job queue is full: {pending} jobs are queued or running, the limit of "
                                f"this server; wait for one to finish or cancel one")
            job = Job(id=f"j{next(self._ids)}", key=key, label=label, run=run)
            self._jobs[job.id] = job
            self._by_key[key] = job
        self._queue.put(job)
        return job, True

    def finished_result(self, key: str, label: str, run: Callable[[Job], Any]) -> tuple[Job, bool]:
        """Run ``run`` now, in the calling thread, unless ``key`` is already done: the immediate
        methods (the masker) share the cache and the job ids but not the worker's queue."""
        with self._lock:
            job = self._by_key.get(key)
            if job is not None and job.state == "done":
                return job, False
        job = Job(id="", key=key, label=label, run=run, state="running")
        self._execute(job)
        with self._lock:
            job.id = f"j{next(self._ids)}"
            self._jobs[job.id] = job
            if job.state == "done":
                self._by_key[key] = job
        return job, True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop: a queued one never starts, a running one stops at its next step."""
        job = self.get(job_id)
        if job is None:
            return None
        job.cancel_requested.set()
        with self._lock:
            if job.state == "queued":
                job.state = "cancelled"
        return job

    def pending(self) -> int:
        with self._lock:
            return sum(j.state in ("queued", "running") for j in self._jobs.values())

    def close(self) -> None:
        """Stop the worker after the running job; queued jobs are cancelled."""
        for job in self.jobs():
            if not job.finished:
                self.cancel(job.id)
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state != "queued":  # cancelled while it waited
                    continue
                job.state = "running"
            self._execute(job)

    @staticmethod
    def _execute(job: Job) -> None:
        try:
            result = job.run(job)
        except JobCancelled:
            job.state = "cancelled"
        except MaskscopeError as exc:
            job.error, job.exception, job.state = str(exc), exc, "failed"
        except Exception as exc:  # a bug: keep the worker alive and show what broke
            traceback.print_exc()
            job.error, job.state = f"internal error: {type(exc).__name__}: {exc}", "failed"
        else:
            job.result, job.state = result, "done"
