"""``manifest.json``, ``explain --clean`` and evaluate's record: only files maskscope wrote, unchanged
since, are ever deleted or replaced, and another tool's ``manifest.json`` is never replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures import random_photo

from maskscope.cli.main import main
from maskscope.manifest import FORMAT, MANIFEST

pytestmark = pytest.mark.usefixtures("one_thread")
METHOD_TESTS = str(Path(__file__).parent / "methods")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    photo = str(random_photo(tmp_path / "p.png", 1))
    return tmp_path, photo, ["--classifier", "tinymods:tiny", "--iterations", "2", "--json", "--no-figures"]


def explain(photo: str, out: Path, flags: list[str], *extra: str) -> int:
    return main(["explain", photo, "--out", str(out), *flags, *extra])


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def test_a_foreign_manifest_is_refused_not_replaced_and_nothing_is_deleted(setup, capsys):
    tmp, photo, flags = setup
    out = tmp / "site"
    out.mkdir()
    foreign = json.dumps({"name": "my app", "files": ["index.js", "style.css"], "stale": [],
                          "earlier": ["index.js", "style.css"]})
    (out / MANIFEST).write_text(foreign)
    for name in ("index.js", "style.css"):
        (out / name).write_text("their code")
    for extra in ((), ("--clean",)):
        assert explain(photo, out, flags, *extra) == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error")]
        assert len(lines) == 1 and "not written by maskscope" in lines[0] and "Traceback" not in err
    assert (out / MANIFEST).read_text() == foreign
    assert {p.name for p in out.iterdir() if p.name[0] != "."} == {MANIFEST, "index.js", "style.css"}


def test_clean_keeps_files_an_edited_manifest_adds(setup, capsys):
    """A maskscope manifest edited to list other files (with made-up or copied hashes): kept."""
    tmp, photo, flags = setup
    out = tmp / "out"
    assert explain(photo, out, flags) == 0
    m = manifest(out)
    assert m["format"] == FORMAT and set(m["sha256"]) == set(m["files"])
    (out / "index.js").write_text("their code")
    (out / "style.css").write_text("their style")
    m["files"] += ["index.js", "style.css"]
    m["sha256"]["index.js"] = "0" * 64
    m["sha256"]["style.css"] = m["sha256"]["p.npy"]
    (out / MANIFEST).write_text(json.dumps(m))
    (out / "q.npy").write_bytes(b"not from maskscope")
    assert explain(photo, out, flags, "--clean") == 0
    assert capsys.readouterr().err.count("deleted") == 0
    assert (out / "index.js").read_text() == "their code" and (out / "style.css").read_text() == "their style"
    assert (out / "q.npy").read_bytes() == b"not from maskscope"
    assert sorted(manifest(out)["stale"]) == ["index.js", "q.npy", "style.css"]


def test_clean_keeps_a_file_changed_since_maskscope_wrote_it(setup, capsys):
    tmp, photo, flags = setup
    other = str(random_photo(tmp / "other.png", 2))
    out = tmp / "out"
    assert main(["explain", photo, other, "--out", str(out), *flags]) == 0
    (out / "other.json").write_text('{"mine": "edited by hand"}')
    assert explain(photo, out, flags, "--clean") == 0
    assert "3 stale files of an earlier run deleted (--clean)" in capsys.readouterr().err
    assert not (out / "other.npy").exists() and not (out / "other.png").exists()
    assert (out / "other.json").read_text() == '{"mine": "edited by hand"}'
    assert manifest(out)["stale"] == ["other.json"] and manifest(out)["earlier"] == []


def test_a_manifest_without_the_marker_proves_nothing(setup, capsys):
    """An earlier release's manifest (its keys, no marker, no hashes) is replaced; what it lists is
    kept by --clean, since nothing proves maskscope wrote it."""
    tmp, photo, flags = setup
    out = tmp / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / MANIFEST).write_text(json.dumps({"command": "explain", "files": ["notes.txt"], "stale": [],
                                            "earlier": ["notes.txt"]}))
    assert explain(photo, out, flags, "--clean") == 0
    assert "deleted" not in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert manifest(out)["format"] == FORMAT and manifest(out)["stale"] == ["notes.txt"]


@pytest.mark.parametrize("seed", [0, 3, 5])  # 3 and 5 edit a file, then --clean runs without its image
def test_random_runs_never_delete_or_change_a_file_maskscope_did_not_write(setup, seed, capsys):
    """Random sequences of explain runs (any subset of images, with or without figures or --clean),
    foreign files dropped in and maskscope's files edited by hand between them: every foreign or
    edited file survives byte for byte, unless a run explains its image again and so writes it."""
    import random

    tmp, _, flags = setup
    rng = random.Random(seed)
    images = [str(random_photo(tmp / f"{stem}.png", k)) for k, stem in enumerate("abc")]
    out = tmp / "out"
    protected: dict[str, bytes] = {}  # name → bytes maskscope must leave alone
    for step in range(10):
        action = rng.choice(["explain", "explain", "foreign", "edit"])
        if action == "foreign":
            name = rng.choice(["notes.txt", "index.js", "style.css", "x.npy"])
            out.mkdir(exist_ok=True)
            protected[name] = f"foreign {step}".encode()
            (out / name).write_bytes(protected[name])
        elif action == "edit" and (out / MANIFEST).is_file():
            name = rng.choice(manifest(out)["files"])
            protected[name] = f"edited {step}".encode()
            (out / name).write_bytes(protected[name])
        else:
            chosen = rng.sample(images, rng.randint(1, len(images) - 1))
            extra = [f for f in ("--no-figures", "--clean") if rng.random() < 0.5]
            assert main(["explain", *chosen, "--out", str(out), *flags[:-1], *extra]) == 0
            capsys.readouterr()
            for name in set(manifest(out)["files"]) & set(protected):
                del protected[name]  # written again by this run: its own file now
        for name, data in protected.items():
            assert (out / name).read_bytes() == data, (step, action, name)


def test_rerun_with_no_figures_reports_stale_figures_and_clean_removes_them(explain_setup, capsys):
    """Fault: explain: a rerun with --no-figures into the same --out — the earlier figures are reported as
    stale in manifest.json; --clean removes them."""
    tmp, flags = explain_setup
    photo = str(random_photo(tmp / "p.png", 1))
    out = tmp / "out"
    assert main(["explain", photo, "--out", str(out), *flags]) == 0
    assert (out / "p_figure.png").is_file()
    (out / "notes.txt").write_text("mine")  # a file the user put there: never deleted
    capsys.readouterr()
    assert main(["explain", photo, "--out", str(out), "--no-figures", *flags]) == 0
    err = capsys.readouterr().err
    assert "4 files of an earlier run replaced" in err and "2 files not written by this run kept" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stale"] == ["notes.txt", "p_figure.png"] and manifest["earlier"] == ["p_figure.png"]
    assert manifest["sources"]["p.npy"] == str(Path(photo).resolve())
    assert "p_figure.png" not in manifest["files"]
    figure = (out / "p_figure.png").read_bytes()
    assert figure[:4] == b"\x89PNG"  # kept, whole, until asked
    assert main(["explain", photo, "--out", str(out), "--no-figures", "--clean", *flags]) == 0
    assert "1 stale files of an earlier run deleted (--clean)" in capsys.readouterr().err
    assert not (out / "p_figure.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_clean_deletes_only_what_an_earlier_run_wrote(explain_setup, capsys):
    """Fault: explain: --clean in a folder with the user's own files — deletes only what an earlier run wrote.
    """
    tmp, flags = explain_setup
    a, b = str(random_photo(tmp / "a.png", 1)), str(random_photo(tmp / "b.png", 2))
    out = tmp / "out"
    assert main(["explain", a, b, "--out", str(out), "--no-figures", *flags]) == 0
    (out / "notes.txt").write_text("mine")
    kept = (out / "a.npy").read_bytes()
    capsys.readouterr()
    assert main(["explain", b, "--out", str(out), "--no-figures", "--clean", *flags]) == 0
    assert "4 stale files of an earlier run deleted (--clean)" in capsys.readouterr().err
    assert not (out / "a.npy").exists() and (out / "b.npy").is_file() and (out / "notes.txt").is_file()
    assert kept and json.loads((out / "manifest.json").read_text())["stale"] == ["notes.txt"]


FAST = ["--classifier", "fixtures:own_classifier", "--classifier-arg", "size=32"]
FOREIGN = ["notes.txt", "x.npy", "metrics.json", "metrics.md", "details.json", "p_mask.png",
           "metrics_overlay.png", "examples/center.png"]


def _run_explain(rng, images: list[str], out: Path, capsys) -> set[str]:
    chosen = rng.sample(images, rng.randint(1, 3))
    extra = [f for f in ("--no-figures", "--clean") if rng.random() < 0.4]
    assert main(["explain", *chosen, "--out", str(out), "--method", "gradient", *FAST, "--json", *extra]) == 0
    assert "Traceback" not in capsys.readouterr().err
    return {str(Path(p).resolve()) for p in chosen}


def _run_evaluate(data: Path, out: Path, capsys) -> None:
    code = main(["evaluate", "--data", str(data), "--out", str(out), "--methods", "center", *FAST,
                 "--quiet", "--examples", "1", "--protocols", "saliency"])
    err = capsys.readouterr().err
    if code:  # refused before any work: a file in the way that maskscope did not write
        lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
        assert code == 2 and len(lines) == 1 and "not written by maskscope" in lines[0], err


@pytest.mark.parametrize("seed", [0, 1, 3, 4, 7])  # each fails without cross-run names
def test_random_explain_evaluate_and_clean_runs_never_replace_what_maskscope_did_not_write(
        tmp_path, seed, capsys, monkeypatch):
    """Random sequences of explain runs over colliding names (``a/x.png`` and ``b/x.png``, an image
    named ``metrics.png`` beside evaluate's ``metrics.json``), evaluate runs into the same folder,
    ``--clean``, foreign files dropped in and maskscope's own files edited by hand: a foreign or
    edited file survives every later run byte for byte, and a run that does not explain an image
    never changes that image's results (``--clean`` may delete them)."""
    import random

    monkeypatch.chdir(tmp_path)
    rng = random.Random(seed)
    images = [str(random_photo(tmp_path / folder / name, k, size=(32, 32)))
              for k, (folder, name) in enumerate([("a", "x.png"), ("b", "x.png"), ("c", "metrics.png"),
                                                  ("d", "p.png")])]
    data = tmp_path / "data"
    for k in range(3):
        random_photo(data / f"e{k}.png", 10 + k, size=(32, 32))
    out = tmp_path / "out"
    protected: dict[str, bytes] = {}  # name → bytes maskscope did not write
    results: dict[str, tuple[str, bytes]] = {}  # name → (source image, bytes) of explain's results
    for step in range(8):
        action = rng.choice(["explain", "explain", "evaluate", "foreign", "edit"])
        if action == "foreign":
            name = rng.choice(FOREIGN)
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            protected[name] = f"foreign {step}".encode()
            (out / name).write_bytes(protected[name])
            results.pop(name, None)  # the user's file now, even where it replaced a result
        elif action == "edit" and (out / MANIFEST).is_file():
            name = rng.choice(manifest(out)["files"])
            protected[name] = f"edited {step}".encode()
            (out / name).write_bytes(protected[name])
            results.pop(name, None)
        explained: set[str] = set()
        if action == "evaluate":
            _run_evaluate(data, out, capsys)
        elif action == "explain":
            explained = _run_explain(rng, images, out, capsys)
        for name, (source, data_then) in results.items():
            if source not in explained and (out / name).exists():
                assert (out / name).read_bytes() == data_then, (step, action, name)
        if explained:
            sources = manifest(out)["sources"]
            results = {n: (s, (out / n).read_bytes()) for n, s in sources.items() if (out / n).is_file()}
        for name, data_now in protected.items():
            assert (out / name).read_bytes() == data_now, (step, action, name)
