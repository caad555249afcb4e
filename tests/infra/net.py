"""Loopback networking helpers: free ports and waiting for a service to answer."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Container

# Loopback services must never be reached through a proxy taken from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    # The kernel picks the port; another process could take it before the caller binds it,
    # which is why service starters retry on a failed start.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str,
    timeout: float = 10.0,
    *,
    statuses: Container[int] = range(200, 500),
    process: subprocess.Popen[bytes] | None = None,
) -> int:
    """Poll ``url`` until it answers with one of ``statuses``; return that status.

    Raises ``TimeoutError`` naming the last failure when ``timeout`` seconds pass, and
    ``RuntimeError`` at once if ``process`` (the server being waited for) has exited.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt made"
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"failed to reach {url}: the server exited with code {process.returncode}"
            )
        try:
            with _DIRECT.open(url, timeout=2) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            # Only the status matters here: an auth challenge (401) still proves the server is up.
            status = exc.code
        except (OSError, ValueError) as exc:
            last = str(exc)
            status = 0
        if status in statuses:
            return status
        if status:
            last = f"HTTP {status}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"failed to reach {url} within {timeout:g}s: {last}")
        time.sleep(0.05)


def get_when_up(url: str, timeout: float = 90) -> bytes:
    """The body ``url`` answers 200 with, retrying until it does (a container that is still
    starting) for ``timeout`` seconds."""
    wait_for_http(url, timeout, statuses=(200,))
    with _DIRECT.open(url, timeout=10) as response:
        return bytes(response.read())


def wait_for_port(
    port: int, timeout: float = 10.0, *, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"nothing listens on port {port} after {timeout:g}s: {exc}"
                ) from exc
        time.sleep(0.05)
