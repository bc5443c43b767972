"""The public names: every method a top-level function, every name in ``dir(maskscope)``, and
``import maskscope`` still cheap (the heavy parts load on first use)."""

from __future__ import annotations

import subprocess
import sys

import maskscope as ms
from maskscope.methods import METHODS, get_method


def test_every_method_is_a_top_level_function():
    assert ms.gradcam is get_method("gradcam") and ms.guided_backprop is get_method("guided-backprop")
    assert ms.realtime_saliency is get_method("realtime")
    functions = {getattr(ms, name) for name in ms.__all__ if callable(getattr(ms, name))}
    assert {get_method(name) for name in METHODS} <= functions


def test_dir_lists_every_public_name_the_lazy_ones_too():
    names = dir(ms)
    assert set(ms.__all__) <= set(names)
    assert {"realtime_saliency", "get_method", "explain_files", "gradcam", "rise"} <= set(names)
    for name in ms.__all__:
        getattr(ms, name)


def test_importing_maskscope_loads_no_method_backend():
    code = ("import sys, maskscope; heavy = {'captum', 'transformers', 'maskscope.methods.gradcam', "
            "'maskscope.methods.realtime', 'maskscope.layers'}; print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
