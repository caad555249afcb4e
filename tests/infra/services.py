"""Real services the end-to-end tests talk to: the Docker engine, a registry and moto's server.

Each starter raises ``ServiceUnavailable`` when the service cannot run on this machine; the
fixtures turn that into a skip on a developer's machine and a failure in CI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.infra.net import free_port, wait_for_http, wait_for_port

if TYPE_CHECKING:
    import docker


class ServiceUnavailable(Exception):
    """A service the tests need is not installed or does not answer."""


def in_ci() -> bool:
    """Tell whether this run is CI, where every service must be present."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(what: str, cause: str) -> NoReturn:
    """Fail the test in CI, else skip it, saying which service is missing and how to get it."""
    message = f"{what} is not available: {cause}"
    if in_ci():
        pytest.fail(
            f"{message} (CI must provide it: .ci/setup installs and starts it)", pytrace=False
        )
    pytest.skip(f"{message}; run .ci/setup (as root) to install and start it")


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def connect_docker() -> docker.DockerClient:
    """Return a client to the running Docker engine, or raise ``ServiceUnavailable``."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise ServiceUnavailable(f"the docker SDK is not installed ({exc})") from exc
    try:
        # "auto" negotiates the API version: the engine may be older than the SDK's default.
        client = docker.from_env(version="auto", timeout=120)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise ServiceUnavailable(f"no Docker engine answers ({exc})") from exc
    return client


@dataclass(frozen=True)
class Registry:
    """A running local registry: ``host`` is "127.0.0.1:PORT", ``url`` its http:// base."""

    host: str
    url: str
    root: Path
    log: Path
    username: str | None = None
    password: str | None = None


def registry_binary() -> str:
    """Return the path of Distribution's registry binary, or raise ``ServiceUnavailable``."""
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    raise ServiceUnavailable("the docker-registry binary is not installed (Debian docker-registry)")


def htpasswd_entry(username: str, password: str) -> str:
    """Return one bcrypt htpasswd line, the only hash Distribution's htpasswd auth accepts."""
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        return f"{username}:{digest}"
    tool = shutil.which("htpasswd")
    if tool is None:
        raise ServiceUnavailable("neither the bcrypt module nor htpasswd (apache2-utils) is here")
    done = subprocess.run(
        [tool, "-nbB", "-C", "5", username, password],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _registry_config(
    root: Path, port: int, htpasswd: Path | None, options: RegistryOptions
) -> dict[str, object]:
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            # Tests of tag replacement and garbage collection delete manifests.
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "hybridless-tests", "path": str(htpasswd)}}
    if options.auth is not None:
        config["auth"] = dict(options.auth)
    if options.tls is not None:
        config["http"] = {
            "addr": f"127.0.0.1:{port}",
            "tls": {"certificate": str(options.tls[0]), "key": str(options.tls[1])},
        }
    return config


@dataclass(frozen=True)
class RegistryOptions:
    """Optional registry set-ups: an ``auth`` section (token auth) and TLS (cert, key)."""

    auth: Mapping[str, object] | None = None
    tls: tuple[Path, Path] | None = None


@contextmanager
def running_registry(
    workdir: Path,
    *,
    credentials: tuple[str, str] | None = None,
    options: RegistryOptions | None = None,
    timeout: float = 20.0,
) -> Iterator[Registry]:
    """Run Distribution on a free loopback port with data under ``workdir`` until exit.

    With ``credentials`` (user, password) the registry requires htpasswd basic auth;
    ``options`` sets token auth or TLS (then ``url`` starts with https://).
    """
    options = options or RegistryOptions()
    binary = registry_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    htpasswd: Path | None = None
    if credentials is not None:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(htpasswd_entry(*credentials) + "\n")
    log = workdir / "registry.log"
    process, port = _start_registry(binary, workdir, htpasswd, options, log, timeout)
    scheme = "https" if options.tls else "http"
    try:
        yield Registry(
            host=f"127.0.0.1:{port}",
            url=f"{scheme}://127.0.0.1:{port}",
            root=workdir,
            log=log,
            username=credentials[0] if credentials else None,
            password=credentials[1] if credentials else None,
        )
    finally:
        _stop(process)


def _start_registry(
    binary: str,
    workdir: Path,
    htpasswd: Path | None,
    options: RegistryOptions,
    log: Path,
    timeout: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the registry and wait until it answers; return the process and its port."""
    config = workdir / "config.yml"
    failure = ""
    # A port picked by free_port() can be taken before the registry binds it: try again.
    for _attempt in range(3):
        port = free_port()
        # JSON is valid YAML, which spares the tests a YAML library.
        config.write_text(
            json.dumps(_registry_config(workdir, port, htpasswd, options), indent=2)
        )
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            if options.tls is not None:
                # Our test CA is not the system's: wait for the port, not for HTTPS.
                wait_for_port(port, timeout, process=process)
            else:
                wait_for_http(f"http://127.0.0.1:{port}/v2/", timeout, process=process)
        except (RuntimeError, TimeoutError) as exc:
            failure = str(exc)
            _stop(process)
            continue
        # Whoever answered, it must be ours and not a server that took the port first.
        if process.poll() is None:
            return process, port
        failure = f"the registry exited with code {process.returncode}"
    raise ServiceUnavailable(f"failed to start the registry: {failure}\n{log_tail(log)}")


def new_credentials() -> tuple[str, str]:
    """Return a fresh (user, password) pair for an authenticated registry."""
    return "hybridless", secrets.token_urlsafe(12)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_moto() -> Iterator[str]:
    """Run moto's server in this process on a loopback port; yield its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ServiceUnavailable(f"moto[server] is not installed ({exc})") from exc
    # Port 0 lets the kernel choose at bind time, so no other process can race for it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        wait_for_http(f"{url}/moto-api/", 10.0)
        yield url
    finally:
        server.stop()
