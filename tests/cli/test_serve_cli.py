"""``maskscope serve`` at the edges: an impossible port, a port in use, an address that is not this
machine's. Each is one line and exit 2, before the model loads."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import random_photo

from maskscope.cli.main import main

pytest.importorskip("uvicorn", reason="serve needs the app extra: pip install -e '.[app]'")


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


def test_serve_listens_on_its_socket_and_answers_only_its_own_host(tmp_path, monkeypatch):
    """The real command: bound by maskscope, served by uvicorn, the host check in front."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "methods"))
    from test_realtime import TINY_MODULE

    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    random_photo(tmp_path / "photos" / "a.png")
    src = str(Path(__file__).parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(tmp_path)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "maskscope", "serve", str(tmp_path / "photos"), "--port", "0",
               "--classifier", "tinymods:tiny"]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert line.startswith("maskscope explorer at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        for host, status in (("evil.example", 400), (f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/images", headers={"Host": host})
            assert connection.getresponse().status == status, host
    finally:
        server.terminate()
        server.wait(timeout=30)
