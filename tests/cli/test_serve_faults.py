"""``maskscope serve`` at the edges: an impossible port, a port in use, an address that is not this
machine's. Each is one line and exit 2, before the model loads."""

from __future__ import annotations

import socket

import pytest

from maskscope.cli.main import main

pytest.importorskip("uvicorn", reason="serve needs the app extra: pip install 'maskscope[app]'")


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("maskscope: error") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("port", ["70000", "65536", "-1", "http"])
def test_an_impossible_port_is_one_line(capsys, port):
    assert main(["serve", "--port", port]) == 2
    assert "--port" in one_error(capsys)


def test_a_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    line = one_error(capsys)
    assert f"--port {port}" in line and "already in use" in line


def test_an_address_of_another_machine_is_one_line(capsys):
    assert main(["serve", "--host", "192.0.2.1", "--port", "0"]) == 2  # TEST-NET-1: never this machine's
    assert "--host 192.0.2.1" in one_error(capsys)
