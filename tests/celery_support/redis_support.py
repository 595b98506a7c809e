"""A real Redis for the Celery tests.

``RETURNFLOW_TEST_REDIS_URL`` names a server to use as it is; otherwise one answering on
127.0.0.1:6379 is used; otherwise ``redis-server`` (installed from Debian's ``redis-server``
package when missing and we run as root with ``apt-get``) is started on a free loopback
port for the run. When none can be had the tests skip with the reason, unless
``RETURNFLOW_REQUIRE_REDIS`` is ``1`` (as in CI): then they fail with it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["Unavailable", "redis_url", "required"]


class Unavailable(Exception):
    """No Redis server could be had; the message says why."""


def required() -> bool:
    return os.environ.get("RETURNFLOW_REQUIRE_REDIS") == "1"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("redis-server is not installed (and we cannot install it)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "redis-server"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}")
    found = shutil.which("redis-server")
    if not found:
        raise Unavailable("redis-server is still missing after installing it")
    return found


_started: list[str] = []


def redis_url() -> str:
    """A Redis URL for this run (starting a server when needed); raises :class:`Unavailable`."""
    if os.environ.get("RETURNFLOW_TEST_REDIS_URL"):
        return os.environ["RETURNFLOW_TEST_REDIS_URL"]
    if _started:
        return _started[0]
    if _answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    binary = _server_binary()
    port = _free_port()
    directory = tempfile.mkdtemp(prefix="returnflow-redis-")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(server.terminate)
    deadline = time.monotonic() + 10
    while not _answers("127.0.0.1", port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise Unavailable(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    _started.append(f"redis://127.0.0.1:{port}/0")
    return _started[0]
