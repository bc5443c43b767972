"""The evaluation's markdown (evaluate/markdown.py): names from the user's files are escaped, plain ones kept
readable."""

from __future__ import annotations

import pytest
from fixtures import random_photo

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_heading_escapes_the_data_folder_name(tiny, capsys):
    """Fault: evaluate: a --data folder named like markup ('[x](http:evil) <b>*bold*') — escaped in
    metrics.md."""
    tmp, flags = tiny
    data = tmp / "[x](http:evil) <b>*bold*<i> #1 |"
    for i in range(3):
        random_photo(data / f"i{i}.png", i, (32, 32))
    out = tmp / "o"
    assert main(["evaluate", "--data", str(data), "--methods", "center", "--out", str(out), "--quiet",
                 "--examples", "0", *flags]) == 0
    heading = (out / "metrics.md").read_text().splitlines()[0]
    assert heading == r"# maskscope evaluation: \[x\](http:evil) \<b\>\*bold\*\<i\> \#1 \|"


def test_escape_markdown_keeps_plain_names_readable():
    """Fault: evaluate: plain folder names — left readable by the markdown escaping."""
    from maskscope.evaluate.tables import escape_markdown

    assert escape_markdown("imagenet-val-sample") == "imagenet-val-sample"
    assert escape_markdown("a\nb_c") == r"a b\_c"
