"""Child processes of the course: :class:`ProcessGroup` (the one launcher: tuning workers, ``tf.distribute``
tasks, servers), the environment a child gets, free ports on loopback, a private network namespace, and the
ports a process listens on. Week 06 teaches it (``tf.distribute`` on real processes); 02 starts its distributed
search with it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from mlcourse.session import ROOT

__all__ = ["free_port", "child_env", "ProcessGroup", "exit_with_parent", "private_network_available",
           "listening_ports"]


def free_port() -> int:
    """A TCP port on localhost that is free right now.

    Lesson: 06_distributed_training § The worker script.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra) -> dict:
    """The environment for a child process of the course (a tuning worker, a tf.distribute task): this
    process's environment, with this checkout first on ``PYTHONPATH`` (so the child imports *this* mlcourse,
    whatever an editable install points at), quiet TensorFlow, unbuffered output, and ``extra`` on top."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2",
           "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ------------------------------------------------------------------------------------------ child processes
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None and sys.platform.startswith("linux"):
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _die_with_parent(parent_pid: int):
    """A ``preexec_fn``: the child asks the kernel for SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``),
    and exits at once if the parent is already gone. Runs in the child between fork and exec."""
    libc = _libc()  # loaded before the fork: nothing is imported in the child

    def preexec():
        os.setsid()  # its own process group: Ctrl-C in the parent's terminal/kernel does not reach it directly
        if libc is not None:
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _watch_parent(parent_pid: int, every: float = 0.5) -> None:
    """Where the kernel has no parent-death signal (macOS): a daemon thread in the child that exits the process
    as soon as its parent is gone. :class:`ProcessGroup` children call it through ``MLCOURSE_PARENT_PID``."""

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(every)

    threading.Thread(target=watch, daemon=True, name="mlcourse-parent-watchdog").start()


def exit_with_parent() -> None:
    """Call first thing in a child of :class:`ProcessGroup`: on platforms without ``PR_SET_PDEATHSIG`` a watchdog
    thread ends this process when its parent dies (on Linux the kernel already does). No-op outside a group."""
    pid = os.environ.get("MLCOURSE_PARENT_PID")
    if pid and not sys.platform.startswith("linux"):
        _watch_parent(int(pid))


_PRIVATE_NET: bool | None = None


def private_network_available() -> bool:
    """True if child processes can be put in a private network namespace here (Linux ``unshare -rn`` with
    ``ip``): the only interface inside is loopback, so whatever they listen on cannot be reached from outside.
    Measured once per process (a 50 ms probe).

    Lesson: 06_distributed_training § 06 · Distributed training and fast input pipelines, run for real.
    """
    global _PRIVATE_NET
    if _PRIVATE_NET is None:
        import shutil as _sh

        ok = False
        if sys.platform.startswith("linux") and _sh.which("unshare") and _sh.which("nsenter") and _sh.which("ip"):
            try:
                ok = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True,
                                    timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _PRIVATE_NET = ok
    return _PRIVATE_NET


def listening_ports(pid: int) -> list[tuple[str, int]]:
    """The TCP sockets process ``pid`` holds in LISTEN state, as ``(address, port)``, read from
    ``/proc/<pid>/net/tcp``/``tcp6`` and its open files (Linux); ``"0.0.0.0"`` / ``"::"`` mean every interface."""
    import ipaddress

    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    out = []
    for name, size in (("tcp", 4), ("tcp6", 16)):
        path = Path(f"/proc/{pid}/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) < 10 or cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                continue
            hexaddr, hexport = cols[1].split(":")
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))  # /proc stores 32-bit words host-endian
            out.append((str(ipaddress.ip_address(raw)), int(hexport, 16)))
    return out


class ProcessGroup:
    """The course's one launcher of child processes (tf.distribute tasks, tuning workers).

    Every child gets :func:`child_env` (plus what the caller adds), its own log file ``log_dir/<name>.log``
    (appended to, so a restart keeps the history), its own process group, and the **parent-death signal**:
    if this process dies, even by SIGKILL (a Jupyter kernel restart), the kernel kills the children
    (Linux ``PR_SET_PDEATHSIG``; elsewhere a watchdog thread in the child, see :func:`exit_with_parent`).
    :meth:`stop` sends SIGTERM, waits ``grace`` seconds, then SIGKILLs what is left; leaving the ``with``
    block stops everything, whatever happened.

    ``private_network=True`` starts the children inside one private network namespace (``unshare -rn``)
    where only loopback exists: servers that listen on every interface (tf.distribute's gRPC servers do,
    whatever ``TF_CONFIG`` says) are then unreachable from the network. Where the platform does not allow
    it, a warning says so and the children run in the normal network (:attr:`isolated` tells which)::

        with ProcessGroup(log_dir, private_network=True) as group:
            group.start("worker-0", [sys.executable, "-m", "mlcourse.distributed", "task"], env={...})
            group.wait(["worker-0"], timeout=600)

    Lesson: 06_distributed_training § The worker script.
    """

    def __init__(self, log_dir, private_network: bool = False, grace: float = 3.0):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.grace = float(grace)
        self.procs: dict[str, subprocess.Popen] = {}
        self._files: dict[str, object] = {}
        self._holder: subprocess.Popen | None = None
        self.isolated = False
        if private_network:
            if private_network_available():
                self._holder = subprocess.Popen(
                    ["unshare", "-rn", "sh", "-c", "ip link set lo up && exec sleep 86400"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent(os.getpid()))
                self._wait_for_namespace()
                self.isolated = True
            else:
                warnings.warn("No private network namespace on this machine (needs Linux with unprivileged "
                              "`unshare -rn`): the child processes' servers listen on EVERY network interface, "
                              "unauthenticated. Run this only on a network you trust.", RuntimeWarning, stacklevel=2)

    def _wait_for_namespace(self, timeout: float = 10) -> None:
        mine = os.readlink("/proc/self/ns/net")
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            try:
                if os.readlink(f"/proc/{self._holder.pid}/ns/net") != mine and \
                        "sleep" in Path(f"/proc/{self._holder.pid}/cmdline").read_text():
                    return
            except OSError:
                pass
            if self._holder.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("could not start the private network namespace (unshare -rn); "
                           "create the group with private_network=False")

    def log_path(self, name: str) -> Path:
        """The log file of child ``name``."""
        return self.log_dir / (name.replace(":", "-") + ".log")

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        """Start child ``name`` running ``cmd`` with :func:`child_env` plus ``env``; output goes to its log."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"child {name} is still running; stop it before starting it again.")
        if self._holder is not None:
            if self._holder.poll() is not None:
                raise RuntimeError("the private network namespace is gone (its holder process exited).")
            cmd = ["nsenter", "-t", str(self._holder.pid), "-U", "-n", "--preserve-credentials", *cmd]
        f = self._files.get(name)
        if f is None or f.closed:
            f = self._files[name] = open(self.log_path(name), "a")
        f.write(f"\n===== {time.strftime('%H:%M:%S')} start {name}\n")
        f.flush()
        self.procs[name] = subprocess.Popen(cmd, env=child_env(MLCOURSE_PARENT_PID=os.getpid(), **(env or {})),
                                            stdout=f, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent(os.getpid()))
        return self.procs[name]

    def alive(self) -> list[str]:
        """The names of the children still running."""
        return [n for n, p in self.procs.items() if p.poll() is None]

    def kill(self, name: str) -> None:
        """SIGKILL child ``name`` (and its process group) at once: no clean-up, as when a machine dies."""
        p = self.procs.get(name)
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def wait(self, names: list[str], timeout: float = 600, on_poll=None) -> dict[str, int]:
        """Wait until the children ``names`` exit; returns their exit codes. ``on_poll()`` is called about twice
        a second meanwhile. TimeoutError (naming the log to read) if one still runs after ``timeout`` s."""
        end = time.perf_counter() + timeout
        for n in names:
            while True:
                try:
                    self.procs[n].wait(timeout=min(0.5, max(0.05, end - time.perf_counter())))
                    break
                except subprocess.TimeoutExpired:
                    if time.perf_counter() >= end:
                        raise TimeoutError(f"{n} still runs after {timeout} s; see {self.log_path(n)}") from None
                    if on_poll:
                        on_poll()
        return {n: self.procs[n].returncode for n in names}

    def stop(self, names: list[str] | None = None) -> None:
        """SIGTERM the children ``names`` (default: all), wait up to ``grace`` s, SIGKILL whatever is left."""
        procs = [self.procs[n] for n in (names or list(self.procs))]
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.perf_counter() + self.grace
        for p in procs:
            try:
                p.wait(timeout=max(0.01, end - time.perf_counter()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()

    def close(self) -> None:
        """Stop every child, close the logs and leave the private network namespace (if any)."""
        self.stop()
        for f in self._files.values():
            f.close()
        if self._holder is not None and self._holder.poll() is None:
            self._holder.kill()
            self._holder.wait()

    def log(self, name: str, tail: int = 30) -> str:
        """The last ``tail`` lines of child ``name``'s log."""
        path = self.log_path(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.exists() else ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
