"""`dltui serve` without a browser: the command each tab runs, the busy-port refusal, and
page links that follow the address the browser used (SSH tunnels)."""

from __future__ import annotations

import shlex
import socket
import sys

import pytest
from typer.testing import CliRunner

from dltui.cli import app
from dltui.serve import PortBusy, _server_class, app_command, check_port, url


def test_each_tab_runs_this_interpreter_with_the_apps_flags():
    argv = shlex.split(app_command({"dataset": "fashion-mnist", "batch_size": "64", "out": "my runs/a"}, start=True))
    assert argv[:3] == [sys.executable, "-m", "dltui"]
    assert argv[3:] == [
        "--images", "halfblock", "--dataset", "fashion-mnist", "--batch-size", "64", "--out", "my runs/a", "--start"
    ]  # fmt: skip


def test_serve_forwards_what_it_was_given(monkeypatch):
    calls = []
    monkeypatch.setattr("dltui.serve.serve", lambda *args: calls.append(args))
    argv = ["serve", "--port", "8123", "--epochs", "5", "--lr", "0.1", "--runs-dir", "exp", "--start"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert calls == [("127.0.0.1", 8123, {"epochs": "5", "lr": "0.1", "runs_dir": "exp"}, True)]  # localhost by default


def test_a_busy_port_is_refused_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortBusy, match=f"--port: 127.0.0.1:{port} is not free"):
            check_port("127.0.0.1", port)
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dltui: error: --port:"), result.output


def test_urls():
    assert url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert url("::1", 8000) == "http://[::1]:8000"


async def test_page_links_follow_the_address_the_browser_used():
    from aiohttp.test_utils import TestClient, TestServer

    server = _server_class()(app_command({}), host="127.0.0.1", port=8000, title="dltui")
    async with TestClient(TestServer(await server._make_app())) as client:
        page = await (await client.get("/", headers={"Host": "localhost:9000"})).text()  # ssh -L 9000:localhost:8000
    assert 'data-session-websocket-url="ws://localhost:9000/ws"' in page
    assert "http://localhost:9000/static/js/textual.js" in page and "8000" not in page
