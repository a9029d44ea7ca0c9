"""Helpers for the tests of the course's servers (JupyterLab, the JupyterHub room)."""
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as in /proc/net/tcp) with a socket listening on ``port``."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.read().splitlines()[1:]]
    return [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]


def assert_loopback_only(port: int, what: str) -> None:
    """Fail unless something listens on ``port`` and only on 127.0.0.1."""
    mine = listening_addresses(port)
    assert mine and all(addr.split(":")[0] == "0100007F" for addr in mine), f"{what} listens on {mine}"


@contextlib.contextmanager
def serving(cmd, log_path, ready, what: str, stop_timeout: float = 30, **popen):
    """Start ``cmd`` in its own process group (output to ``log_path``), wait up to 60 s until ``ready()`` is
    true (an OSError counts as not yet), yield the process, and stop the whole group at the end."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        for _ in range(120):
            try:
                if ready():
                    break
            except OSError:
                pass
            assert proc.poll() is None, Path(log_path).read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail(f"{what} did not answer within 60 s:\n" + Path(log_path).read_text()[-3000:])
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
