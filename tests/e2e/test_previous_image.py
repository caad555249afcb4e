"""``build --previous-image`` on an empty machine: layers reused by digest, nothing re-sent.

Each build runs with a fresh ``HYBRIDLESS_HOME`` and ``XDG_CACHE_HOME`` (an ephemeral CI
runner), a Node.js app with one npm dependency, and an ``npm`` first on PATH that fails: an
install would break the build. The registry's own access log says what crossed the wire.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import pushed_base, run_json, tool
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage
from tests.infra.oci_images import AccessLog, docker_config
from tests.infra.services import Registry

DEPENDENCY = "ms@2.1.3"


@pytest.fixture(scope="module")
def node_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Node.js handler with one dependency and its lockfile, Node.js from the build host."""
    app = tmp_path_factory.mktemp("node-app") / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({
        "name": "previous-image-app", "version": "1.0.0", "private": True,
        "dependencies": {"ms": DEPENDENCY.partition("@")[2]}}, indent=2))
    # The lockfile comes from the real npm registry, as a developer's would.
    subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit",
                    "--no-fund"], cwd=app, check=True, capture_output=True, timeout=300)
    (app / "handler.js").write_text(
        "const ms = require('ms');\n"
        "exports.handler = async () => ({statusCode: 200, body: ms('2 days').toString()});\n")
    (app / "project.toml").write_text(
        '[io.hybridless.buildpacks."hybridless/nodejs"]\nnode = "image"\n')
    return app


@pytest.fixture
def failing_npm(tmp_path: Path) -> dict[str, str]:
    """An environment whose first ``npm`` on PATH exits 97, saying so."""
    bin_dir = tmp_path / "failing-bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\necho 'npm must not run in this build' >&2\nexit 97\n")
    npm.chmod(0o755)
    import os

    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _runner(tmp_path: Path, name: str) -> CliRunner:
    """A CLI with its own empty store and cache: a fresh CI runner."""
    return CliRunner(home=tmp_path / name / "home", cache=tmp_path / name / "cache")


def _base(registry: Registry, busybox_base: BaseImage) -> str:
    return pushed_base(registry.host, busybox_base.ref)


def _build(tmp_path: Path, runner: str, app: Path, image: str, base: str, *extra: str,
           env: dict[str, str]) -> dict[str, Any]:
    """``build --json`` with the local executor on a fresh runner named ``runner``."""
    doc: dict[str, Any] = run_json(_runner(tmp_path, runner), "build", app, "--image", image,
                                   "--run-image", base, "--executor", "local", *extra, env=env)
    return doc


def _uploads(log: AccessLog) -> list[str]:
    """Digests of the blobs whose upload the registry completed since the mark."""
    done = [p for m, p, s in log.requests() if m == "PUT" and "/blobs/uploads/" in p]
    return [re.search(r"digest=sha256(?:%3A|:)([0-9a-f]{64})", p).group(1)  # type: ignore[union-attr]
            for p in done]


def _layer(doc: dict[str, object], name: str) -> dict[str, object]:
    layers = doc["layers"]
    assert isinstance(layers, list)
    return next(layer for layer in layers if layer["name"] == name)


def test_unchanged_app_on_an_empty_machine_runs_no_npm_and_sends_no_blob(
    registry: Registry, busybox_base: BaseImage, node_app: Path, tmp_path: Path,
    failing_npm: dict[str, str],
) -> None:
    base = _base(registry, busybox_base)
    app_ref = f"docker://{registry.host}/app-{secrets.token_hex(3)}:1"
    env = docker_config(tmp_path / "docker-config", {})
    first = _build(tmp_path, "first", node_app, app_ref, base, env=env)
    assert _layer(first, "hybridless/nodejs/deps")["reused"] is False
    assert first["previous_image"] == {"image": app_ref, "restored": []}

    # The failing npm is real: a build that has to install fails on it.
    broken = _runner(tmp_path, "broken")(
        "build", node_app, "--image", f"oci:{tmp_path / 'broken'}:1", "--run-image", base,
        "--executor", "local", env={**env, **failing_npm})
    assert broken.returncode == 50, broken.stderr
    assert "npm must not run" in broken.stderr

    log = AccessLog(registry)
    again = _build(tmp_path, "second", node_app, app_ref, base, env={**env, **failing_npm})
    assert again["digest"] == first["digest"]
    assert _layer(again, "hybridless/nodejs/deps")["reused"] is True
    assert "hybridless/nodejs/deps" in again["previous_image"]["restored"]
    requests = log.requests()
    assert not [r for r in requests if r[0] in ("PUT", "POST", "PATCH")], requests
    deps_digest = _layer(first, "hybridless/nodejs/deps")["digest"]
    assert not [p for m, p, _ in requests if m == "GET" and str(deps_digest) in p]

    # One file changes: that layer, the config and the manifest go up; nothing else.
    changed = tmp_path / "changed"
    subprocess.run(["cp", "-a", str(node_app), str(changed)], check=True)
    (changed / "handler.js").write_text((changed / "handler.js").read_text() + "// v2\n")
    log = AccessLog(registry)
    third = _build(tmp_path, "third", changed, app_ref, base, env={**env, **failing_npm})
    assert third["digest"] != first["digest"]
    app_layer = _layer(third, "app")
    assert app_layer["digest"] != _layer(first, "app")["digest"]
    assert sorted(_uploads(log)) == sorted(
        [str(app_layer["digest"]).removeprefix("sha256:"),
         str(third["config_digest"]).removeprefix("sha256:")])
    manifests = [p for m, p, _ in log.requests() if m == "PUT" and "/manifests/" in p]
    assert len(manifests) == 1
    seen = json.loads(tool("skopeo", "inspect", "--tls-verify=false", app_ref).stdout)
    assert seen["Digest"] == third["digest"]


def test_reused_layers_are_fetched_for_a_local_sink_and_mounted_across_repositories(
    registry: Registry, busybox_base: BaseImage, node_app: Path, tmp_path: Path,
    failing_npm: dict[str, str],
) -> None:
    base = _base(registry, busybox_base)
    previous = f"docker://{registry.host}/prev-{secrets.token_hex(3)}:1"
    env = docker_config(tmp_path / "docker-config", {})
    first = _build(tmp_path, "first", node_app, previous, base, env=env)
    deps = _layer(first, "hybridless/nodejs/deps")

    # Another repository of the same registry: the reused layer is mounted, never sent.
    other = f"docker://{registry.host}/other-{secrets.token_hex(3)}:1"
    log = AccessLog(registry)
    mounted = _build(tmp_path, "mounted", node_app, other, base,
                     "--previous-image", previous, env={**env, **failing_npm})
    assert mounted["digest"] == first["digest"]
    requests = log.requests()
    assert any(m == "POST" and f"mount={deps['digest']}" in p.replace("%3A", ":") and s == 201
               for m, p, s in requests), requests
    assert str(deps["digest"]).removeprefix("sha256:") not in _uploads(log)
    assert not [p for m, p, _ in requests if m == "GET" and str(deps["digest"]) in p]

    # A sink outside the registry: the reused blob is downloaded (checked), then written.
    layout = tmp_path / "layout"
    log = AccessLog(registry)
    local = _build(tmp_path, "local", node_app, f"oci:{layout}:1", base,
                   "--previous-image", previous, env={**env, **failing_npm})
    assert local["digest"] == first["digest"]
    assert any(m == "GET" and str(deps["digest"]) in p for m, p, _ in log.requests())
    seen = json.loads(tool("skopeo", "inspect", f"oci:{layout}:1").stdout)
    assert seen["Digest"] == first["digest"]
    tool("umoci", "unpack", "--rootless", "--image", f"{layout}:1", str(tmp_path / "bundle"))
    modules = list((tmp_path / "bundle" / "rootfs" / "layers").glob(
        "hybridless_nodejs/deps/node_modules/ms/package.json"))
    assert modules, "the reused dependency layer is not in the written image"


def test_previous_image_of_another_stack_or_without_a_label_restores_nothing(
    registry: Registry, busybox_base: BaseImage, node_app: Path, tmp_path: Path,
) -> None:
    base = _base(registry, busybox_base)
    env = docker_config(tmp_path / "docker-config", {})
    # The base image itself: pushed by skopeo, no build label.
    doc = _build(tmp_path, "nolabel", node_app, f"oci:{tmp_path / 'out'}:1", base,
                 "--previous-image", base, env=env)
    assert doc["previous_image"] == {"image": base, "restored": []}
    assert _layer(doc, "hybridless/nodejs/deps")["reused"] is False
    # A previous image that does not exist yet (the first build) is no error.
    missing = f"docker://{registry.host}/never-{secrets.token_hex(3)}:1"
    doc = _build(tmp_path, "missing", node_app, f"oci:{tmp_path / 'out2'}:1", base,
                 "--previous-image", missing, env=env)
    assert doc["previous_image"] == {"image": missing, "restored": []}
    # A malformed reference is a usage error naming it.
    bad = _runner(tmp_path, "bad")("build", node_app, "--image", f"oci:{tmp_path / 'o3'}:1",
                                   "--previous-image", "docker://", "--run-image", base,
                                   env=env)
    assert bad.returncode == 61, bad.stderr
    # So is a malformed cache image, before anything is built or written.
    bad = _runner(tmp_path, "bad-cache")("build", node_app, "--image",
                                         f"oci:{tmp_path / 'o4'}:1", "--cache-image",
                                         "nope:/x:y:z", "--run-image", base, env=env)
    assert bad.returncode == 61, bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "o4").exists()


def test_across_registries_reused_layers_are_downloaded_and_uploaded(
    registry: Registry, busybox_base: BaseImage, node_app: Path, tmp_path: Path,
    failing_npm: dict[str, str],
) -> None:
    from tests.infra.services import running_registry

    base = _base(registry, busybox_base)
    previous = f"docker://{registry.host}/prev-{secrets.token_hex(3)}:1"
    env = docker_config(tmp_path / "docker-config", {})
    first = _build(tmp_path, "first", node_app, previous, base, env=env)
    deps = str(_layer(first, "hybridless/nodejs/deps")["digest"])
    with running_registry(tmp_path / "second-registry") as second:
        source_log, dest_log = AccessLog(registry), AccessLog(second)
        dest = f"docker://{second.host}/copy:1"
        doc = _build(tmp_path, "other", node_app, dest, base,
                     "--previous-image", previous, env={**env, **failing_npm})
        assert doc["digest"] == first["digest"]
        assert _layer(doc, "hybridless/nodejs/deps")["reused"] is True
        # Fetched from the first registry, checked, then sent whole: no cross-host mount.
        assert any(m == "GET" and deps in p for m, p, _ in source_log.requests())
        assert deps.removeprefix("sha256:") in _uploads(dest_log)
        assert not [p for m, p, _ in dest_log.requests() if "mount=" in p]
        seen = json.loads(tool("skopeo", "inspect", "--tls-verify=false", dest).stdout)
        assert seen["Digest"] == first["digest"]


def test_a_tampered_blob_in_the_previous_repository_fails_the_export_cleanly(
    busybox_base: BaseImage, node_app: Path, tmp_path: Path, failing_npm: dict[str, str],
) -> None:
    from tests.infra.services import running_registry

    env = docker_config(tmp_path / "docker-config", {})
    with running_registry(tmp_path / "own-registry") as own:
        base = _base(own, busybox_base)
        previous = f"docker://{own.host}/prev:1"
        first = _build(tmp_path, "first", node_app, previous, base, env=env)
        deps = str(_layer(first, "hybridless/nodejs/deps")["digest"]).removeprefix("sha256:")
        # The registry serves whatever its storage holds: flip the stored blob's bytes.
        data = next(own.root.rglob(f"blobs/sha256/{deps[:2]}/{deps}/data"))
        data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))
        runner = _runner(tmp_path, "victim")
        result = runner("build", node_app, "--image", f"oci:{tmp_path / 'out'}:1",
                        "--previous-image", previous, "--run-image", base,
                        "--executor", "local", env={**env, **failing_npm})
    assert result.returncode == 72, result.stderr
    assert "sha256:" + deps in result.stderr and "Traceback" not in result.stderr
    # Nothing unchecked was kept, and no image was written.
    assert not list(runner.cache.rglob(deps)) and not list(runner.home.rglob(deps))
    assert not (tmp_path / "out" / "index.json").exists() or "manifests\": []" in (
        tmp_path / "out" / "index.json").read_text()
