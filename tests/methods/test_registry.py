"""The method registry: specs that agree with the functions, option checks, one mask per image,
and a user's own function run as a method through ``explain_files``, ``evaluate`` and the CLI."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from fixtures import BLOB_H, BLOB_W, tiny_model
from PIL import Image

import maskscope
from maskscope.cli.main import main
from maskscope.errors import ConfigError
from maskscope.methods import (
    DEFAULT_METHODS,
    METHODS,
    explain_batch,
    get_method,
    get_spec,
    register_method,
    unregister_method,
)
from maskscope.methods.registry import call_method, per_image_masks

pytestmark = pytest.mark.usefixtures("one_thread")


def blob_masks(model, images, target):
    """The analytic answer for ``BlobDetector``: the pixels where the target's colour is bright."""
    channel = images[torch.arange(images.shape[0]), target]  # (B, H, W), one channel per image
    return (channel > 0.5).float()


def left_half(model, images, target):
    masks = torch.zeros(images.shape[0], 1, *images.shape[-2:])
    masks[..., : images.shape[-1] // 2] = 1.0
    return masks


@pytest.fixture
def blob():
    maskscope.register_method("blob", blob_masks)
    yield "blob"
    unregister_method("blob")


def blob_image(red: bool = True, seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    img = (rng.random((BLOB_H, BLOB_W, 3)) * 60).astype(np.uint8)
    x0, y0 = 10 + seed, 8 + seed
    img[y0 : y0 + 16, x0 : x0 + 20, 0 if red else 1] = 240
    return img, (x0, y0, x0 + 19, y0 + 15)


# -- the built-in specs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_spec_agrees_with_its_function(name):
    spec = get_spec(name)
    parameters = inspect.signature(get_method(name)).parameters
    assert list(parameters)[:3] == ["model", "images", "target"]
    assert set(spec.options) == set(list(parameters)[3:])
    assert spec.progress == ("progress" in parameters)
    assert spec.iterative == ("iterations" in parameters)
    assert spec.areas == ("areas" in parameters) and spec.masker == ("masker" in parameters)
    if "game" in parameters:
        assert spec.default_game == parameters["game"].default and spec.default_game in spec.games
    if spec.early_stop is not None:
        assert parameters["early_stop"].default is spec.early_stop
    if spec.second_stage is not None:
        assert spec.second_stage in parameters


def test_what_the_callers_used_to_hard_code():
    assert [n for n, s in METHODS.items() if s.iterative] == ["meaningful", "crisp", "extremal"]
    assert [n for n, s in METHODS.items() if s.immediate] == ["realtime", "center", "full"]
    assert [n for n, s in METHODS.items() if s.hooks_model] == ["guided-backprop", "gradcam"]
    assert get_spec("extremal").default_game == "preserve" and "dual" in get_spec("extremal").games
    assert get_spec("crisp").iteration_options(10) == {"iterations": 10, "crisp_iterations": 5}
    assert get_spec("gradient").iteration_options(10) == {}
    assert set(DEFAULT_METHODS) <= set(METHODS)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        get_spec("nope")


def test_asking_a_spec_imports_no_heavy_method():
    code = ("import sys; from maskscope.methods import METHODS; "
            "flags = [s.hooks_model or s.immediate for s in METHODS.values()]; "
            "print('captum' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr


def test_options_are_checked_and_parsed_by_their_types():
    occlusion = get_spec("occlusion")
    occlusion.check_options({"stride": 4, "window": None, "baseline": "zero"})
    assert occlusion.parse_option("stride", "32") == 32
    assert get_spec("meaningful").parse_option("preset", "fong2017") == "fong2017"
    assert get_spec("extremal").parse_option("areas", "[0.1, 0.2]") == [0.1, 0.2]
    with pytest.raises(ConfigError, match="^method 'occlusion' has no option 'sigma'$"):
        occlusion.check_options({"sigma": 2})
    for bad in ("abc", "2.5", "true"):
        with pytest.raises(ConfigError, match="option 'stride' takes an integer or null"):
            occlusion.parse_option("stride", bad)
    with pytest.raises(ConfigError, match="takes a number or a list of numbers"):
        get_spec("extremal").check_options({"areas": "big"})
    get_spec("gradcam").check_options({"layer": torch.nn.Conv2d(3, 1, 1)})  # an object: its own check


def test_a_kwargs_method_takes_any_option_but_never_the_calls_own_arguments():
    def open_ended(model, images, target, **extra):
        return left_half(model, images, target)

    register_method("open", open_ended)
    try:
        spec = get_spec("open")
        spec.check_options({"anything": 1})  # **extra takes it
        for name in ("model", "images", "target"):
            with pytest.raises(ConfigError, match=f"^method 'open' has no option '{name}'$"):
                spec.check_options({name: 1})
        with pytest.raises(ConfigError, match="^method 'open' has no option 'anything'$"):
            spec.check_options({"anything": 1}, named_only=True)  # explain's --option: named ones only
    finally:
        unregister_method("open")


# -- one mask per image ---------------------------------------------------------------------------
def test_extremal_with_several_areas_gives_one_combined_mask_per_image(quadrant_model):
    from fixtures import quadrant_images

    from maskscope.methods.extremal import combine_areas

    images = quadrant_images(2)
    options = {"areas": [0.1, 0.3], "iterations": 3}
    explanation = call_method("extremal", quadrant_model, images, 0, options)
    assert len(explanation) == 4
    masks = explain_batch("extremal", quadrant_model, images, 0, options)
    assert masks.shape == (2, 1, 64, 64)
    assert torch.equal(masks, combine_areas(explanation).float().clamp(0, 1))
    assert torch.equal(per_image_masks(explanation, (32, 32)),
                       torch.nn.functional.interpolate(masks, size=(32, 32), mode="bilinear"))


# -- a user's own method --------------------------------------------------------------------------
def test_a_user_function_gets_resolved_targets_and_a_scored_explanation(blob):
    model = tiny_model()
    images = torch.stack([torch.from_numpy(blob_image(red)[0]).permute(2, 0, 1).float() / 255
                          for red in (True, False)])
    seen = {}

    def whole(model, images, target):
        seen["target"] = target
        return torch.ones(images.shape[0], 1, 4, 4)  # coarse: resized to the images

    register_method("whole", whole)
    try:
        explanation = get_method("whole")(model, images)  # top-1: red blob 0, green blob 1
        assert seen["target"].tolist() == [0, 1]
        assert explanation.masks.shape == (2, 1, BLOB_H, BLOB_W)
        assert torch.allclose(explanation.masks, torch.ones(1))
        assert explanation.method == "whole"
        # all salient: keeping the salient region keeps the whole image
        assert torch.allclose(explanation.p_preserved, explanation.p_original)
    finally:
        unregister_method("whole")
    masks = explain_batch(blob, model, images, torch.tensor([0, 1]))
    expected = blob_masks(None, images, torch.tensor([0, 1]))[:, None]
    assert torch.equal(masks, expected)


def test_register_refuses_built_in_names_bad_names_and_bad_functions(blob):
    with pytest.raises(ConfigError, match="'gradient' is a built-in method"):
        register_method("gradient", blob_masks)
    with pytest.raises(ConfigError, match="method name"):
        register_method("a,b", blob_masks)
    with pytest.raises(ConfigError, match="must take \\(model, images, target\\)"):
        register_method("two", lambda model, images: images)
    with pytest.raises(ConfigError, match="no spec field 'gamez'"):
        register_method("mine", blob_masks, gamez=("delete",))
    register_method("flat", lambda model, images, target: images.flatten(1))
    register_method("raw", lambda model, images, target: 255 * images[:, :1])
    try:
        with pytest.raises(ConfigError, match="returned masks of shape \\(2, 192\\)"):
            get_method("flat")(tiny_model(), torch.rand(2, 3, 8, 8))
        with pytest.raises(ConfigError, match="outside \\[0, 1\\]"):
            get_method("raw")(tiny_model(), torch.rand(2, 3, 8, 8))
    finally:
        unregister_method("flat")
        unregister_method("raw")
    register_method("gradient", blob_masks, replace=True)
    assert get_spec("gradient").user_function is blob_masks
    unregister_method("gradient")
    assert get_spec("gradient").location == "maskscope.methods.gradient:gradient"


def test_a_user_method_runs_through_explain_files(blob, tmp_path):
    img, (x0, y0, x1, y1) = blob_image()
    Image.fromarray(img).save(tmp_path / "red.png")
    [result] = list(maskscope.explain_files(tiny_model(), [tmp_path / "red.png"], method=blob))
    [record] = result.explanation.save(tmp_path / "out", figures=False)
    assert record["method"] == "blob" and record["target"] == 0
    mask = np.load(tmp_path / "out" / "red.npy")
    assert mask[y0 : y1 + 1, x0 : x1 + 1].min() == 1 and mask.sum() == 16 * 20
    # the function itself, unregistered, works the same
    [direct] = list(maskscope.explain_files(tiny_model(), [tmp_path / "red.png"], method=blob_masks))
    assert torch.equal(direct.explanation.masks, result.explanation.masks)


def test_a_user_method_runs_through_the_cli_when_registered_in_process(blob, tmp_path, capsys):
    img, _ = blob_image()
    Image.fromarray(img).save(tmp_path / "red.png")
    out = tmp_path / "out"
    code = main(["explain", str(tmp_path / "red.png"), "--method", blob,
                 "--classifier", "fixtures:tiny_model", "--out", str(out), "--no-figures", "--json"])
    assert code == 0, capsys.readouterr().err
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["method"] == "blob"
    assert record["area"] == pytest.approx(16 * 20 / (BLOB_H * BLOB_W), abs=1e-6)


def _folder(root, n: int = 6):
    (root / "images").mkdir(parents=True)
    annotations = {}
    for i in range(n):
        img, box = blob_image(red=i % 2 == 0, seed=i)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        annotations[f"s{i}.png"] = {"class_index": i % 2, "boxes": [list(box)], "width": BLOB_W,
                                    "height": BLOB_H}
    (root / "annotations.json").write_text(json.dumps(annotations))
    return root


def test_a_user_method_runs_through_evaluate_from_python(blob, tmp_path):
    from maskscope.data.folders import load_folder
    from maskscope.evaluate import EvalConfig, evaluate

    dataset = load_folder(_folder(tmp_path / "data"), require_boxes=True)
    config = EvalConfig(methods=[blob], references=False, progress=False, batch_size=4)
    metrics = evaluate(dataset, tiny_model(), tmp_path / "out", config).metrics
    row = metrics["blob"]
    assert row["area"] == pytest.approx(16 * 20 / (BLOB_H * BLOB_W), rel=1e-3)
    assert row["localisation"]["fixed@0.5"]["error"] == 0 and row["pointing"] == 1
    assert EvalConfig(methods=[blob_masks]).methods == ["blob"]  # already registered: its name

    def bright(model, images, target):
        return blob_masks(model, images, target)

    # a function not registered yet is, under its own name, and gives the same row
    direct = EvalConfig(methods=[bright], references=False, progress=False, batch_size=4)
    try:
        assert direct.methods == ["bright"]
        again = evaluate(dataset, tiny_model(), tmp_path / "out2", direct).metrics["bright"]
    finally:
        unregister_method("bright")
    assert again == row
    # an edited function under the same name does not reuse the first one's masks
    maskscope.register_method(blob, left_half)
    with pytest.raises(ConfigError, match="other settings \\(function\\)"):
        evaluate(dataset, tiny_model(), tmp_path / "out", config)
    with pytest.raises(ConfigError, match="method 'blob' has no option 'stride'"):
        evaluate(dataset, tiny_model(), tmp_path / "out3",
                 EvalConfig(methods=[blob], options={"blob": {"stride": 1}}))
