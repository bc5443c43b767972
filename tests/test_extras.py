"""A missing or shadowed optional dependency is one line naming the fix."""

from __future__ import annotations

import sys
import types

import pytest

from maskscope.cli.main import main
from maskscope.errors import MissingExtraError
from maskscope.extras import check_opencv, missing_extra
from maskscope.methods import get_method


def test_missing_extras_name_their_pip_install():
    error = missing_extra(ModuleNotFoundError("No module named 'threadpoolctl'", name="threadpoolctl"))
    assert isinstance(error, MissingExtraError) and "pip install -e '.[summaries]'" in str(error)
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None  # a core dependency: a real bug


def test_a_method_without_captum_says_which_extra(monkeypatch, tmp_path, capsys):
    for name in ["captum", *[m for m in sys.modules if m.startswith("captum.")]]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "maskscope.methods.gradient", raising=False)
    with pytest.raises(MissingExtraError, match=r"gradient.*\[baselines\]"):
        get_method("gradient")
    code = main(["explain", str(tmp_path / "x.png"), "--method", "gradient", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install -e '.[baselines]'" in err and len(err.strip().splitlines()) == 1


def test_opencv_without_contrib_is_diagnosed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", types.ModuleType("cv2"))  # the plain build: no ximgproc
    monkeypatch.setattr("maskscope.extras._installed", lambda name: name == "opencv-python")
    with pytest.raises(MissingExtraError, match="opencv-python shadows.*pip uninstall -y opencv-python"):
        check_opencv()


def test_the_real_opencv_passes():
    check_opencv()
