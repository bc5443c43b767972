"""Analyses that use masks to answer questions about a model (Fong & Vedaldi 2017, §5.4–§5.5).

- ``adversarial``: iterative-FGSM adversarial images, whether their masks give them away, and
  whether deleting the mask's region brings the clean label back.
- ``parts``: is one named part (eyes, a head) more salient than another? A paired test of the
  mask's intensity around annotated keypoints.
- ``sanity``: the sanity check of Adebayo et al. (2018): do a method's masks change when the
  model's weights are re-drawn, from the output down?

Submodules are imported on use (scikit-learn and SciPy load only when asked for).
"""
