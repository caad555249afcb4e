"""moto's server as a separate process, for tests that need its recorder or its IAM checks.

The session's in-process moto (``services.running_moto``) cannot change either after import:
moto reads ``MOTO_ENABLE_RECORDING`` and ``INITIAL_NO_AUTH_ACTION_COUNT`` once. A process of
its own also keeps one test's recording apart from everyone else's calls.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.infra.net import free_port, wait_for_http
from tests.infra.services import ServiceUnavailable, log_tail

# Loopback only: never through a proxy taken from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class MotoProcess:
    """A running moto server: its endpoint URL and where it records requests."""

    url: str
    recording: Path

    def calls(self) -> Counter[str]:
        """Count recorded AWS JSON-protocol calls by operation (e.g. ``CreateRepository``)."""
        with _DIRECT.open(f"{self.url}/moto-api/recorder/download-recording", timeout=10) as answer:
            text = answer.read().decode()
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            if not line.strip():
                continue
            headers = {k.lower(): v for k, v in json.loads(line).get("headers", {}).items()}
            target = headers.get("x-amz-target", "")
            if target:
                counts[target.rpartition(".")[2]] += 1
        return counts


@contextmanager
def moto_process(
    workdir: Path, *, require_auth: bool = False, tls: tuple[Path, Path] | None = None
) -> Iterator[MotoProcess]:
    """Run ``python -m moto.server`` on a free loopback port with its recorder on.

    With ``require_auth``, moto checks every request's credentials against its IAM users, so
    unknown access keys are refused as AWS refuses them. With ``tls`` (certificate, key) it
    serves HTTPS.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    recording = workdir / "moto-recording.jsonl"
    log = workdir / "moto.log"
    env = dict(os.environ)
    env.update({"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)})
    if require_auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    failure = ""
    for _attempt in range(3):
        port = free_port()
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        if tls is not None:
            command += ["-c", str(tls[0]), "-k", str(tls[1])]
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        scheme = "https" if tls else "http"
        try:
            if tls:
                _wait_for_port(port, 30.0, process)
            else:
                wait_for_http(f"http://127.0.0.1:{port}/moto-api/", 30.0, process=process)
        except (RuntimeError, TimeoutError) as exc:
            failure = str(exc)
            _stop(process)
            continue
        try:
            yield MotoProcess(url=f"{scheme}://127.0.0.1:{port}", recording=recording)
        finally:
            _stop(process)
        return
    raise ServiceUnavailable(f"failed to start moto's server: {failure}\n{log_tail(log)}")


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts TCP connections on ``port`` (TLS servers: no HTTP probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:g}s")


def make_tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """Make a CA and a certificate for 127.0.0.1 signed by it; return (CA, cert, key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        workdir / name for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = workdir / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
         "-days", "2", "-subj", "/CN=hybridless test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(["openssl", *step], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceUnavailable(f"openssl {step[0]} failed: {done.stderr.strip()[-300:]}")
    return ca, cert, key


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
