"""Datasets: plain and annotated image folders, and the synthetic benchmark with known ground truth.

Import the submodules directly (``maskscope.data.folders``, ``maskscope.data.synthetic``).
"""
