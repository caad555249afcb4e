"""The lifecycle as an image (docs/ci.md), run the way a CI or Kubernetes job runs it.

``examples/ci/build-lifecycle-image.sh`` builds the image once for the module. Each test then
``docker run``s it with no Docker socket, ``--network host`` and the host's CA bundle mounted
over the image's, on a source tree mounted read-only; the build reads its run image from the
loopback registry and pushes its result there. These are the steps of
``examples/ci/github-actions.yml``. Hostile inputs are the container's: no arguments, a
read-only cache volume, a link out of the mounted tree.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.image.transports.store import Store
from tests.e2e.conftest import copy_example, tool
from tests.infra.cli import REPO_ROOT, CliRunner
from tests.infra.containers import running
from tests.infra.oci_images import AccessLog
from tests.infra.services import Registry

if TYPE_CHECKING:
    import docker

pytestmark = [pytest.mark.debian, pytest.mark.docker, pytest.mark.registry]

SCRIPT = REPO_ROOT / "examples" / "ci" / "build-lifecycle-image.sh"
STACK = "debian-trixie-python"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "NO_PROXY")
# Loopback services must never be reached through a proxy taken from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class LifecycleImage:
    """The lifecycle image in the engine, and a CLI on the store it was built from."""

    name: str
    cli: CliRunner
    seconds: float


def _cli(root: Path, stack_home: Path) -> CliRunner:
    """A CLI whose store is a copy of the session's stack store (blobs hard-linked)."""
    home = root / "home"
    source, target = Store(stack_home), Store(home)
    for row in source.images():
        target.write(source.read(row.reference), [row.reference])
    return CliRunner(home=home, cache=root / "cache")


@pytest.fixture(scope="module")
def lifecycle_image(tmp_path_factory: pytest.TempPathFactory, stack_home: Path,
                    docker_client: docker.DockerClient) -> Iterator[LifecycleImage]:
    """The image built by the documented script, straight into the engine."""
    root = tmp_path_factory.mktemp("lifecycle-image")
    cli = _cli(root, stack_home)
    name = f"hybridless-tests/lifecycle:{secrets.token_hex(4)}"
    env = cli.environment({"HYBRIDLESS_LIFECYCLE": f"{sys.executable} -m lifecycle"})
    started = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), f"docker-daemon:{name}"], env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"lifecycle image built in {seconds:.1f}s")
    try:
        yield LifecycleImage(name, cli, seconds)
    finally:
        import docker.errors

        try:
            docker_client.images.remove(name, force=True)
        except docker.errors.APIError:
            pass  # a container a failed test left behind still holds it; the engine keeps it


@pytest.fixture(scope="module")
def run_image(lifecycle_image: LifecycleImage, registry: Registry) -> str:
    """The stack's run image, pushed to the loopback registry as a CI pipeline would have it."""
    listed = json.loads(lifecycle_image.cli("stacks", "list", "--json").stdout)
    stored = next(s["run_image"] for s in listed if s["id"] == STACK)
    ref = f"docker://{registry.host}/stacks/trixie-python-run:{secrets.token_hex(3)}"
    result = lifecycle_image.cli("push", stored, ref)
    assert result.returncode == 0, result.stderr
    return ref


def docker_run(image: str, *args: str, mounts: tuple[tuple[Path, str, str], ...] = (),
               env: dict[str, str] | None = None, user: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    """``docker run --rm --network host`` with the CA bundle and proxy settings, no socket."""
    argv = ["docker", "run", "--rm", "--network", "host",
            "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    if user is not None:
        argv += ["--user", user]
    for name in PROXY_VARIABLES:
        if name in os.environ:
            argv += ["-e", name]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    for source, target, mode in mounts:
        argv += ["-v", f"{source}:{target}:{mode}"]
    return subprocess.run([*argv, image, *args], capture_output=True, text=True, timeout=600,
                          check=False)


def _app(root: Path) -> Path:
    """python-hello pinned to the stack's Python, with one dependency pip must fetch."""
    app = copy_example("python-hello", root)
    (app / ".python-version").write_text("3.13\n")
    with (app / "requirements.txt").open("a") as requirements:
        requirements.write("six==1.17.0\n")
    for path in (app, *app.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user is not root
    return app


def _layer_names(doc: dict[str, Any]) -> set[str]:
    return {layer["name"] for layer in doc["layers"]}


def _ci_build(image: str, app: Path, repository: str, tag: str, run_image: str
              ) -> subprocess.CompletedProcess[str]:
    """One CI job's build, as examples/ci/github-actions.yml runs it: the commit's tag, the
    branch tag that the next job's previous image is, and the registry cache beside them."""
    # As a uid the image does not know, as the workflow's `--user` and OpenShift run it.
    return docker_run(image, "build", "/workspace/app", "--json",
                      "--image", f"docker://{repository}:{tag}",
                      "--tag", f"docker://{repository}:main",
                      "--previous-image", f"docker://{repository}:main",
                      "--cache-image", f"docker://{repository}:build-cache",
                      "--run-image", run_image,
                      mounts=((app, "/workspace/app", "ro"),), user="4321:4321")


def test_the_image_builds_a_mounted_tree_and_pushes_it_with_no_docker_socket(
        lifecycle_image: LifecycleImage, run_image: str, registry: Registry,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    assert CA_BUNDLE.is_file(), "the host CA bundle is needed to reach PyPI"
    app = _app(tmp_path)
    repository = f"{registry.host}/apps/hello-{secrets.token_hex(3)}"
    target = f"{repository}:1"
    started = time.monotonic()
    result = _ci_build(lifecycle_image.name, app, repository, "1", run_image)
    print(f"build in the lifecycle image: {time.monotonic() - started:.1f}s")
    assert result.returncode == 0, result.stderr
    # No engine to run build containers in: pip ran in the lifecycle's own container, and
    # reached PyPI through the mounted CA bundle.
    assert "executor: local" in result.stderr
    assert "Successfully installed six-1.17.0" in result.stderr
    doc = json.loads(result.stdout)
    assert {"hybridless/python/deps", "hybridless/python/shim", "app"} <= _layer_names(doc)
    assert doc["pushed"] == [f"{repository}@{doc['digest']}"]
    assert doc["previous_image"]["restored"] == []
    assert doc["cache_image"]["digest"] is not None

    # An independent reader sees what was reported, built on the registry's run image.
    inspected = json.loads(tool("skopeo", "inspect", "--tls-verify=false",
                                f"docker://{target}").stdout)
    assert inspected["Digest"] == doc["digest"]
    label = json.loads(inspected["Labels"]["io.hybridless.build"])
    assert label["run-image"]["reference"] == run_image
    assert inspected["Labels"]["io.hybridless.stack"] == STACK

    tool("docker", "pull", "--quiet", target)
    try:
        with running(docker_client, target, wait_path="/hi?name=ci", timeout=60) as app_run:
            with _DIRECT.open(app_run.url("/hi?name=ci"), timeout=10) as response:
                body = json.loads(response.read())
        assert body["message"] == "hello, ci"
    finally:
        docker_client.images.remove(target, force=True)

    # The next commit's job, in a new container (an empty store and cache): the previous
    # image and the cache image bring everything back; pip installs nothing, no blob is sent.
    log = AccessLog(registry)
    again = _ci_build(lifecycle_image.name, app, repository, "2", run_image)
    assert again.returncode == 0, again.stderr
    assert "Successfully installed" not in again.stderr
    second = json.loads(again.stdout)
    assert second["digest"] == doc["digest"]
    assert "hybridless/python/deps" in second["previous_image"]["restored"]
    assert second["cache_image"]["digest"] == doc["cache_image"]["digest"]
    requests = log.requests()
    assert not [p for m, p, _ in requests if "/blobs/uploads/" in p], requests
    assert {p.rpartition("/")[2] for m, p, _ in requests
            if m == "PUT" and "/manifests/" in p} == {"2", "main"}


def test_no_arguments_print_the_usage_and_exit_2(lifecycle_image: LifecycleImage) -> None:
    result = docker_run(lifecycle_image.name)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "usage: hybridless-lifecycle" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_arguments_reach_the_command_line(lifecycle_image: LifecycleImage) -> None:
    result = docker_run(lifecycle_image.name, "buildpacks", "--json")
    assert result.returncode == 0, result.stderr
    ids = {bp["id"] for bp in json.loads(result.stdout)}
    assert {"hybridless/nodejs", "hybridless/python", "hybridless/procfile"} <= ids


def test_a_read_only_cache_volume_fails_cleanly(
        lifecycle_image: LifecycleImage, run_image: str, registry: Registry,
        tmp_path: Path) -> None:
    app = _app(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    result = docker_run(lifecycle_image.name, "build", "/workspace/app",
                        "--image", f"docker://{registry.host}/apps/never:1",
                        "--run-image", run_image,
                        mounts=((app, "/workspace/app", "ro"), (cache, "/cache", "ro")),
                        env={"XDG_CACHE_HOME": "/cache"})
    assert result.returncode == 51, result.stderr
    assert "Traceback" not in result.stderr
    assert "/cache" in result.stderr
    assert not list(cache.iterdir())


def test_a_link_out_of_the_mounted_tree_fails_the_build_and_pushes_nothing(
        lifecycle_image: LifecycleImage, run_image: str, registry: Registry,
        tmp_path: Path) -> None:
    app = copy_example("python-hello", tmp_path)
    # The container's CA bundle is a mount too: a link to it must not carry it into the image.
    (app / "ca.pem").symlink_to(CA_BUNDLE)
    for path in (app, *app.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    target = f"docker://{registry.host}/apps/linked-{secrets.token_hex(3)}:1"
    result = docker_run(lifecycle_image.name, "build", "/workspace/app", "--image", target,
                        "--run-image", run_image, mounts=((app, "/workspace/app", "ro"),))
    assert result.returncode == 51, result.stderr
    assert "ca.pem" in result.stderr and "Traceback" not in result.stderr
    assert tool("skopeo", "inspect", "--tls-verify=false", target, check=False).returncode != 0
