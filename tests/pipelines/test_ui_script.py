"""scripts/ui.sh started as a background job stops on SIGTERM, with nothing it started left behind.

A background job of a non-interactive shell (`bash scripts/ui.sh &`) starts with SIGINT and SIGQUIT ignored; the
test starts the script the same way, in its own session so that whatever it leaves can be found and killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests import ROOT  # noqa: E402

DAGSTER = ROOT / ".venv" / "bin" / "dagster"
START_TIMEOUT_S = 180.0  # the webserver answers after the code location loads (~15-40 s)
STOP_TIMEOUT_S = 20.0

pytestmark = pytest.mark.skipif(not DAGSTER.exists(), reason=f"{DAGSTER} is missing (run scripts/setup.sh)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _like_a_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def _procs(pgid: int, home: Path) -> list[int]:
    """Live (non-zombie) processes in the script's process group or carrying its TRADEFLOW_HOME."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: the process group alone
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    marker = f"TRADEFLOW_HOME={home}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
            if fields[0] == "Z":
                continue
            if int(fields[2]) == pgid or marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


def _wait_until(predicate, timeout_s: float, step_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _listen_addresses(port: int) -> set[str]:
    """Local addresses listening on `port` (Linux /proc/net/tcp*, hex as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(address)
    return found


def test_ui_script_stops_on_sigterm_leaving_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    env = {**os.environ, "TRADEFLOW_HOME": str(home), "PORT": str(port)}
    env.pop("DAGSTER_HOME", None)
    log = (tmp_path / "ui.log").open("wb")
    script = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "ui.sh")],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the finally below can always kill it all
        preexec_fn=_like_a_background_job,
    )
    pgid = script.pid
    try:
        url = f"http://127.0.0.1:{port}/server_info"
        up = _wait_until(lambda: script.poll() is not None or _answers(url), START_TIMEOUT_S, step_s=1.0)
        assert script.poll() is None, f"ui.sh exited early ({script.returncode}):\n{_tail(tmp_path / 'ui.log')}"
        assert up, f"no answer from {url} within {START_TIMEOUT_S:.0f}s:\n{_tail(tmp_path / 'ui.log')}"
        addresses = _listen_addresses(port)
        if addresses:  # 0100007F is 127.0.0.1; 00000000 would be every interface
            assert addresses == {"0100007F"}, f"port {port} is bound to {addresses}, not only 127.0.0.1"

        os.kill(script.pid, signal.SIGTERM)
        try:
            script.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ui.sh still running {STOP_TIMEOUT_S:.0f}s after SIGTERM:\n{_tail(tmp_path / 'ui.log')}")
        assert _wait_until(lambda: not _procs(pgid, home), STOP_TIMEOUT_S), (
            f"left running after SIGTERM: {_procs(pgid, home)}"
        )
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        for pid in _procs(pgid, home):  # anything that left the group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        script.wait(timeout=10)
        log.close()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
