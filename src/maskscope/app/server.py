"""The explorer's web server: pages from Jinja2 templates, a JSON API, files only by id or inside
the folders it was given.

Torch never runs on the event loop: the masker and the top-5 run in a small thread pool (sync
endpoints), everything iterative on the job queue's one worker. Every bad input is a
``MaskscopeError`` and becomes a 4xx answer with a one-line ``detail``.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from ..blackbox import BlackBox
from ..errors import ConfigError, DataError, ImageError, MaskscopeError, TargetError
from ..methods import METHODS, get_spec
from ..storage import short_hash
from .catalog import Catalog, UploadTooLarge
from .evaluation import EvaluationRun, find_runs, read_summaries
from .explain import (
    ResultFiles,
    cache_key,
    first_method,
    has_shipped_masker,
    method_options,
    run_explanation,
    top_classes,
)
from .guard import add_guards
from .jobs import Job, JobQueue, QueueFull

HERE = Path(__file__).parent
THREADS = 4  # the request thread pool: enough for a page's parallel requests, few for 2 cores
# what the page offers first: the masker answers at once, the optimised methods are jobs
METHOD_ORDER = ("realtime", "meaningful", "crisp", "extremal", "gradient", "guided-backprop", "gradcam",
                "occlusion", "rise", "center", "full")
MAX_SEED = 2**63 - 1  # what every generator a method seeds takes
STATUS = {QueueFull: 429, UploadTooLarge: 413, ImageError: 415, TargetError: 422, ConfigError: 400,
          DataError: 404}


class ExplainRequest(BaseModel):
    image: str
    method: str
    target: int | None = None  # None: the model's top class
    options: dict[str, Any] = {}


@dataclass
class Explorer:
    """What the pages work on: the model (loaded once), the images, the jobs, the folders."""

    blackbox: BlackBox
    catalog: Catalog
    evaluation: Path | None = None
    summaries: Path | None = None
    masker_path: Path | None = None  # None: the masker shipped for the model, if there is one
    allow_other_classifier: bool = False
    hosts: tuple[str, ...] = ()  # the address it is bound to (``--host``), answered besides loopback
    jobs: JobQueue = field(default_factory=JobQueue)
    # held by anything that runs the model outside the worker, and by the worker's hooking methods
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    _masker: Any = field(default=None, init=False, repr=False)
    _first: Any = field(default=None, init=False, repr=False)

    def masker(self):
        """The real-time masker for this model, loaded on first use and kept."""
        with self.model_lock:
            if self._masker is None:
                from ..methods.realtime import load_masker

                self._masker = load_masker(self.blackbox, self.masker_path,
                                           allow_other_classifier=self.allow_other_classifier)
        return self._masker

    def has_masker(self) -> bool:
        return self.masker_path is not None or has_shipped_masker(self.blackbox)

    def first_method(self) -> dict[str, Any]:
        """What the explain page ticks first (``first_method``: a probe forward), found once."""
        with self.model_lock:
            if self._first is None:
                self._first = first_method(self.blackbox, self.has_masker())
        return self._first

    @property
    def results(self) -> Path:
        return self.catalog.scratch / "results"

    def close(self) -> None:
        self.jobs.close()
        self.catalog.close()


def contained(root: Path, relative: str) -> Path:
    """``root/relative`` if it is a file inside ``root`` (no ``..``, no link out, no NUL byte), else 404."""
    base = root.resolve()
    try:
        path = (base / relative).resolve()
        found = path.is_relative_to(base) and path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        found = False
    if not found:
        raise HTTPException(404, f"no such file: {relative!r}")
    return path


def check_request_numbers(bb: BlackBox, target: int | None, options: dict[str, Any]) -> None:
    """A target or seed that no tensor or generator can hold is a 4xx answer here, not a failed job."""
    if target is not None and not 0 <= target < bb.num_classes:
        raise TargetError(f"target class {target} is out of range: the model has {bb.num_classes} classes")
    seed = options.get("seed")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to 2**63 - 1, got {seed}")


def create_app(explorer: Explorer) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        yield
        explorer.close()

    app = FastAPI(title="maskscope explorer", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.explorer = explorer
    add_guards(app, explorer.hosts, explorer.catalog.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes every .html template
    bb = explorer.blackbox

    @app.exception_handler(MaskscopeError)
    async def bad_input(_request: Request, exc: MaskscopeError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    def page(request: Request, name: str, title: str, data: dict[str, Any]):
        return templates.TemplateResponse(request, name, {"title": title, "data": data, "model": bb.name})

    def methods() -> list[dict[str, Any]]:
        names = [m for m in METHOD_ORDER if m in METHODS] + [m for m in METHODS if m not in METHOD_ORDER]
        return [{"name": m, "label": m, "immediate": get_spec(m).immediate}
                for m in names]

    def images() -> list[dict[str, str]]:
        return [e.public() for e in explorer.catalog.entries()]

    # -- pages ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def home():
        return RedirectResponse("/explain")

    @app.get("/explain")
    def explain_page(request: Request):  # sync: its first call runs the model once
        return page(request, "explain.html", "Explain",
                    {"images": images(), "methods": methods(), "classes": _class_names(bb),
                     **explorer.first_method()})

    @app.get("/compare")
    async def compare_page(request: Request):
        return page(request, "compare.html", "Compare",
                    {"images": images(), "methods": methods(), "masker": explorer.has_masker()})

    @app.get("/evaluation")
    async def evaluation_page(request: Request, run: str | None = None):
        if explorer.evaluation is None:
            return page(request, "missing.html", "Evaluation", {"what": "evaluation", "flag": "--evaluation"})
        runs = find_runs(explorer.evaluation)
        name = run if run in runs else next(iter(runs))
        evaluation = _run(name)
        return page(request, "evaluation.html", "Evaluation", {
            "runs": list(runs), "run": name, "tables": evaluation.tables(),
            "plots": evaluation.plots(), "methods": evaluation.methods, "folder": str(explorer.evaluation)})

    @app.get("/summaries")
    async def summaries_page(request: Request):
        if explorer.summaries is None:
            return page(request, "missing.html", "Summaries", {"what": "summaries", "flag": "--summaries"})
        report = read_summaries(explorer.summaries)
        return page(request, "summaries.html", "Summaries", {"report": report})

    # -- images and classes -------------------------------------------------------------------------
    @app.get("/api/health")
    async def health():
        return {"status": "ok", "pending_jobs": explorer.jobs.pending()}

    @app.get("/api/images")
    async def list_images():
        return images()

    @app.post("/api/images")
    async def upload(file: UploadFile = File(...)):
        limit = explorer.catalog.max_upload_bytes
        if file.size is not None and file.size > limit:
            raise UploadTooLarge(f"{file.filename}: upload is {file.size / 1e6:.1f} MB, above the limit of "
                                 f"{limit / 1e6:g} MB")
        data = await file.read(limit + 1)
        import anyio.to_thread

        entry = await anyio.to_thread.run_sync(explorer.catalog.add_upload, file.filename or "upload", data)
        return entry.public()

    def _entry(image_id: str):
        entry = explorer.catalog.get(image_id)
        if entry is None:
            raise HTTPException(404, f"no image with id {image_id!r}")
        if not entry.path.is_file():
            raise HTTPException(404, f"{entry.name}: the image is no longer on disk")
        return entry

    @app.get("/api/images/{image_id}")
    async def image_file(image_id: str):
        return FileResponse(_entry(image_id).path)

    @app.get("/api/images/{image_id}/top")
    def image_top(image_id: str):
        entry = _entry(image_id)
        with explorer.model_lock:
            return {"image": entry.public(), "top": top_classes(bb, entry)}

    @app.get("/api/classes")
    async def classes():
        return _class_names(bb)

    @app.get("/api/methods")
    async def list_methods():
        return methods()

    # -- jobs -------------------------------------------------------------------------------------
    def job_json(job: Job) -> dict[str, Any]:
        out = job.status()
        if job.state == "done":
            base = f"/api/jobs/{job.id}/files/"
            result = job.result.public()
            rows = [{**row, "urls": {k: base + v for k, v in row["files"].items()}} for row in result["rows"]]
            out["result"] = {**result, "rows": rows}
        return out

    @app.post("/api/jobs")
    def submit(request: ExplainRequest):
        entry = _entry(request.image)
        options = method_options(request.method, request.options)
        target = request.target
        check_request_numbers(bb, target, options)
        if target is not None:
            bb.check_target(target)  # an unknown class fails here, before a job starts
        key = cache_key(entry, request.method, target if target is not None else "top1", options)
        folder = explorer.results / short_hash(key, 16)
        label = f"{request.method} on {entry.name}"

        def run(job: Job) -> ResultFiles:
            lock = explorer.model_lock if get_spec(request.method).hooks_model else contextlib.nullcontext()
            with lock:
                return run_explanation(bb, entry, request.method, target, options, folder, job.progress)

        if get_spec(request.method).immediate:
            def immediate(job: Job) -> ResultFiles:
                masker = explorer.masker() if get_spec(request.method).masker else None
                with explorer.model_lock:
                    return run_explanation(bb, entry, request.method, target, options, folder, masker=masker)

            job, _ = explorer.jobs.finished_result(key, label, immediate)
            if job.exception is not None:
                raise job.exception
            if job.state == "failed":
                return JSONResponse({**job.status(), "detail": job.error}, status_code=500)
            return job_json(job)
        job, _ = explorer.jobs.submit(key, label, run)
        return JSONResponse(job_json(job), status_code=200 if job.state == "done" else 202)

    def _job(job_id: str) -> Job:
        job = explorer.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job with id {job_id!r}")
        return job

    @app.get("/api/jobs")
    async def list_jobs():
        return [j.status() for j in explorer.jobs.jobs()]

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str):
        return job_json(_job(job_id))

    @app.post("/api/jobs/{job_id}/cancel")
    async def cancel(job_id: str):
        job = _job(job_id)
        if job.state in ("done", "failed"):
            raise HTTPException(409, f"job {job_id} has already {job.state}")
        explorer.jobs.cancel(job_id)
        return job.status()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str):  # sync: a file's first request may write it (torch, PNG)
        job = _job(job_id)
        path = job.result.path(name) if job.state == "done" else None
        if path is None:
            raise HTTPException(404, f"job {job_id} has no file {name!r}")
        download = name.endswith((".npy", ".json"))
        return FileResponse(path, filename=name if download else None)

    # -- evaluation and summaries -------------------------------------------------------------------
    runs_cache: dict[str, EvaluationRun] = {}

    def _run(name: str) -> EvaluationRun:
        if explorer.evaluation is None:
            raise HTTPException(404, "the explorer was started without --evaluation")
        runs = find_runs(explorer.evaluation)
        if name not in runs:
            raise HTTPException(404, f"no evaluation named {name!r}")
        if name not in runs_cache:
            runs_cache[name] = EvaluationRun(runs[name], {bb.name: bb.class_names or []})
        return runs_cache[name]

    @app.get("/api/evaluation/{run}/images")
    def evaluation_images(run: str):
        evaluation = _run(run)
        return {"size": evaluation.info.get("size"), "methods": evaluation.methods,
                "images": evaluation.images}

    @app.get("/api/evaluation/{run}/images/{key}")
    def evaluation_image(run: str, key: str):
        path = _run(run).image_path(key)
        if path is None or not path.is_file():
            raise HTTPException(404, f"no image {key!r} in evaluation {run!r}")
        return FileResponse(path)

    @app.get("/evaluation/{run}/files/{relative:path}")
    async def evaluation_file(run: str, relative: str):
        return FileResponse(contained(_run(run).folder, relative))

    @app.get("/summaries/files/{relative:path}")
    async def summaries_file(relative: str):
        if explorer.summaries is None:
            raise HTTPException(404, "the explorer was started without --summaries")
        return FileResponse(contained(explorer.summaries, relative))

    return app


def _class_names(bb: BlackBox) -> list[dict[str, Any]]:
    names = bb.class_names or [f"class {i}" for i in range(bb.num_classes)]
    return [{"index": i, "name": n} for i, n in enumerate(names)]
