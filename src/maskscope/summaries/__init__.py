"""Visual summaries (Godi et al. 2019): what a classifier relies on across the images of a class.

crisp masks → regions (connected components) → selective-search proposals → proposal flow (LOM)
over all image pairs → pruning → affinity propagation → SSIM check → summaries, an HTML report,
and summary-driven SVM specialisation. One module per stage:

- ``masks``: crisp masks for image files, cached per image; targets from labels / top-1 / a name
- ``regions``, ``proposals``, ``flow``, ``cluster``: the stages above
- ``pipeline``: ``summarize_class`` (images + masks) and ``summarize_images`` (tensors, masks too)
- ``folder``: ``summarize_folder``, the whole run for a folder of files (what ``maskscope summarize`` does)
- ``render``: ``summaries.json`` and ``index.html``
- ``specialise``: ``specialise(...)``, one linear SVM per summary blended with the softmax
"""

from ..extras import check_opencv

check_opencv()  # before cv2 is used: a shadowing opencv-python is one line with the fix, not a crash

from .folder import FolderSummary, summarize_folder  # noqa: E402
from .pipeline import Part, Summary, SummaryResult, summarize_class, summarize_images  # noqa: E402
from .specialise import SpecialisationResult, penultimate_features, specialise  # noqa: E402

__all__ = [
    "FolderSummary",
    "Part",
    "SpecialisationResult",
    "Summary",
    "SummaryResult",
    "penultimate_features",
    "specialise",
    "summarize_class",
    "summarize_folder",
    "summarize_images",
]
