"""Helpers for the tests of the course's servers (JupyterLab, the JupyterHub room)."""


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as in /proc/net/tcp) with a socket listening on ``port``."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.read().splitlines()[1:]]
    return [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]


def assert_loopback_only(port: int, what: str) -> None:
    """Fail unless something listens on ``port`` and only on 127.0.0.1."""
    mine = listening_addresses(port)
    assert mine and all(addr.split(":")[0] == "0100007F" for addr in mine), f"{what} listens on {mine}"
