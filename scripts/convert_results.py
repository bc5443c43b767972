# ruff: noqa: E501  (a one-time script: its tables of commands are kept one per line)
"""One-time conversion of the published result files into the harness's one result format.

Before the harness, each benchmark left its tables as markdown, text or a folder, and the README
held hand-pasted copies. This script parses every table of every ``.md`` / ``.txt`` file under
``benchmarks/results`` (cells kept exactly as written, so no number changes) into
``NAME.result.json`` beside it, with the command that produced it (read from the file, else from
the section of the README that quotes it) and the date of the commit that last wrote it. A README
table that no result file holds as such (re-typed from a text output, for instance) is stored as
``benchmarks/results/published/SECTION-N.result.json`` with its section's command. It was run
once; the scripts now write ``.result.json`` files themselves through ``benchmarks.harness``.

    python scripts/convert_results.py [--readme-rev main]
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.harness import RESULTS, Result, Table, parse_tables, result_paths, save  # noqa: E402

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
COMMAND = re.compile(r"(?:OMP_NUM_THREADS=\d+ )?(?:nice -n \d+ )?python \S+\.py[^\n`]*")
QUOTED = re.compile(r"(?<=`)(?:OMP_NUM_THREADS=\d+ )?(?:nice -n \d+ )?(?:python|maskscope) [^`|]{0,400}(?=`)")
MOVED = {  # scripts that moved into the harness layout: commands are shown with their paths today
    "benchmarks/memory_large_image.py": "scripts/memory_large_image.py",
}
for group in ("quality", "speed", "studies"):
    for script in (ROOT / "benchmarks" / group).glob("*.py"):
        MOVED[f"benchmarks/{script.name}"] = f"benchmarks/{group}/{script.name}"


def today_paths(command: str) -> str:
    for old, new in MOVED.items():
        command = command.replace(old, new)
    return re.sub(r"(?<![\w/])python (\w+\.py)", lambda m: "python " + MOVED.get(f"benchmarks/{m.group(1)}",
                                                                               m.group(1)), command)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def file_date(path: Path) -> str:
    return git("log", "-1", "--format=%cs", "--", str(path.relative_to(ROOT))).strip()


def numbers(table: Table) -> list[str]:
    return sorted(NUMBER.findall(" ".join(" ".join(map(str, r)) for r in table.rows)))


def convert_file(path: Path, fallback: dict[str, str]) -> Result:
    """One result from ``path``; a run log ``NAME.txt`` beside ``NAME.md`` joins it (its command, notes)."""
    files = [path] + [p for p in [path.with_suffix(".txt")] if path.suffix == ".md" and p.exists()]
    text = "\n\n".join(f.read_text() for f in files)
    tables, notes = parse_tables(text)
    found = COMMAND.search(files[-1].read_text()) or COMMAND.search(text)
    rel = str(path.relative_to(ROOT))
    command = found.group(0).strip().rstrip(":;,.") if found else fallback.get(rel, "")
    sources = ", ".join(str(f.relative_to(ROOT)) for f in files)
    result = Result(today_paths(command), max(file_date(f) for f in files), tables, notes, source=sources)
    save(result, path)
    return result


def readme_sections(readme: str) -> list[tuple[str, int, int]]:
    """(heading, first line, last line) of every ## and ### section of the README."""
    heads = [(i, line.lstrip("#").strip()) for i, line in enumerate(readme.splitlines())
             if re.match(r"^#{2,3} ", line)]
    return [(h, i, (heads[k + 1][0] if k + 1 < len(heads) else len(readme.splitlines())) - 1)
            for k, (i, h) in enumerate(heads)]


def blame_date(rev: str, first: int, last: int) -> str:
    out = git("blame", "--porcelain", "-L", f"{first + 1},{last + 1}", rev, "--", "README.md")
    times = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committer-time ")]
    return datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc).date().isoformat()


Q = "OMP_NUM_THREADS=1 python benchmarks/quality/"
S = "python benchmarks/studies/"
TRAIN = "python scripts/train_masker.py --evaluate-only"
FALLBACK = {  # result files that do not name their command: the one the README quotes for them
    "adversarial_imagenet/adversarial.md": S + "adversarial_imagenet.py --limit 40 --iterations-per-mask 50",
    "early_stop/metrics_early_stop.md": S + "early_stop.py --limit 100 --batch-size 8 (its early-stop evaluation)",
    "early_stop/metrics_fixed.md": S + "early_stop.py --limit 100 --batch-size 8 (its fixed-schedule evaluation)",
    "extremal_imagenet/metrics.md": Q + "quality_imagenet.py --limit 40 --methods extremal,meaningful,gradcam,"
                                        "realtime,center --cached-only extremal",
    "faint_masks/table.md": "OMP_NUM_THREADS=1 " + S + "faint_masks.py --images 8 --iterations 100",
    "latency_explorer.md": "python benchmarks/speed/latency_explorer.py",
    "mask_statistics/imagenet_meaningful.md": S + "mask_statistics.py out/quality_imagenet",
    "mask_statistics/imagenet_meaningful_100_vs_300_iterations.md":
        S + "mask_statistics.py out/quality_imagenet --compare out/quality_imagenet_300its",
    "mask_statistics/synthetic_clean_meaningful.md": S + "mask_statistics.py out/quality_synthetic/clean",
    "paper_recipe_imagenet/metrics.md": Q + "quality_imagenet.py --limit 40 --methods extremal,meaningful,crisp "
                                            "--option meaningful.preset=fong2017-paper-blur --option "
                                            "meaningful.iterations=100 --option crisp.iterations=100 "
                                            "--cached-only extremal",
    "quality_imagenet/metrics.md": Q + "quality_imagenet.py --limit 300 --iterations 100 --methods meaningful,"
                                       "crisp,gradient,guided-backprop,gradcam,occlusion,center --batch-size 16 "
                                       "--option occlusion.window=64 --option occlusion.stride=32",
    "quality_imagenet_holdup/binarised_drop.md": Q + "binarised_drop.py out/q100 --methods meaningful,gradcam,"
                                                     "realtime,center",
    "quality_imagenet_holdup/mask_statistics.md": S + "mask_statistics.py out/q100",
    "quality_imagenet_holdup/metrics.md": Q + "quality_imagenet.py --limit 100 --methods meaningful,gradcam,"
                                              "center,realtime --out out/q100",
    "quality_synthetic/metrics.md": Q + "quality_synthetic.py --scenes 300",
    "quality_synthetic/clean/metrics.md": Q + "quality_synthetic.py --scenes 300",
    "quality_synthetic/spurious/metrics.md": Q + "quality_synthetic.py --scenes 300",
    "realtime_imagenet/evaluation.md": TRAIN,
    "realtime_imagenet/evaluation_with_meaningful.md": TRAIN + " --meaningful 24 --meaningful-preset fong2017 "
                                                              "--meaningful-iterations 100",
    "realtime_imagenet/previous/evaluation.md": TRAIN + " (the masker shipped before)",
    "realtime_imagenet/previous/evaluation_with_meaningful.md": TRAIN + " --meaningful 24 (the masker shipped "
                                                                       "before)",
    "realtime_imagenet/pilots.md": "python scripts/train_masker.py (equal-budget pilots, 50 steps each)",
    "realtime_imagenet/selector.md": Q + "masker_selector.py --masker OLD.pt --masker NEW.pt",
    "representativeness/representativeness.md": "python benchmarks/quality/representativeness_curves.py "
                                                "NAME=RUN:METHOD ... (the runs are named on the page)",
    "speed/classifier_variants.md": "python benchmarks/speed/speed_meaningful.py --amp --channels-last --compare 5",
    "speed/speed_meaningful_amp.md": "python benchmarks/speed/speed_meaningful.py --breakdown --amp --channels-last",
    "speed_summaries.txt": "OMP_NUM_THREADS=1 python benchmarks/speed/speed_summaries.py --mask-cache "
                           "runs/dogs/masks runs/birds/masks",
    "summaries_vs_architectures/synthetic.txt": S + "summaries_vs_architectures.py --synthetic --images-per-class "
                                                    "10 --specialise",
    "summaries_vs_architectures/imagenet.txt": S + "summaries_vs_architectures.py --imagenet efficientnet-lite0,"
                                                   "efficientnet-lite1,efficientnet-lite2 --images-per-group 12 "
                                                   "--iterations 120 --crisp-iterations 60 --accuracy-images 300",
}
PRESERVE = "OMP_NUM_THREADS=1 python benchmarks/quality/quality_demo.py --games preserve"
OVERRIDES = {  # tables whose command the README gives in words beside another one
    "meaningful-perturbation-on-the-demo-phot-2": PRESERVE,
    "meaningful-perturbation-on-the-demo-phot-3": PRESERVE,
    "analyses-adversarial-examples-fong-5-5-a-1": "OMP_NUM_THREADS=1 python benchmarks/studies/adversarial_imagenet.py "
                                                  "--limit 40 --iterations-per-mask 50",
    "the-shipped-masker-for-efficientnet-lite-0": "python scripts/train_masker.py (equal-budget pilots, 50 steps each)",
    "summaries-vs-architectures-and-specialis-0": "python benchmarks/studies/summaries_vs_architectures.py --synthetic "
                                                  "--images-per-class 10 --specialise",
    "summaries-vs-architectures-and-specialis-1": "python benchmarks/studies/summaries_vs_architectures.py --imagenet "
                                                  "efficientnet-lite0,efficientnet-lite1,efficientnet-lite2 "
                                                  "--images-per-group 12 --iterations 120 --crisp-iterations 60 "
                                                  "--accuracy-images 300",
}
SKIP = {"explorer-in-the-browser-0"}  # the screenshots' layout table: no result


def scrub(heading: str, table: Table, command: str) -> tuple[Table, str]:
    """The README's fault and memory tables without the issue numbers and commit hashes they carried."""
    if heading != "Command line":
        return table, command
    if table.columns[0] == "case":  # "12 explain: ..." -> "explain: ..."
        return Table(table.columns, [[re.sub(r"^\d+ ", "", r[0]), *r[1:]] for r in table.rows]), \
            "OMP_NUM_THREADS=1 python benchmarks/fault_table.py (retired: the cases are the fault tests)"
    rows = [[re.sub(r" \([0-9a-f]{7}(~1)?\)", "", r[0]), *r[1:]] for r in table.rows]
    return Table(table.columns, rows), re.sub(r"--before [0-9a-f]{7}(~1)?", "--before REV", command)


def readme_tables(rev: str, converted: dict[Path, Result]) -> list[str]:
    """Match every README table to a converted one; store the others. Returns one line per table."""
    readme = git("show", f"{rev}:README.md")
    lines = readme.splitlines()
    report = []
    for heading, first, last in readme_sections(readme):
        section = "\n".join(lines[first:last + 1])
        tables, _ = parse_tables(section)
        flat = section.replace("\n", " ")  # a command quoted across a line break, at the same offsets
        commands = [(m.start(), today_paths(" ".join(m.group(0).split()))) for m in QUOTED.finditer(flat)]
        slug = re.sub(r"[^a-z0-9]+", "-", heading.split("—")[0].lower()).strip("-")[:40]
        row_at = 0
        for n, table in enumerate(tables):
            match = next((f"{p.relative_to(ROOT)}#{k}" for p, r in converted.items()
                          for k, t in enumerate(r.tables) if numbers(t) == numbers(table)), None)
            if match is None and f"{slug}-{n}" not in SKIP:
                row_at = section.find("| " + " | ".join(table.columns), row_at)
                at = first + section[:row_at].count("\n")
                path = RESULTS / "published" / f"{slug}-{n}.md"
                before = [c for at_, c in commands if at_ < row_at] or [c for _, c in commands] or [""]
                table, command = scrub(heading, table, OVERRIDES.get(f"{slug}-{n}", before[-1]))
                result = Result(command, blame_date(rev, at, at + len(table.rows) + 1), [table],
                                source=f"README.md, section '{heading}'")
                save(result, path)
                match = f"{result_paths(path)[0].relative_to(ROOT)}#0 (from the README)"
            report.append(f"{heading[:50]} | table {n} | {match}")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readme-rev", default="HEAD", help="revision of the README")
    args = p.parse_args()
    fallback = {f"benchmarks/results/{k}": v for k, v in FALLBACK.items()}
    converted = {}
    for path in sorted(RESULTS.rglob("*")):
        twin = path.suffix == ".txt" and path.with_suffix(".md").exists()  # read with its .md
        if path.suffix in (".md", ".txt") and path.parent.name != "published" and not twin:
            converted[path] = convert_file(path, fallback)
    for line in readme_tables(args.readme_rev, converted):
        print(line)


if __name__ == "__main__":
    main()
