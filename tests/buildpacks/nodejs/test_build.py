"""Build through the CLI, offline: dependencies from local npm tarballs, images read back with
tarfile. The base is the busybox image, so nothing here runs Node inside the image."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import pytest

from buildpacks.nodejs.layers import SHIM_DIR, shim_files
from tests.buildpacks.nodejs.conftest import (
    ImageContents,
    ImageNodeCli,
    build_layout,
    lock,
    npm_package,
    write_tree,
)
from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage

DEPS = "layers/hybridless_nodejs/deps/node_modules"
BUILD = "layers/hybridless_nodejs/build"
SHIM = "/layers/hybridless_nodejs/shim/index.mjs"

# The dev-only tool the build script runs: writes the handler into dist/, and notes whether
# the private-registry token reached the build (without writing the token itself).
DEVTOOL = """#!/usr/bin/env node
const fs = require('fs');
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/handler.js', "const lib = require('prodlib');\\n"
  + "exports.handler = async () => ({ statusCode: 200, body: lib() });\\n");
fs.writeFileSync('dist/token.txt', process.env.NPM_TOKEN ? 'token seen' : 'no token');
"""
# A stand-in for the project's own webpack: same bin name, writes the configured output.
FAKE_WEBPACK = """#!/usr/bin/env node
const fs = require('fs'); const path = require('path');
const config = require(path.resolve(process.argv[process.argv.indexOf('--config') + 1]));
fs.mkdirSync(config.output.path, { recursive: true });
const source = fs.readFileSync(config.entry, 'utf8');
fs.writeFileSync(path.join(config.output.path, config.output.filename),
  '// bundled by the project webpack\\n' + source);
"""


def make_app(root: Path, *, scripts: dict[str, str] | None = None,
             dev: dict[str, str] | None = None, handler: str = "dist/handler.handler",
             extra_files: dict[str, str] | None = None, options: str = "") -> Path:
    """An app with a production dependency and a dev dependency, both local tarballs."""
    vendor = root / "vendor"
    npm_package(vendor, "prodlib", {"index.js": "module.exports = () => 'from prodlib';\n"})
    npm_package(vendor, "devtool", {"index.js": "", "bin/devtool.js": DEVTOOL},
                extra={"bin": {"devtool": "bin/devtool.js"}})
    package = {
        "name": "app", "version": "1.0.0", "private": True,
        "scripts": {"build": "devtool"} if scripts is None else scripts,
        "dependencies": {"prodlib": "file:vendor/prodlib-1.0.0.tgz"},
        "devDependencies": {"devtool": "file:vendor/devtool-1.0.0.tgz", **(dev or {})},
    }
    write_tree(root, {
        "package.json": json.dumps(package, indent=2),
        "src/handler.js": "exports.handler = async () => ({ statusCode: 200 });\n",
        "project.toml": f'[_]\nid = "test.node-{root.name}"\n\n[[io.hybridless.functions]]\n'
                        f'name = "api"\nhandler = "{handler}"\n{options}',
        **(extra_files or {}),
    })
    lock(root)
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path / "app")


def layer(doc: dict[str, object], name: str) -> dict[str, object]:
    layers = doc["layers"]
    assert isinstance(layers, list)
    return next(entry for entry in layers if entry["name"] == f"hybridless/nodejs/{name}")


@pytest.fixture(scope="module")
def built(busybox_base: BaseImage, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, ImageContents]:
    """The standard app, built once for the tests that only read the image."""
    root = tmp_path_factory.mktemp("built")
    app = make_app(root / "app")
    runner = ImageNodeCli(root / "home", root / "cache")
    _, image = build_layout(runner, app, busybox_base.ref, root / "out")
    return app, image


def test_build_script_uses_dev_deps_and_only_prod_deps_ship(
        built: tuple[Path, ImageContents]) -> None:
    app, image = built
    assert f"{DEPS}/prodlib/index.js" in image.data
    assert not any("devtool" in name for name in image.members if name.startswith("layers/"))
    assert image.members["var/task/node_modules"].linkname == f"/{DEPS}"
    assert image.members["var/task/dist"].linkname == f"/{BUILD}/dist"
    assert image.members[f"{BUILD}/node_modules"].linkname == f"/{DEPS}"
    # Node takes "type" from the package.json above a file's real path, which is the layer.
    assert image.data[f"{BUILD}/package.json"] == (app / "package.json").read_bytes()
    assert not image.members["var/task/package.json"].issym()
    assert "require('prodlib')" in image.text(f"{BUILD}/dist/handler.js")
    assert "var/task/src/handler.js" in image.data
    # The build ran in a private copy: the user's directory gained nothing.
    assert not (app / "node_modules").exists() and not (app / "dist").exists()

    for path in shim_files():
        rel = path.relative_to(SHIM_DIR).as_posix()
        assert image.data[f"layers/hybridless_nodejs/shim/{rel}"] == path.read_bytes()
    build_label = image.label("io.hybridless.build")
    (process,) = build_label["processes"]
    assert process["name"] == "api" and process["command"] == ["node", SHIM]
    node = image.label("io.hybridless.nodejs")
    assert node["package-manager"] == "npm" and node["lockfile"] == "package-lock.json"
    assert node["build-steps"] == ["script build: devtool"]


def test_process_defaults_follow_the_environment_contract(
        built: tuple[Path, ImageContents]) -> None:
    _, image = built
    script = image.text("hybridless/launcher")
    for key, value in (("ENTRYPOINT", "dist/handler"), ("ENTRYPOINT_FUNC", "handler"),
                       ("HYBRIDLESS_EVENT_TYPE", "httpd"), ("PORT", "8080"),
                       ("AWS_NODEJS_CONNECTION_REUSE_ENABLED", "1"),
                       ("AWS_LAMBDA_FUNCTION_NAME", "api")):
        assert f"|| {{ {key}={value}; export {key}; }}" in script
    assert f"exec node {SHIM} \"$@\"" in script


def test_credentials_never_reach_the_image(cli: CliRunner, busybox_base: BaseImage,
                                           tmp_path: Path) -> None:
    token = f"tok-{secrets.token_hex(12)}"
    app = make_app(tmp_path / "app", extra_files={
        ".npmrc": "@private:registry=https://npm.invalid/\n"
                  "//npm.invalid/:_authToken=${NPM_TOKEN}\n",
        ".env": f"DATABASE_PASSWORD={token}-env\n",
        "config/.env.production": "API_KEY=abc\n"})
    _, image = build_layout(cli, app, busybox_base.ref, tmp_path / "out",
                            "--env", f"NPM_TOKEN={token}")
    assert image.text(f"{BUILD}/dist/token.txt") == "token seen"
    names = set(image.members)
    assert not {n for n in names if n.rsplit("/", 1)[-1] in (".npmrc", ".env")}
    assert "var/task/config/.env.production" not in names
    for raw in (*image.raw_layers, json.dumps(image.config).encode()):
        assert token.encode() not in raw


def test_dependency_layer_is_reused_until_the_lockfile_changes(
        cli: CliRunner, busybox_base: BaseImage, app: Path, tmp_path: Path) -> None:
    first, _ = build_layout(cli, app, busybox_base.ref, tmp_path / "one")
    assert not layer(first, "deps")["reused"]

    # No dependency change; the layer's files are gone and npm fails: nothing may reinstall.
    layers_dir = next((cli.cache / "hybridless" / "projects").glob("*/layers/hybridless_nodejs"))
    shutil.rmtree(layers_dir / "deps", ignore_errors=True)
    assert (layers_dir / "deps.json").is_file()
    failing = tmp_path / "failing-bin"
    write_tree(failing, {"npm": "#!/bin/sh\necho 'npm must not run' >&2\nexit 3\n"})
    (failing / "npm").chmod(0o755)
    path = f"{failing}{os.pathsep}{os.environ['PATH']}"
    second, _ = build_layout(cli, app, busybox_base.ref, tmp_path / "two", env={"PATH": path})
    assert second["digest"] == first["digest"]
    assert layer(second, "deps")["reused"] and layer(second, "build")["reused"]

    # The failing npm really is the one a build would call.
    (app / "src/extra.js").write_text("module.exports = 1;\n")
    failed = cli("build", app, "--image", f"oci:{tmp_path}/three:img", "--run-image",
                 busybox_base.ref, env={"PATH": path})
    assert failed.returncode == 50 and "npm must not run" in failed.stderr

    # A changed lockfile reinstalls; a changed source only re-runs the build script.
    third, _ = build_layout(cli, app, busybox_base.ref, tmp_path / "three")
    assert layer(third, "deps")["reused"] and not layer(third, "build")["reused"]
    npm_package(app / "vendor", "prodlib", {"index.js": "module.exports = () => 'v2';\n"},
                version="2.0.0")
    package = json.loads((app / "package.json").read_text())
    package["dependencies"]["prodlib"] = "file:vendor/prodlib-2.0.0.tgz"
    (app / "package.json").write_text(json.dumps(package))
    lock(app)
    fourth, image = build_layout(cli, app, busybox_base.ref, tmp_path / "four")
    assert not layer(fourth, "deps")["reused"]
    assert "'v2'" in image.text(f"{DEPS}/prodlib/index.js")


def test_same_app_from_two_directories_gives_one_digest(busybox_base: BaseImage,
                                                         tmp_path: Path) -> None:
    first = make_app(tmp_path / "a" / "app")
    second = tmp_path / "b" / "deeper" / "app"
    shutil.copytree(first, second)
    os.utime(second / "package.json", (1e9, 1e9))
    digests = []
    for index, app in enumerate((first, second)):
        runner = ImageNodeCli(tmp_path / f"home{index}", tmp_path / f"cache{index}")
        doc = run_json(runner, "build", app, "--image", f"oci:{tmp_path}/out{index}:img",
                       "--run-image", busybox_base.ref)
        digests.append(doc["digest"])
    assert digests[0] == digests[1]


def test_webpack_config_bundles_with_the_projects_webpack_unless_turned_off(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    vendor = tmp_path / "app" / "vendor"
    npm_package(vendor, "webpack", {"index.js": "", "bin/webpack.js": FAKE_WEBPACK},
                version="5.0.0", extra={"bin": {"webpack": "bin/webpack.js"}})
    config = ("module.exports = { entry: './src/handler.js', output: "
              "{ path: __dirname + '/.webpack', filename: 'handler.js' } };\n")
    app = make_app(tmp_path / "app", scripts={}, handler=".webpack/handler.handler",
                   dev={"webpack": "file:vendor/webpack-5.0.0.tgz"},
                   extra_files={"webpack.config.js": config})
    _, image = build_layout(cli, app, busybox_base.ref, tmp_path / "out")
    assert image.members["var/task/.webpack"].linkname == f"/{BUILD}/.webpack"
    assert image.text(f"{BUILD}/.webpack/handler.js").startswith("// bundled by the project")
    assert image.label("io.hybridless.nodejs")["build-steps"] == [
        "webpack --config webpack.config.js"]

    with (app / "project.toml").open("a") as toml:
        toml.write('\n[io.hybridless.buildpacks."hybridless/nodejs"]\nbundle = false\n')
    result = cli("build", app, "--image", f"oci:{tmp_path}/off:img", "--run-image",
                 busybox_base.ref)
    assert result.returncode == 50
    assert "names handler '.webpack/handler.handler'" in result.stderr


def test_webpack_config_without_webpack_says_what_to_add(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {
        "package.json": "{}", "src/handler.js": "exports.handler = () => 1;\n",
        "webpack.config.js": "module.exports = {};\n"})
    result = cli("build", app, "--image", f"oci:{tmp_path}/o:img", "--run-image",
                 busybox_base.ref)
    assert result.returncode == 50
    assert "add webpack and webpack-cli to devDependencies, or set bundle = false" in \
        result.stderr


@pytest.mark.parametrize(("table", "message"), [
    ("minify = true", "unknown key 'io.hybridless.buildpacks.\"hybridless/nodejs\".minify'; "
                      "valid keys here: build-script, bundle"),
    ('bundle = "no"', 'io.hybridless.buildpacks."hybridless/nodejs".bundle = "no" must be of '
                      "type boolean"),
])
def test_invalid_options_exit_11_naming_the_option(cli: CliRunner, busybox_base: BaseImage,
                                                   tmp_path: Path, table: str,
                                                   message: str) -> None:
    app = write_tree(tmp_path / "app", {
        "package.json": "{}", "handler.js": "exports.handler = () => 1;\n",
        "project.toml": f'[io.hybridless.buildpacks."hybridless/nodejs"]\n{table}\n'})
    result = cli("build", app, "--image", "oci:/nonexistent-dir/x:y", "--run-image",
                 busybox_base.ref)
    assert result.returncode == 11, result.stderr
    assert message in result.stderr


def test_yarn_lockfile_without_yarn_says_what_to_install(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {
        "package.json": json.dumps({"dependencies": {"left-pad": "1.3.0"}}),
        "yarn.lock": "# yarn lockfile v1\n", "index.js": "exports.handler = () => 1;\n"})
    only_node = tmp_path / "bin"
    only_node.mkdir()
    node = shutil.which("node")
    assert node
    (only_node / "node").symlink_to(node)
    result = cli("build", app, "--image", f"oci:{tmp_path}/o:img", "--run-image",
                 busybox_base.ref, env={"PATH": str(only_node)})
    assert result.returncode == 50, result.stderr
    assert "has a yarn lockfile but 'yarn' is not installed" in result.stderr
    assert "npm install -g yarn" in result.stderr


def test_no_lockfile_installs_with_npm_install(cli: CliRunner, busybox_base: BaseImage,
                                               tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", scripts={}, handler="src/handler.handler")
    (app / "package-lock.json").unlink()
    _, image = build_layout(cli, app, busybox_base.ref, tmp_path / "out")
    assert f"{DEPS}/prodlib/index.js" in image.data
    assert not (app / "package-lock.json").exists()
    metadata = next(layer for layer in image.label("io.hybridless.build")["layers"]
                    if layer["name"] == "hybridless/nodejs/deps")["metadata"]
    assert metadata["command"] == "npm install --no-audit --no-fund --omit=dev"
