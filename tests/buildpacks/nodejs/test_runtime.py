"""The ``node`` layer: Node.js and npm from an npm registry, reused without asking it again.

The real ``node-linux-*`` and ``npm`` tarballs are downloaded from the public registry once
(through the buildpack's own client: CA bundle, proxy, integrity) and kept under the tests'
cache directory; builds then read them from a loopback registry that counts requests.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from buildpacks.nodejs import NodejsBuildpack
from buildpacks.nodejs.runtime import package_for
from lifecycle.testing import BuildRun, Kit
from tests.buildpacks.nodejs.npmserver import NpmServer, publish_release, serving
from tests.infra.cli import CliRunner
from tests.infra.containers import load_archive, run_to_exit
from tests.infra.images import BaseImage, cache_root

if TYPE_CHECKING:
    import docker

NODE_VERSION = "22.12.0"
NPM_VERSION = "10.9.2"
NODE = "hybridless/nodejs/node"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens there
HANDLER = "exports.handler = async () => ({ statusCode: 200, body: process.version });\n"
# The build script reports which node, npm and nodedir the build's commands see.
REPORT = ("mkdir -p dist && node --version > dist/node && npm --version > dist/npm && "
          "npm config get nodedir > dist/nodedir && cp src/handler.js dist/handler.js")


@pytest.fixture(scope="module")
def registry() -> Iterator[NpmServer]:
    """A loopback registry holding one real Node.js release and one real npm."""
    with serving() as server:
        publish_release(server, cache_root() / "npm", NODE_VERSION, NPM_VERSION)
        server.publish(package_for(platform.machine()), "20.18.0-rc.1", b"never chosen")
        # A newer npm of the same major whose engines exclude this Node: must not be chosen.
        server.publish("npm", "10.99.0", b"wrong npm", extra={"engines": {"node": ">=99"}})
        server.publish("npm", "11.0.0", b"wrong major")
        yield server


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("node-layer"))
    kit.register(NodejsBuildpack())
    return kit


@pytest.fixture(scope="module")
def app(kit: Kit) -> Path:
    package = {"name": "app", "version": "1.0.0", "engines": {"node": "^22.1"},
               "scripts": {"build": REPORT}}
    return kit.app({
        "package.json": json.dumps(package),
        "src/handler.js": HANDLER,
        # A machine or user npmrc naming another Node's headers must lose to the layer.
        ".npmrc": "nodedir=/usr\n",
        "project.toml": '[_]\nid = "test.node-layer"\n\n[[io.hybridless.functions]]\n'
                        'name = "api"\nhandler = "dist/handler.handler"\n',
    }, name="layered")


@pytest.fixture(scope="module")
def first(kit: Kit, app: Path, registry: NpmServer) -> tuple[BuildRun, float]:
    started = time.monotonic()
    run = kit.build(app, env={"npm_config_registry": registry.url + "/"}).assert_passed()
    return run, time.monotonic() - started


def _layer_dir(kit: Kit) -> Path:
    return next((kit.root / "cache" / "projects").glob("*/layers/hybridless_nodejs/node"))


def test_newest_matching_release_and_its_npm_fill_the_layer(
        first: tuple[BuildRun, float], kit: Kit) -> None:
    run, seconds = first
    layer = run.layer(NODE)
    assert layer.metadata["node"]["version"] == NODE_VERSION
    assert layer.metadata["npm"]["version"] == NPM_VERSION
    assert layer.metadata["request"] == "^22.1"
    root = "/layers/hybridless_nodejs/node"
    assert run.files.mode(f"{root}/bin/node") == 0o755
    assert run.files.link_target(f"{root}/bin/npm") == "../lib/node_modules/npm/bin/npm-cli.js"
    assert "include/node/common.gypi" in layer.files
    node = _layer_dir(kit) / "bin" / "node"
    assert subprocess.run([str(node), "--version"], capture_output=True, text=True,
                          check=True).stdout.strip() == f"v{NODE_VERSION}"
    print(f"node layer: download, install and seal took {seconds:.1f} s")


def test_build_commands_run_the_layer_node_npm_and_headers(
        first: tuple[BuildRun, float]) -> None:
    run, _ = first
    built = run.layer("hybridless/nodejs/build")
    assert built.read_text("dist/node").strip() == f"v{NODE_VERSION}"
    assert built.read_text("dist/npm").strip() == NPM_VERSION
    # The app's .npmrc says nodedir=/usr; the layer wins.
    assert built.read_text("dist/nodedir").strip().endswith("/layers/hybridless_nodejs/node")


def test_processes_start_the_layer_node_with_its_bin_first_on_path(
        first: tuple[BuildRun, float]) -> None:
    run, _ = first
    assert run.processes["api"].command[0] == "/layers/hybridless_nodejs/node/bin/node"
    assert run.env["PATH"].startswith("/layers/hybridless_nodejs/node/bin:")


def test_unchanged_request_reuses_the_layer_without_the_registry(
        first: tuple[BuildRun, float], kit: Kit, app: Path, registry: NpmServer) -> None:
    seen = len(registry.requests)
    (app / "src/handler.js").write_text(HANDLER + "// changed\n")
    started = time.monotonic()
    run = kit.build(app, env={"npm_config_registry": UNREACHABLE}).assert_passed()
    seconds = time.monotonic() - started
    assert NODE in run.reused
    assert len(registry.requests) == seen
    print(f"rebuild with an unchanged Node.js request, registry unreachable: {seconds:.1f} s")
    # Control: a full build resolves again, so the unreachable registry fails it.
    kit.build(app, env={"npm_config_registry": UNREACHABLE, "HYBRIDLESS_BUILD_FULL": "1"}
              ).assert_failed("127.0.0.1:9", exit_code=50)


def test_changed_request_resolves_again(first: tuple[BuildRun, float], kit: Kit,
                                        app: Path) -> None:
    (app / ".nvmrc").write_text("lts/jod\n")
    package = json.loads((app / "package.json").read_text())
    del package["engines"]
    original = (app / "package.json").read_text()
    (app / "package.json").write_text(json.dumps(package))
    try:
        kit.build(app, env={"npm_config_registry": UNREACHABLE}).assert_failed(
            "127.0.0.1:9", exit_code=50)
    finally:
        (app / "package.json").write_text(original)
        (app / ".nvmrc").unlink()


def test_missing_release_is_named_with_what_the_package_has(
        kit: Kit, registry: NpmServer) -> None:
    app = kit.app({"index.js": HANDLER, "package.json": '{"engines": {"node": "18.x"}}'})
    run = kit.build(app, env={"npm_config_registry": registry.url + "/"})
    run.assert_failed(f"no release matching it (the node-linux-* packages lack many "
                      f"releases, arm64 most); its newest are {NODE_VERSION}", exit_code=50)


@pytest.mark.parametrize(("options", "env"), [
    ('[io.hybridless.buildpacks."hybridless/nodejs"]\nnode = "image"\n', {}),
    ("", {"HYBRIDLESS_STACK_PROVIDES": '{"nodejs": "22"}'}),
])
def test_image_node_means_no_layer_and_no_registry(kit: Kit, options: str,
                                                   env: dict[str, str]) -> None:
    app = kit.app({"index.js": HANDLER, "package.json": "{}"},
                  descriptor=f'[_]\nid = "test.image-node"\n\n{options}')
    run = kit.build(app, env={"npm_config_registry": UNREACHABLE, **env}).assert_passed()
    assert NODE not in run.layers
    assert run.processes["main"].command[0] == "node"


def test_bad_stack_provides_fails_clearly(kit: Kit) -> None:
    app = kit.app({"index.js": HANDLER})
    kit.build(app, env={"HYBRIDLESS_STACK_PROVIDES": "nodejs=22"}).assert_failed(
        "failed to read HYBRIDLESS_STACK_PROVIDES='nodejs=22': not JSON", exit_code=50)


@pytest.mark.docker
def test_the_image_runs_the_layer_node_not_the_base_one(
        registry: NpmServer, debian_base: BaseImage, docker_client: docker.DockerClient,
        tmp_path: Path) -> None:
    # The Debian base has Debian's Node.js 18 on its PATH; the app asks for 22.
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "engines": {"node": "22"}}')
    (app / "task.js").write_text(
        "exports.handler = async () => { console.log(`node ${process.version} "
        "first-on-path ${process.env.PATH.split(':')[0]}`); return {}; };\n")
    (app / "project.toml").write_text('[_]\nid = "test.node-layer-e2e"\n\n'
                                      '[[io.hybridless.functions]]\nname = "task"\n'
                                      'handler = "task.handler"\nevent = "process"\n')
    cli = CliRunner(tmp_path / "home", tmp_path / "cache")
    archive = tmp_path / "image.tar"
    tag = "hybridless-tests/node-layer:e2e"
    result = cli("build", app, "--image", f"docker-archive:{archive}:{tag}", "--run-image",
                 debian_base.ref, "--env", f"npm_config_registry={registry.url}/")
    assert result.returncode == 0, result.stderr
    load_archive(docker_client, archive)
    try:
        finished = run_to_exit(docker_client, tag)
    finally:
        docker_client.images.remove(tag, force=True)
    assert finished.exit_code == 0, finished.stderr
    assert (f"node v{NODE_VERSION} first-on-path /layers/hybridless_nodejs/node/bin"
            in finished.stdout), finished.stdout + finished.stderr
