"""The static-site buildpack, tested with the fixtures of ``lifecycle.testing``.

The fixtures come from the ``pytest11`` entry point of hybridless-lifecycle: no conftest.py.
The server tests start the shipped ``serve`` script for real and fetch pages over HTTP.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from hybridless_static_site import (
    BUILDPACK_ID,
    StaticSiteBuildpack,
    hybridless_buildpacks,
    options_problem,
)

from lifecycle.testing import BuildRun, DetectRun, Kit

SITE = {"public/index.html": "<h1>hello</h1>", "public/css/site.css": "h1 { color: red }"}
OPTIONS = f'[io.hybridless.buildpacks."{BUILDPACK_ID}"]\n'


@pytest.fixture(autouse=True)
def _registered(register_buildpack: Callable[..., None]) -> None:
    register_buildpack(StaticSiteBuildpack())


def test_detects_public_index(make_app: Callable[..., Path], detect_app: Callable[..., DetectRun]
                              ) -> None:
    run = detect_app(make_app(SITE))
    run.assert_passed()
    assert run.group == [BUILDPACK_ID]
    assert [entry.name for entry in run.plan] == ["static-site"]
    assert run.reasons[BUILDPACK_ID] == "found public/index.html"


def test_fails_without_a_site(make_app: Callable[..., Path], detect_app: Callable[..., DetectRun]
                              ) -> None:
    app = make_app({"public/about.html": "no index here"})
    detect_app(app).assert_failed(reason="no index.html in any of public, dist, _site",
                                  exit_code=20)


def test_leaves_apps_with_their_own_processes_alone(make_app: Callable[..., Path],
                                                    detect_app: Callable[..., DetectRun]) -> None:
    app = make_app({**SITE, "Procfile": "web: ./server\n"})
    detect_app(app).assert_failed(reason="declares its own processes")
    explicit = make_app({**SITE, "Procfile": "web: ./server\n"},
                        descriptor=OPTIONS + 'root = "public"\n')
    detect_app(explicit).assert_passed()


def test_invalid_options_name_the_key(make_app: Callable[..., Path],
                                      detect_app: Callable[..., DetectRun]) -> None:
    app = make_app(SITE, descriptor=OPTIONS + 'srever = "python"\n')
    detect_app(app).assert_failed(reason="'srever' was unexpected")
    assert "valid keys: build-command, health-route, port, root, server" in str(
        options_problem({"srever": "python"}))
    assert options_problem({"port": 0}) == "port: 0 is less than the minimum of 1"
    assert options_problem({"root": "../etc"}) is not None
    assert options_problem({"server": "busybox", "port": 80}) is None


def test_build_puts_site_and_server_in_layers(make_app: Callable[..., Path],
                                              build_app: Callable[..., BuildRun]) -> None:
    run = build_app(make_app(SITE, descriptor='[_]\nid = "com.example.site"\n'
                                               '[io.hybridless]\nstage = "prod"\n'))
    run.assert_passed()
    site = run.layer(f"{BUILDPACK_ID}/site")
    assert site.read_text("index.html") == "<h1>hello</h1>"
    assert run.files.read_text("/layers/examples_static-site/site/css/site.css").startswith("h1")
    assert not run.files.exists("/var/task/public")  # excluded from the app layer
    web = run.processes["web"]
    assert web.command == ("/layers/examples_static-site/server/bin/serve",)
    assert web.defaults["STAGE"] == "prod"
    health = web.defaults["HEALTH_ROUTE"]
    assert health.startswith("/healthCheck/")
    assert site.read_text(health.lstrip("/")) == "Healthy!"
    assert run.env["STATIC_ROOT"] == "/layers/examples_static-site/site"
    assert run.env["STATIC_SERVER"] == "auto"
    assert run.files.mode("/layers/examples_static-site/server/bin/serve") & 0o111
    assert run.labels["dev.hybridless.examples.static-site.root"] == "public"


def test_unchanged_site_and_server_are_reused(hybridless: Kit) -> None:
    app = hybridless.app(SITE)
    first = hybridless.build(app).assert_passed()
    second = hybridless.build(app).assert_passed()
    assert first.reused == set()
    assert second.reused == {f"{BUILDPACK_ID}/site", f"{BUILDPACK_ID}/server"}
    (app / "public" / "index.html").write_text("<h1>changed</h1>")
    third = hybridless.build(app).assert_passed()
    assert third.reused == {f"{BUILDPACK_ID}/server"}
    assert third.layer(f"{BUILDPACK_ID}/site").read_text("index.html") == "<h1>changed</h1>"


def test_build_command_makes_the_site(make_app: Callable[..., Path],
                                      build_app: Callable[..., BuildRun]) -> None:
    command = '["/bin/sh", "-c", "mkdir -p dist && echo built > dist/index.html && echo done"]'
    app = make_app({"src/page.md": "# page"},
                   descriptor=OPTIONS + f'build-command = {command}\nroot = "dist"\n')
    run = build_app(app).assert_passed()
    assert run.layer(f"{BUILDPACK_ID}/site").read_text("index.html") == "built\n"
    assert any(line.endswith("done") for line in run.logs)  # command output goes to ctx.log


def test_failing_build_command_exits_50(make_app: Callable[..., Path],
                                        build_app: Callable[..., BuildRun]) -> None:
    app = make_app({}, descriptor=OPTIONS + 'build-command = ["/bin/sh", "-c", "exit 3"]\n')
    build_app(app).assert_failed(reason="exited with 3", exit_code=50)


def test_entry_point_is_installed(hybridless: Kit) -> None:
    try:
        importlib.metadata.distribution("hybridless-static-site")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the package is not installed (pip install -e .)")
    assert BUILDPACK_ID in hybridless.installed()
    assert [bp.id for bp in hybridless_buildpacks()] == [BUILDPACK_ID]


# ----------------------------------------------------------------------- the server, live


@pytest.mark.parametrize("server", ["busybox", "python", "node", "auto"])
def test_serves_pages_and_health_route(server: str, hybridless: Kit, tmp_path: Path) -> None:
    needs = {"busybox": "busybox", "python": "python3", "node": "node"}.get(server)
    if needs and not shutil.which(needs):
        pytest.skip(f"{needs} is not installed")
    run = hybridless.build(hybridless.app(SITE)).assert_passed()
    site = _unpack(run, "site", tmp_path / "site")
    serve = _unpack(run, "server", tmp_path / "server") / "bin" / "serve"
    port = _free_port()
    env = {**os.environ, **run.processes["web"].defaults, "PORT": str(port),
           "STATIC_ROOT": str(site), "STATIC_SERVER": server}
    with _running([str(serve)], env):
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/") == b"<h1>hello</h1>"
        assert _get(f"{base}/css/site.css") == b"h1 { color: red }"
        assert _get(base + env["HEALTH_ROUTE"]) == b"Healthy!"
        with pytest.raises(urllib.error.HTTPError) as missing:
            _get(f"{base}/nope.html")
        assert missing.value.code == 404


def _unpack(run: BuildRun, layer: str, dest: Path) -> Path:
    for rel, data in run.layer(f"{BUILDPACK_ID}/{layer}").files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(run.files.mode(f"/layers/examples_static-site/{layer}/{rel}"))
    return dest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


class _running:
    """Start a server and wait until its port answers; stop it on exit."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.port = int(env["PORT"])

    def __enter__(self) -> _running:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{output}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError("the server did not listen within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
