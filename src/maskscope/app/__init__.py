"""``maskscope serve``: a local web explorer for explanations, evaluations and summaries.

Needs the optional extra ``maskscope[app]`` (FastAPI, uvicorn, Jinja2); every asset is served from
this package, so it works offline.
"""

from __future__ import annotations

from .server import Explorer, create_app

__all__ = ["Explorer", "create_app"]
