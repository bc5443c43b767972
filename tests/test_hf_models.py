"""Hugging Face ``transformers`` classifiers (tiny random configs): outputs with ``.logits``, a ViT
with no spatial conv for Grad-CAM, a ResNet whose 1×1 shortcut must not be Grad-CAM's layer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import maskscope as ms
from maskscope.errors import ConfigError
from maskscope.methods.gradcam import gradcam_layer
from maskscope.viz import perturbed_images

transformers = pytest.importorskip("transformers")

SIZE = 32


LABELS = {0: "tabby cat", 1: "beagle", 2: "goldfish", 3: "tench", 4: "daisy"}


def _labels(labels: dict | None) -> dict:
    if not labels:
        return {"num_labels": 5}
    return {"id2label": labels, "label2id": {v: k for k, v in labels.items()}}


def _vit(labels: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    named = _labels(labels)
    config = transformers.ViTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, **named)
    return transformers.ViTForImageClassification(config).eval()


def _resnet(labels: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    named = _labels(labels)
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                       layer_type="basic", **named)
    return transformers.ResNetForImageClassification(config).eval()


def labelled_classifier(kind: str = "vit") -> ms.BlackBox:
    """A tiny Hugging Face model with class names in its config, as ``--classifier`` loads it."""
    model = {"vit": _vit, "resnet": _resnet}[kind](LABELS)
    return ms.BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3, name=f"hf-{kind}")


def _images(n: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("build", [_vit, _resnet], ids=["vit", "resnet"])
def test_hugging_face_classifiers_explained(build, one_thread, tmp_path):
    model = build()
    bb = ms.BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3, name=build.__name__)
    x = _images()
    with torch.no_grad():
        own = model(pixel_values=(x - 0.5) / 0.5).logits.softmax(1)
    top = int(own.argmax())

    # random weights carry little evidence: a small area weight, so that some mask is worth its area
    meaningful = ms.meaningful_perturbation(bb, x, iterations=60, mask_scale=4, l1=1e-4)
    assert int(meaningful.targets[0, 0]) == top
    assert float(meaningful.p_original[0]) == pytest.approx(float(own[0, top]), abs=1e-5)
    assert float(meaningful.p_deleted[0]) < float(meaningful.p_original[0])  # deleting the mask hurts
    deleted, _ = perturbed_images(meaningful)  # and by as much as the model itself says
    with torch.no_grad():
        own_deleted = model(pixel_values=(deleted - 0.5) / 0.5).logits.softmax(1)[0, top]
    assert float(meaningful.p_deleted[0]) == pytest.approx(float(own_deleted), abs=1e-5)

    crisp = ms.crisp_mask(bb, x, iterations=20, crisp_iterations=20)
    assert float(crisp.p_original[0]) == pytest.approx(float(own[0, top]), abs=1e-5)
    assert float(crisp.p_deleted[0]) <= float(crisp.p_original[0]) + 1e-6

    grad = ms.get_method("gradient")(bb, x)
    assert float(grad.masks.max()) == pytest.approx(1.0) and float(grad.masks.mean()) < 1

    path = tmp_path / "noise.png"
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
    [result] = list(ms.explain_files(bb, [path], method="gradient"))
    assert result.explanation.masks.shape == (1, 1, SIZE, SIZE) and not result.failures


def test_gradcam_default_layer_is_the_main_path_not_the_shortcut():
    bb = ms.BlackBox(_resnet(), input_size=(SIZE, SIZE))
    name, layer = gradcam_layer(bb, _images())
    # the last block's 1×1 shortcut runs after its main path here; the main path's last conv is wanted
    assert name == "resnet.encoder.stages.1.layers.0.layer.1.convolution"
    assert layer.kernel_size == (3, 3)
    with pytest.warns(UserWarning, match="layer.1.convolution"):
        e = ms.get_method("gradcam")(bb, _images())
    assert e.params["layer"] == name and float(e.masks.max()) == pytest.approx(1.0)
    named = ms.get_method("gradcam")(bb, _images(), layer="resnet.embedder.embedder.convolution")
    assert named.params["layer"] == "resnet.embedder.embedder.convolution"


def test_gradcam_on_a_vit_reads_the_last_blocks_norm_as_a_grid():
    bb = ms.BlackBox(_vit(), input_size=(SIZE, SIZE))
    with pytest.warns(UserWarning, match=r"using vit\..*1\.layernorm_before"):
        e = ms.get_method("gradcam")(bb, _images())
    assert e.masks.shape == (1, 1, SIZE, SIZE)


def test_gradcam_on_a_patch_embedding_only_model_asks_for_a_layer():
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(ConfigError, match="patch embedding.*layer="):
        ms.get_method("gradcam")(ms.BlackBox(model, input_size=(SIZE, SIZE)), _images())


def test_random_configs_without_labels_have_no_class_names():
    assert ms.BlackBox(_vit()).class_names is None  # transformers' LABEL_0 ... placeholders name nothing


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_class_names_come_from_the_config(kind):
    bb = labelled_classifier(kind)
    assert bb.class_names == list(LABELS.values())
    e = ms.get_method("gradient")(bb, _images(2), target="goldfish")
    assert e.targets[:, 0].tolist() == [2, 2] and e.class_names == ["goldfish", "goldfish"]
    assert e.record(0)["class_name"] == "goldfish"
    top = ms.get_method("gradient")(bb, _images())
    assert top.class_names == [LABELS[int(top.targets[0, 0])]]


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_cli_target_by_the_configs_class_name(kind, tmp_path, capsys):
    from maskscope.cli.main import main

    path = tmp_path / "noise.png"
    Image.fromarray((_images()[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
    code = main(["explain", str(path), "--classifier", "test_hf_models:labelled_classifier",
                 "--classifier-arg", f"kind={kind}", "--method", "gradient", "--target", "beagle",
                 "--out", str(tmp_path / "out"), "--json", "--no-figures"])
    assert code == 0, capsys.readouterr().err
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["target"] == 1 and record["class_name"] == "beagle"
    saved = json.loads((tmp_path / "out" / "noise.json").read_text())
    assert saved["class_name"] == "beagle"


def _swin() -> torch.nn.Module:
    config = transformers.SwinConfig(image_size=SIZE, patch_size=4, embed_dim=16, depths=[1, 1],
                                     num_heads=[2, 2], window_size=4, num_labels=3)
    return transformers.SwinForImageClassification(config)


def _deit() -> torch.nn.Module:  # a class and a distillation token before the patches
    config = transformers.DeiTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_labels=3)
    return transformers.DeiTForImageClassificationWithTeacher(config)


@pytest.mark.parametrize(("build", "layer"), [
    (_swin, r"swin\.encoder\.layers\.1\.blocks\.0\.layernorm_before"),
    (_deit, r"deit\..*1\.layernorm_before"),
], ids=["swin", "deit"])
def test_gradcam_default_layer_on_swin_and_deit(build, layer):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build().eval()
    bb = ms.BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.warns(UserWarning, match=f"using {layer}"):
        e = ms.gradcam(bb, _images(2))
    assert e.masks.shape == (2, 1, SIZE, SIZE) and float(e.masks.amax()) == pytest.approx(1.0)
