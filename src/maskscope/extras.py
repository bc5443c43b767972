"""Optional dependencies: which ``maskscope[...]`` extra brings each, so that a missing (or
shadowed) one is one line naming the ``pip install`` that fixes it, never a traceback."""

from __future__ import annotations

from importlib import metadata

from .errors import MissingExtraError

# top-level import name -> (PyPI distribution, extra)
EXTRAS = {
    "captum": ("captum", "baselines"),
    "sklearn": ("scikit-learn", "summaries"),
    "skimage": ("scikit-image", "summaries"),
    "cv2": ("opencv-contrib-python-headless", "summaries"),
    "threadpoolctl": ("threadpoolctl", "summaries"),
    "imageio": ("imageio", "video"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "video"),
    "playwright": ("playwright", "browser"),
}

# OpenCV builds that install the same ``cv2`` package without the contrib modules
PLAIN_OPENCV = ("opencv-python", "opencv-python-headless", "opencv-contrib-python")


def install_hint(extra: str) -> str:
    """How to add an extra: maskscope is not on a package index, so from a clone or a wheel."""
    return f"pip install -e '.[{extra}]' in a maskscope clone, or the wheel with [{extra}]"


def missing_extra(exc: ImportError) -> MissingExtraError | None:
    """The one-line error for an ImportError of an optional dependency; None for anything else."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    dist, extra = EXTRAS[top]
    return MissingExtraError(
        f"this needs {dist} (extra '{extra}'), which is not installed: {install_hint(extra)}"
    )


def check_opencv() -> None:
    """The summaries need OpenCV's contrib modules (selective search in ``cv2.ximgproc``). Another
    OpenCV wheel installed beside the contrib one (Quantus, for one, pulls ``opencv-python``) owns
    the same ``cv2`` folder and hides them: name the culprit and the fix."""
    try:
        import cv2
    except ImportError as exc:
        raise missing_extra(exc) or exc from None
    if hasattr(cv2, "ximgproc"):
        return
    culprits = [name for name in PLAIN_OPENCV if _installed(name)]
    shadow = f" ({', '.join(culprits)} shadows opencv-contrib-python-headless)" if culprits else ""
    remove = " ".join(culprits) or "opencv-python"
    raise MissingExtraError(
        f"the imported OpenCV lacks the contrib modules (cv2.ximgproc){shadow}; fix: pip uninstall -y "
        f"{remove} && pip install --force-reinstall opencv-contrib-python-headless"
    )


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
