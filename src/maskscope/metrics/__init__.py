"""Evaluation protocols of the three papers, one module per protocol.

localisation (Fong Table 1 / Dabkowski), pointing (Zhang et al.), saliency_metric (Dabkowski §4.1),
drop (Godi Table 2), suppression (Fong Fig. 8), curves (RISE deletion / insertion), background (the
synthetic benchmark's off-object share). Each works on masks you already have (salient masks
(B, 1, H, W), 1 = salient, or (H, W) ones) and boxes ``[xmin, ymin, xmax, ymax]`` in inclusive
pixel coordinates of the masked image (``maskscope.boxes``), and each has an accumulator on the
shared ``base.Accumulator`` (``update`` per batch, ``compute`` at the end) for whole datasets.
The box helpers are re-exported here for convenience; they live in ``maskscope.boxes``.
"""

from ..boxes import (
    THRESHOLD_MODES,
    Box,
    box_area,
    box_to_mask,
    boxes_to_mask,
    center_box,
    iou,
    mask_to_box,
    pixel_box,
    scale_box,
    threshold_mask,
    validate_box,
)
from .background import background_by_class, background_share
from .base import Accumulator
from .curves import CurveResult, DeletionInsertion, deletion_insertion_auc
from .drop import ProbabilityDrop, drop_from_explanation, drop_from_probabilities, probability_drop
from .localisation import DEFAULT_ALPHAS, LocalisationError, localisation_correct, tune_threshold
from .pointing import PointingGame, max_point, pointing_hit
from .representativeness import (
    ALPHAS,
    CROSS_PERTURBATIONS,
    REPR_PERTURBATIONS,
    Representativeness,
    RepresentativenessResult,
    cross_perturbation_drop,
    curve_auc,
    keep_masks,
    representativeness,
)
from .saliency_metric import SaliencyMetric, crop_scores, saliency_metric, salient_boxes
from .sanity import (
    SanityResult,
    Stage,
    cascade_groups,
    cascade_stages,
    randomised_cascade,
    rank_correlation,
    structural_similarity,
)
from .suppression import (
    LEVELS,
    MinimalBoxes,
    SuppressionResult,
    grid_boxes,
    mask_box_suppression,
    normalised_score,
    smallest_suppressive_box,
)

__all__ = [
    "Accumulator",
    "SanityResult",
    "Stage",
    "cascade_groups",
    "cascade_stages",
    "randomised_cascade",
    "rank_correlation",
    "structural_similarity",
    "ALPHAS",
    "CROSS_PERTURBATIONS",
    "REPR_PERTURBATIONS",
    "Representativeness",
    "RepresentativenessResult",
    "cross_perturbation_drop",
    "curve_auc",
    "keep_masks",
    "representativeness",
    "DEFAULT_ALPHAS",
    "LEVELS",
    "THRESHOLD_MODES",
    "Box",
    "CurveResult",
    "DeletionInsertion",
    "LocalisationError",
    "MinimalBoxes",
    "PointingGame",
    "ProbabilityDrop",
    "SaliencyMetric",
    "SuppressionResult",
    "background_by_class",
    "background_share",
    "box_area",
    "box_to_mask",
    "boxes_to_mask",
    "center_box",
    "crop_scores",
    "deletion_insertion_auc",
    "drop_from_explanation",
    "drop_from_probabilities",
    "grid_boxes",
    "iou",
    "localisation_correct",
    "mask_box_suppression",
    "mask_to_box",
    "max_point",
    "normalised_score",
    "pixel_box",
    "pointing_hit",
    "probability_drop",
    "saliency_metric",
    "salient_boxes",
    "scale_box",
    "smallest_suppressive_box",
    "threshold_mask",
    "tune_threshold",
    "validate_box",
]
