"""``maskscope serve [IMAGES_OR_FOLDERS...]``: the explorer in the browser (local web server).

Loads the model once and serves the explain, compare, evaluation and summaries pages on
127.0.0.1 unless ``--host`` says otherwise. Without images the demo photos are offered.
Needs the ``app`` extra (``pip install -e '.[app]'`` in a clone).
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from ..errors import ConfigError
from ..extras import install_hint
from ..images import MAX_PIXELS
from .common import add_model_options, int_at_least, positive_int

_at_least_zero = int_at_least(0, "a port number")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    value = _at_least_zero(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535 (a TCP port), got {value}")
    return value


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="explore explanations in the browser", description=__doc__)
    p.add_argument("images", nargs="*", help="image files or folders the page may open")
    p.add_argument("--evaluation", default=None, metavar="DIR", help="an `evaluate` output folder")
    p.add_argument("--summaries", default=None, metavar="DIR", help="a `summarize` output folder")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--demo", action="store_true", help="offer the demo photos too (always, when no images)")
    p.add_argument("--max-upload-mb", type=positive_int, default=20, help="upload size limit (default 20)")
    p.add_argument("--masker", default=None, metavar="PATH",
                   help="masker checkpoint (from `maskscope train`) for the page's one-pass method "
                        "(default: the one shipped for the model, if any)")
    p.add_argument("--masker-any-classifier", action="store_true",
                   help="use --masker even if it was trained for a classifier with other weights")
    add_model_options(p)
    p.set_defaults(run=run)


def build_explorer(args: argparse.Namespace):
    """The explorer for these arguments; every bad folder is a ConfigError before the model loads."""
    try:
        from ..app import Explorer
        from ..app.catalog import Catalog
    except ImportError as exc:
        raise ConfigError(f"serve needs the app extra ({install_hint('app')}): {exc}") from None
    for flag, folder in (("--evaluation", args.evaluation), ("--summaries", args.summaries)):
        if folder is not None and not Path(folder).is_dir():
            raise ConfigError(f"{flag} {folder}: no such folder")
    if args.evaluation is not None:
        from ..app.evaluation import find_runs

        find_runs(Path(args.evaluation))
    if args.summaries is not None and not (Path(args.summaries) / "summaries.json").is_file():
        raise ConfigError(f"--summaries {args.summaries}: no summaries.json (not a summarize output)")
    catalog = Catalog(args.images, demo=args.demo or not args.images,
                      max_upload_bytes=args.max_upload_mb * 1024 * 1024, max_pixels=MAX_PIXELS)
    from .common import load_model

    explorer = Explorer(load_model(args), catalog,
                        evaluation=Path(args.evaluation) if args.evaluation else None,
                        summaries=Path(args.summaries) if args.summaries else None,
                        masker_path=Path(args.masker) if args.masker else None,
                        allow_other_classifier=args.masker_any_classifier)
    if args.masker:  # a missing or mismatched masker: one line now, not a red banner later
        try:
            explorer.masker()
        except BaseException:
            explorer.close()
            raise
    return explorer


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for ``--host``/``--port``, bound here so that an unknown host or a port in
    use is one ConfigError line instead of uvicorn's log line and exit code."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: already in use on {host} (pick another, or 0 for a free one)"
                              ) from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})"
                          ) from None
    return sock


def run(args: argparse.Namespace) -> int:
    sock = listen(args.host, args.port)
    try:
        explorer = build_explorer(args)
        explorer.hosts = (args.host,)  # answer requests for the bound name, as well as for loopback
        return _serve(explorer, args, sock)
    finally:
        sock.close()


def _serve(explorer, args: argparse.Namespace, sock: socket.socket) -> int:
    import uvicorn

    from ..app import create_app

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # print the URL once bound (port 0: the real one)
            await super().startup(sockets)
            for s in self.servers:
                for bound in s.sockets:
                    host, port = bound.getsockname()[:2]
                    host = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
                    print(f"maskscope explorer at http://{host}:{port}/  (Ctrl-C stops it)", file=sys.stderr,
                          flush=True)

    config = uvicorn.Config(create_app(explorer), host=args.host, port=args.port, log_level="warning")
    Server(config).run(sockets=[sock])
    return 0
