"""Class names given by the user: ``BlackBox(classes=...)`` and ``--class-names FILE``, reaching the
targets, the explanation and the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import OwnModel, own_images
from PIL import Image

import maskscope as ms
from maskscope.cli.common import read_classes
from maskscope.cli.main import main
from maskscope.errors import ConfigError, ModelError

OWN = ["--classifier", "fixtures:own_classifier"]


def _own(**kwargs) -> ms.BlackBox:
    return ms.BlackBox(OwnModel().eval(), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, **kwargs)


@pytest.mark.parametrize("classes", [["board", "plain"], {0: "board", 1: "plain"},
                                     {"1": "plain", "0": "board"}])
def test_classes_as_a_list_or_a_dict_name_targets_and_explanations(classes):
    bb = _own(classes=classes)
    assert bb.class_names == ["board", "plain"]
    assert bb.class_index("Plain") == 1
    e = ms.get_method("gradient")(bb, own_images(), target="plain")
    assert int(e.targets[0, 0]) == 1 and e.class_names == ["plain"]
    assert e.record(0)["class_name"] == "plain"


@pytest.mark.parametrize(("classes", "message"), [
    ({0: "a", 2: "c"}, "index 1 has no name"),
    ({"x": "a"}, "integer indices"),
    ([], "empty"),
    ("board", "not one string"),
])
def test_bad_class_names_are_one_line(classes, message):
    with pytest.raises(ConfigError, match=message):
        _own(classes=classes)


def test_class_names_and_classes_together_are_refused():
    with pytest.raises(ConfigError, match="not both"):
        _own(classes=["a", "b"], class_names=["a", "b"])


def test_a_wrong_number_of_names_is_refused_at_the_first_query():
    bb = _own(classes=["a", "b", "c"])
    with pytest.raises(ModelError, match="returns 2 class scores, but 3 class names"):
        bb(own_images())


@pytest.mark.parametrize(("text", "names"), [
    ('["board", "plain"]', ["board", "plain"]),
    ('{"0": "board", "1": "plain"}', ["board", "plain"]),
    ("board\n\nplain\n", ["board", "plain"]),
])
def test_read_classes_reads_three_formats(tmp_path, text, names):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    assert read_classes(path) == names


def _board(tmp_path):
    path = tmp_path / "board.png"
    x = own_images()[0]
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_cli_classes_file_names_the_target_and_the_json(tmp_path, capsys):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(["board", "plain"]))
    code = main(["explain", str(_board(tmp_path)), *OWN, "--class-names", str(classes),
                 "--method", "gradient", "--target", "plain", "--out", str(tmp_path / "out"), "--json",
                 "--no-figures"])
    assert code == 0, capsys.readouterr().err
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["target"] == 1 and record["class_name"] == "plain"


@pytest.mark.parametrize(("text", "message"), [
    ('["a", "b"', "not valid JSON"),
    ('{"0": "a", "5": "b"}', "index 1 has no name"),
    ("a\nb\nc\n", "3 names, but the classifier has 2 classes"),
    ("", "no class names"),
])
def test_cli_bad_classes_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    classes = tmp_path / "classes.txt"
    classes.write_text(text)
    code = main(["explain", str(_board(tmp_path)), *OWN, "--class-names", str(classes), "--method", "center",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_cli_missing_classes_file(tmp_path, capsys):
    code = main(["explain", str(_board(tmp_path)), *OWN, "--class-names", str(tmp_path / "none.txt"),
                 "--method", "center", "--out", str(tmp_path / "out")])
    assert code == 2 and "cannot read" in capsys.readouterr().err


def test_every_command_with_classifier_takes_classes():
    from maskscope.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        dests = {a.dest for a in command._actions}
        if "classifier" in dests:
            assert "class_names_file" in dests, name
