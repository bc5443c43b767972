"""The part-saliency test: the window statistic, the paired test, and a case whose answer is known."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from maskscope.analysis.parts import (
    compare_parts,
    paired_test,
    scale_keypoints,
    window_mean,
    window_side,
)
from maskscope.cli.main import main
from maskscope.data.folders import load_folder
from maskscope.data.synthetic import make_scenes, write_annotated_folder
from maskscope.data.synthetic_models import load_part_classifier
from maskscope.errors import DataError
from maskscope.methods import meaningful_perturbation


def test_window_scales_with_the_image_and_stays_odd():
    assert window_side((224, 224)) == 5 and window_side((227, 300)) == 5
    assert window_side((64, 64)) == 1 and window_side((112, 112)) == 3 and window_side((448, 448)) == 11


def test_window_mean_is_exact_on_a_ramp():
    h, w = 20, 30
    ramp = torch.arange(h * w, dtype=torch.float64).view(h, w)  # y·w + x: a window's mean is its centre's
    assert window_mean(ramp, 10, 12, 5) == 12 * w + 10
    assert window_mean(ramp, 10.4, 11.6, 5) == 12 * w + 10  # nearest pixel
    assert window_mean(ramp, 0, 0, 5) == float(ramp[:3, :3].mean())  # cut at the corner
    assert window_mean(ramp, 29, 19, 3) == float(ramp[18:, 28:].mean())
    mask = torch.zeros(1, 1, 20, 30)
    mask[..., 5:10, 5:10] = 1.0
    assert window_mean(mask[0, 0], 7, 7, 5) == 1.0 and window_mean(mask[0, 0], 9, 9, 5) == 9 / 25
    for x, y in ((30, 5), (-1, 5), (5, 20)):
        with pytest.raises(DataError, match="outside"):
            window_mean(ramp, x, y, 5)


def test_paired_test_gives_scipys_answer():
    rng = np.random.default_rng(0)
    a = rng.normal(0.6, 0.2, 15)
    b = a - rng.normal(0.1, 0.1, 15)
    t = paired_test(a, b, "eye", "foot", confidence=0.9)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.9)
    assert t.n == 15 and t.mean_difference == pytest.approx(np.mean(a - b))
    assert t.t == pytest.approx(ref.statistic) and t.p_value == pytest.approx(ref.pvalue)
    assert (t.ci_low, t.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert t.wilcoxon_p == pytest.approx(stats.wilcoxon(a, b).pvalue)
    same = paired_test(a, a)  # every difference is 0
    assert same.p_value == 1.0 and same.t == 0.0 and same.wilcoxon_p is None
    with pytest.raises(DataError, match="too few"):
        paired_test(a[:2], b[:2])


def test_compare_parts_uses_the_images_having_both_and_names_missing_parts():
    masks = torch.zeros(4, 1, 16, 16)
    masks[:, :, :8] = torch.tensor([1.0, 0.9, 0.7, 0.8]).view(4, 1, 1, 1)  # the top half is salient
    kps = [{"eye": [(4, 2)], "foot": [(4, 12)]}, {"eye": [(10, 3), (3, 3)], "foot": [(8, 14)]},
           {"eye": [(2, 2)], "foot": [(12, 12)]}, {"eye": [(5, 5)]}]
    test, rows = compare_parts(masks, kps, "eye", "foot", side=3)
    assert test.n == 3 and test.mean_a == pytest.approx(0.8667, abs=1e-4) and test.mean_b == 0.0
    assert rows[1]["eye"] == pytest.approx(0.9) and rows[3]["foot"] is None
    with pytest.raises(DataError, match="no image has keypoints of part 'nose'.*eye, foot"):
        compare_parts(masks, kps, "eye", "nose")
    s = 224 / 227  # pixel centres map to pixel centres: the image's edges stay its edges
    scaled = scale_keypoints({"eye": [(0, 0), (226, 226)]}, (227, 227), (224, 224))["eye"]
    assert scaled[0] == pytest.approx((0.5 * s - 0.5,) * 2)
    assert scaled[1] == pytest.approx((226.5 * s - 0.5,) * 2)


def test_synthetic_part_centres_lie_in_their_parts_and_reach_the_folder(tmp_path):
    scenes = make_scenes(20, "parts", "test", seed=2)
    for masks, centres in zip(scenes.part_masks, scenes.part_centres):
        for mask, (x, y) in zip(masks, centres.tolist()):
            assert mask[round(y), round(x)]
    dataset = load_folder(write_annotated_folder(scenes.subset(slice(0, 3)), tmp_path / "d"))
    parts = dataset.items[0].parts
    assert set(parts) == {"head", "body"}
    assert parts["head"][0] == pytest.approx(tuple(scenes.part_centres[0, 0].tolist()), abs=0.01)


def test_the_part_a_classifier_relies_on_is_the_salient_one(one_thread):
    """Known answer: the shipped parts network read as a head-only (body-only) classifier.
    Deleting the other part cannot change its label, so meaningful perturbation must find the
    head (body) the more salient; benchmarks/parts_synthetic.py runs it on more scenes."""
    scenes = make_scenes(12, "parts", "test", seed=11)
    keypoints = [{"head": [tuple(c[0].tolist())], "body": [tuple(c[1].tolist())]}
                 for c in scenes.part_centres]
    for part, labels, sign in (("head", scenes.labels // 2, 1), ("body", scenes.labels % 2, -1)):
        e = meaningful_perturbation(load_part_classifier(part), scenes.images, target=labels, iterations=50)
        test, _ = compare_parts(e.masks, keypoints, "head", "body")
        assert sign * test.mean_difference > 0.15 and test.p_value < 0.1, (part, test)


@pytest.fixture
def parts_folder(tmp_path):
    return write_annotated_folder(make_scenes(4, "parts", "test", seed=3), tmp_path / "data")


def edit(folder, change):
    path = folder / "annotations.json"
    ann = json.loads(path.read_text())
    change(ann)
    path.write_text(json.dumps(ann))


def run_cli(folder, tmp_path, capsys, *extra):
    code = main(["parts", str(folder), "--part-a", "head", "--part-b", "body", "--classifier",
                 "synthetic:parts", "--methods", "gradient", "--out", str(tmp_path / "o"), *extra])
    return code, capsys.readouterr()


def test_cli_writes_the_table(parts_folder, tmp_path, capsys):
    code, captured = run_cli(parts_folder, tmp_path, capsys)
    assert code == 0 and "| gradient | 4 |" in captured.out
    report = json.loads((tmp_path / "o" / "parts.json").read_text())
    assert report["tests"]["gradient"]["n"] == 4 and report["settings"]["window"] == 1
    assert (tmp_path / "o" / "parts.md").is_file()


def _outside(ann):
    first = sorted(ann)[0]
    ann[first]["keypoints"]["head"] = [[70.0, 10.0]]


def _only_two(ann):
    for key in sorted(ann)[:2]:
        del ann[key]["keypoints"]["body"]


@pytest.mark.parametrize("change, extra, expected", [
    (_outside, (), "keypoint [70.0, 10.0] of 'head' lies outside the 64x64 image"),
    (_only_two, (), "2 image(s) have both 'head' and 'body'; a paired test needs at least 3"),
    (None, ("--part-b", "tail"), "no image has keypoints of part 'tail' (parts present: body, head)"),
])
def test_cli_bad_input_is_one_line_and_exit_2(parts_folder, tmp_path, capsys, change, extra, expected):
    if change:
        edit(parts_folder, change)
    code, captured = run_cli(parts_folder, tmp_path, capsys, *extra)
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
