"""`dltui serve`: the app in a browser tab, through textual-serve.

textual-serve is a small web server that starts one app process per browser connection
and relays its terminal over a websocket to xterm.js in the page. Each process is this
same interpreter running ``-m dltui`` with the flags `serve` was given, so a served app
is the terminal app: same views, keys and run directories (relative to where `serve`
was started). No Textual here: the app runs in the child processes.
"""

from __future__ import annotations

import logging
import shlex
import socket
import sys
from collections.abc import Mapping
from typing import Any

from dltui.errors import EXIT_USAGE, DltuiError


class PortBusy(DltuiError):
    """The address to listen on is taken or cannot be bound."""

    exit_code = EXIT_USAGE


def app_command(options: Mapping[str, object], start: bool = False) -> str:
    """The shell command textual-serve runs per connection. Half blocks always: the
    browser's xterm.js speaks no image protocol textual-image could use."""
    argv = [sys.executable, "-m", "dltui", "--images", "halfblock"]
    for key, value in options.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    if start:
        argv.append("--start")
    return shlex.join(argv)


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address that is taken, before the server prints its banner."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PortBusy(f"--host: cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortBusy(f"--port: {host}:{port} is not free ({exc.strerror}); pick another with --port") from None


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _server_class() -> Any:
    from textual_serve.server import Server

    class DltuiServer(Server):
        """textual-serve, quieter; with the page's links made from the address the browser
        used (its own absolute URLs name the bind address, which breaks behind an SSH tunnel
        on another local port and on 0.0.0.0); and Ctrl+C closes the open tabs, so their
        apps quit at once instead of keeping the server up for aiohttp's 60 s grace."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sockets: set[Any] = set()

        def initialize_logging(self) -> None:
            super().initialize_logging()
            logging.getLogger().setLevel(logging.WARNING)  # not a line per request

        async def on_startup(self, app: Any) -> None:
            """Silent: serve() has said where to connect."""

        async def _process_messages(self, websocket: Any, app_service: Any) -> None:
            self.sockets.add(websocket)
            try:
                await super()._process_messages(websocket, app_service)
            finally:
                self.sockets.discard(websocket)

        async def on_shutdown(self, app: Any) -> None:
            # a closed socket ends its message loop, and textual-serve then tells the app to quit
            for websocket in list(self.sockets):
                await websocket.close()

        async def handle_index(self, request: Any) -> Any:
            self.public_url = f"{request.scheme}://{request.host}"  # read before the next await
            return await super().handle_index(request)

    return DltuiServer


def serve(host: str, port: int, options: Mapping[str, object], start: bool = False) -> None:
    """Print where to point a browser, then serve until Ctrl+C."""
    check_port(host, port)
    server = _server_class()(app_command(options, start), host=host, port=port, title="dltui")
    print(f"dltui: serving the app on {url(host, port)} (a fresh app per browser tab; Ctrl+C stops)")
    if host in ("127.0.0.1", "localhost", "::1"):
        print(f"dltui: from another machine: ssh -L {port}:localhost:{port} user@this-host, then open that URL there")
    else:
        print(f"dltui: listening beyond this machine: anyone who can reach {host}:{port} gets the app")
    sys.stdout.flush()
    server.serve()
