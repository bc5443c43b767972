"""Output names (outputs.output_names) stay unique across runs into one ``--out``: another image
with a colliding name, or a file maskscope did not write, is never replaced; the same image
explained again replaces its own earlier results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fixtures import random_photo

from maskscope.cli.main import main
from maskscope.manifest import MANIFEST
from maskscope.outputs import name_filter, output_names
from maskscope.storage import short_hash

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--classifier", "fixtures:own_classifier", "--classifier-arg", "size=32", "--method", "gradient",
        "--json"]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name[0] != "."
            and p.name != MANIFEST}


def _explain(capsys, *args: str) -> str:
    assert main(["explain", *args, *FAST]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_another_image_of_the_same_name_gets_another_name(tmp_path, capsys):
    """Fault: explain: `a/x.png`, then `b/x.png` into the same --out — the second gets a hashed name, one line
    says so; the first image's results are kept byte for byte."""
    a = random_photo(tmp_path / "a" / "x.png", 1)
    b = random_photo(tmp_path / "b" / "x.png", 2)
    out = tmp_path / "out"
    _explain(capsys, str(a), "--out", str(out))
    first = _files(out)
    assert {"x.npy", "x.json", "x_mask.png", "x_overlay.png", "x_figure.png"} <= set(first)
    err = _explain(capsys, str(b), "--out", str(out))
    renamed = f"x-{short_hash(os.path.realpath(b))}"
    assert f"results named {renamed}" in err and "replaced" not in err
    now = _files(out)
    assert all(now[name] == data for name, data in first.items())  # a's results, byte for byte
    assert json.loads(now[f"{renamed}.json"])["source"] == os.path.realpath(b)
    sources = json.loads((out / MANIFEST).read_text())["sources"]
    assert sources["x.npy"] == os.path.realpath(a) and sources[f"{renamed}.npy"] == os.path.realpath(b)


def test_the_same_image_again_replaces_its_own_results(tmp_path, capsys):
    """Fault: explain: the same image explained again, alone or with a same-named one — it replaces its own
    results (a rerun), and each image keeps its name."""
    a = random_photo(tmp_path / "a" / "x.png", 1)
    b = random_photo(tmp_path / "b" / "x.png", 2)
    out = tmp_path / "out"
    _explain(capsys, str(a), "--out", str(out))
    _explain(capsys, str(b), "--out", str(out))
    before = set(_files(out))
    err = _explain(capsys, str(a), "--out", str(out))
    assert "results named" not in err and "files of an earlier run replaced" in err
    err = _explain(capsys, str(a), str(b), "--out", str(out))  # together: each keeps its name
    assert "results named" not in err and set(_files(out)) == before


def test_a_file_maskscope_did_not_write_is_never_replaced(tmp_path, capsys):
    """Fault: explain: a user's own `p.npy` in --out — never replaced, not even by --clean; the results of
    `p.png` get a hashed name, one line says so."""
    photo = random_photo(tmp_path / "p.png", 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.npy").write_bytes(b"my own array")
    err = _explain(capsys, str(photo), "--out", str(out))
    renamed = f"p-{short_hash(os.path.realpath(photo))}"
    assert f"results named {renamed}" in err
    assert (out / "p.npy").read_bytes() == b"my own array" and (out / f"{renamed}.npy").is_file()
    _explain(capsys, str(photo), "--out", str(out), "--clean")  # a rerun keeps the name; --clean keeps p.npy
    assert (out / "p.npy").read_bytes() == b"my own array" and (out / f"{renamed}.npy").is_file()


def test_a_file_maskscope_wrote_but_someone_edited_is_not_replaced(tmp_path, capsys):
    """Fault: explain: a result edited by hand since — kept; the rerun's results get another name."""
    photo = random_photo(tmp_path / "p.png", 1)
    out = tmp_path / "out"
    _explain(capsys, str(photo), "--out", str(out))
    (out / "p.json").write_text("my notes")
    err = _explain(capsys, str(photo), "--out", str(out))
    assert "results named p-" in err and (out / "p.json").read_text() == "my notes"


def test_output_names_skip_names_held_by_others():
    held = {"x.npy": "/a/x.png", "x_area0.1.json": "/a/x.png", "q_area0.2.npy": "/c/q.png",
            "z_mask.png": None}
    names = output_names(["/a/x.png", "/b/x.png", "/d/z.png", "/f/q.png", "/g/y.png"], held)
    assert names["/a/x.png"] == "x"  # its own results
    assert names["/b/x.png"] == f"x-{short_hash('/b/x.png')}"
    assert names["/d/z.png"] == f"z-{short_hash('/d/z.png')}"  # someone's z_mask.png
    assert names["/f/q.png"] == f"q-{short_hash('/f/q.png')}"  # another image's extremal results
    assert names["/g/y.png"] == "y"
    assert output_names(["/e/x.png"], held)["/e/x.png"] == f"x-{short_hash('/e/x.png')}"


def test_only_files_that_could_collide_are_read_back():
    wanted = name_filter(["/a/x.png", "/b/photo-12345678.jpg"])
    assert all(map(wanted, ["x.npy", "X_mask.png", f"x-{short_hash('/q')}_overlay.png", "x_area0.1.json",
                            "photo-12345678.json", "photo-12345678-0123abcd.npy"]))
    assert not any(map(wanted, ["y.npy", "xx.npy", "x.txt", "photo.npy", "x-zz_mask.png"]))
