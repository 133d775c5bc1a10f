"""Two processes join one sweep through a real PostgreSQL server: the many-machines setup,
on one machine. The server is $DLTUI_TEST_POSTGRES (.ci/run starts one), else a throwaway
one started here from the distribution's PostgreSQL (initdb, pg_ctl); without either the
test is skipped and says why."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "DLTUI_TEST_POSTGRES"


def _pg_bin() -> Path | None:
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None
    )
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _throwaway_server() -> Iterator[str]:
    """initdb + pg_ctl in a temporary directory, a free local port, trust authentication;
    as the 'postgres' user when this runs as root (the server refuses root)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL: set {ENV}=postgresql://… or install the postgresql package (initdb, pg_ctl)")
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="dltui-pg-")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", data, "-U", "dltui", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        opts = f"-k {root} -p {port} -c listen_addresses=127.0.0.1"
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", data, "-l", os.path.join(root, "log"), "-o", opts,
                        "-w", "start"], check=True, capture_output=True, timeout=120)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started here ({exc}); set {ENV} to use a server")
    try:
        yield f"postgresql://dltui@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg) is not installed")
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    with _throwaway_server() as url:
        yield url


def _with_password(url: str, password: str) -> str:
    """The URL with a password, where it had none (trust authentication ignores it): proves
    that no file dltui writes keeps it."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return url if u.password else u.set(password=password).render_as_string(hide_password=False)


def test_two_processes_join_one_sweep_through_postgresql(postgres_url, tmp_path):
    from dltui.sweep import create

    name = f"pg-test-{os.getpid()}-{time.time_ns()}"
    url = _with_password(postgres_url, "not-a-real-secret")
    sweep, _ = create({"model": "mlp,softmax,deep-mlp", "lr": "0.01,0.001", "epochs": "3"}, storage=url, name=name,
                      out=str(tmp_path / "made"))  # fmt: skip
    assert sweep.spec.storage.startswith("postgresql://")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dltui",
                "sweep",
                "--join",
                url,
                "--name",
                name,
                "--threads",
                "1",
                "--out",
                str(tmp_path / f"worker{k}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for k in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=180)[0] for p in procs]
        check(url, name, tmp_path, procs, outputs)
    finally:  # a shared server keeps nothing of the test
        import optuna

        optuna.delete_study(study_name=name, storage=sweep.storage)


def check(url: str, name: str, tmp_path: Path, procs: list, outputs: list[str]) -> None:
    from dltui.sweep import attach

    assert [p.returncode for p in procs] == [0, 0], outputs

    rows = attach(url, name=name, out=str(tmp_path / "check")).rows()  # the storage's view: every worker's trials
    assert len(rows) == 6 and {r.status for r in rows} <= {"finished", "pruned"}
    assert len({(r.params["model"], r.params["lr"]) for r in rows}) == 6 and rows[0].rank == 1
    pids = {json.loads((Path(r.run_dir) / "summary.json").read_text())["pid"] for r in rows}
    assert len(pids) == 2, outputs  # both processes trained, none twice
    for k in range(2):
        written = (tmp_path / f"worker{k}" / "sweep.json").read_text()
        assert json.loads(written)["name"] == name and "not-a-real-secret" not in written
        assert (tmp_path / f"worker{k}" / "leaderboard.csv").exists()
