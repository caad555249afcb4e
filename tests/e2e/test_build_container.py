"""Builds whose commands run in the build image (``--executor docker``), end to end.

A Node.js addon (node-gyp, offline, against the ``node`` layer's headers) and a Python sdist
with a C extension compile in the build container of their stack (its build image, loaded
from the store into the engine by the build) and load in the image; each is built from two
host directories with equal digests. The Node.js app also needs a private package from a
loopback registry that demands a token given only as ``--secret id=npmrc``; afterwards every
file the build left (layers, blobs, config, label, receipt, cache, store) is searched for the
token, the CA bundle's marker and the proxy value.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.buildcontainer.executor import CONTAINER_LABEL
from lifecycle.buildcontainer.spec import HOST_CA_BUNDLE
from lifecycle.image.transports.store import Store
from stacks import catalog, provide
from stacks.recipe import STORE_REPOSITORY
from tests.buildpacks.nodejs.npmserver import NpmServer, publish_release, serving
from tests.infra.cli import CliRunner
from tests.infra.containers import load_archive, run_to_exit
from tests.infra.images import cache_root

if TYPE_CHECKING:
    import docker

NODE_VERSION = "22.12.0"
NPM_VERSION = "10.9.2"
NODE_STACK = "debian-bookworm-nodejs"
PYTHON_STACK = "debian-trixie-python"
TOKEN = f"npm-token-{uuid.uuid4().hex}"
CA_MARKER = f"ca-marker-{uuid.uuid4().hex}"
PROXY_MARKER = f"proxy-marker-{uuid.uuid4().hex}.invalid"
PIP_MARKER = f"pip-marker-{uuid.uuid4().hex}"

ADDON_GYP = '{"targets": [{"target_name": "addon", "sources": ["addon.c"]}]}\n'
ADDON_C = """#include <node_api.h>

static napi_value Answer(napi_env env, napi_callback_info info) {
  napi_value result;
  napi_create_int32(env, 42, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "answer", NAPI_AUTO_LENGTH, Answer, NULL, &fn);
  napi_set_named_property(env, exports, "answer", fn);
  return exports;
}
"""
CEXT_C = """#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&module); }
"""


def _tgz(path: Path | None, files: dict[str, str], prefix: str) -> bytes:
    """A gzip tarball of ``files`` under ``prefix/``, byte for byte the same every time (fixed
    times in the tar and in the gzip header); written to ``path`` when given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 315532800
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(buffer.getvalue(), mtime=0)
    if path is not None:
        path.write_bytes(packed)
    return packed


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def node_app(root: Path) -> Path:
    """An app with a local node-gyp addon tarball and a dependency on a private package."""
    root.mkdir(parents=True)
    _tgz(root / "addon-1.0.0.tgz", {
        "package.json": json.dumps({"name": "addon", "version": "1.0.0", "main": "index.js"}),
        "binding.gyp": ADDON_GYP, "addon.c": ADDON_C,
        "index.js": "module.exports = require('./build/Release/addon.node');\n"}, "package")
    return _write(root, {
        "package.json": json.dumps({
            "name": "native", "version": "1.0.0", "engines": {"node": NODE_VERSION},
            "dependencies": {"addon": "file:addon-1.0.0.tgz", "private-dep": "1.0.0"}}),
        "handler.js": "exports.handler = async () => ({ statusCode: 200, body: "
                      "require('addon').answer() + ' ' + require('private-dep').word });\n",
        "project.toml": '[_]\nid = "test.native-node"\n\n[[io.hybridless.functions]]\n'
                        'name = "main"\nhandler = "handler.handler"\nevent = "launchableTask"\n',
    })


def python_app(root: Path) -> Path:
    """An app whose one requirement is a local sdist with a C extension, built from source."""
    root.mkdir(parents=True)
    _tgz(root / "cext-0.1.tar.gz", {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
                          'build-backend = "setuptools.build_meta"\n\n'
                          '[project]\nname = "cext"\nversion = "0.1"\n',
        "setup.py": 'from setuptools import Extension, setup\n\n'
                    'setup(ext_modules=[Extension("cext", ["cext.c"])])\n',
        "cext.c": CEXT_C}, "cext-0.1")
    return _write(root, {
        "requirements.txt": "--no-binary cext\n./cext-0.1.tar.gz\n",
        "handler.py": "import cext\n\n\ndef handler(event, context):\n"
                      "    return {'statusCode': 200, 'body': str(cext.add(40, 2))}\n",
        "project.toml": '[_]\nid = "test.native-python"\n\n[[io.hybridless.functions]]\n'
                        'name = "main"\nhandler = "handler.handler"\nevent = "launchableTask"\n'
                        'runtime = "python3.13"\n',
    })


@pytest.fixture(scope="module")
def npm_registry() -> Iterator[NpmServer]:
    """Node.js and npm as published, and ``private-dep``, served only with the token."""
    with serving() as server:
        publish_release(server, cache_root() / "npm", NODE_VERSION, NPM_VERSION)
        server.publish("private-dep", "1.0.0", _tgz(None, {
            "package.json": json.dumps({"name": "private-dep", "version": "1.0.0"}),
            "index.js": "exports.word = 'private';\n"}, "package"))
        server.token, server.private = TOKEN, {"private-dep"}
        yield server


@pytest.fixture(scope="module")
def marked_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host's CA bundle with a marker comment (PEM readers skip text between blocks)."""
    if not HOST_CA_BUNDLE.is_file():
        pytest.skip(f"no host CA bundle at {HOST_CA_BUNDLE}")
    bundle = tmp_path_factory.mktemp("ca") / "bundle.pem"
    bundle.write_text(HOST_CA_BUNDLE.read_text() + f"\n# {CA_MARKER}\n")
    return bundle


def _runner(root: Path, stack_home: Path) -> CliRunner:
    """A CLI whose store is a copy of the session's stack store (blobs hard-linked)."""
    home = root / "home"
    if not home.exists():
        source, target = Store(stack_home), Store(home)
        for row in source.images():
            target.write(source.read(row.reference), [row.reference])
    return CliRunner(home=home, cache=root / "cache")


def _build_image_id(client: docker.DockerClient, stack: str) -> str:
    """The engine's id of the stack's build image (loaded by the first build on the stack)."""
    name = provide.build_image_name(catalog.load({}).get(stack))
    return str(client.images.get(name).id)


def _left_behind(client: docker.DockerClient, root: Path) -> list[str]:
    """Build containers still present that mount something under ``root`` (by mounts, since
    other test runs may have build containers of their own on the same engine)."""
    found = client.containers.list(all=True, filters={"label": CONTAINER_LABEL})
    return [c.id for c in found if str(root) in json.dumps(c.attrs.get("Mounts"))]


def _build(root: Path, app: Path, stack_home: Path, stack: str, *args: str,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``build --stack S --executor docker -v --json``; the document, stderr as ``"log"``."""
    (root / "tmp").mkdir(exist_ok=True)
    result = _runner(root, stack_home)(
        "build", app, "--image", f"oci:{root / 'out'}:img", "--stack", stack,
        "--executor", "docker", "-v", "--json", *args,
        env={"TMPDIR": str(root / "tmp"), **(env or {})})
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout), "log": result.stderr}


def _node_build(root: Path, stack_home: Path, registry: NpmServer, ca: Path,
                *extra: str) -> dict[str, Any]:
    npmrc = root / "secret-npmrc"
    if not npmrc.exists():
        npmrc.write_text(f"//{registry.url.split('://', 1)[1]}/:_authToken={TOKEN}\n")
    return _build(root, root / "app", stack_home, NODE_STACK,
                  "--secret", f"id=npmrc,src={npmrc}", "--ca-bundle", str(ca),
                  "--env", f"npm_config_registry={registry.url}/", *extra,
                  env={"https_proxy": f"http://{PROXY_MARKER}:3128",
                       "NO_PROXY": "127.0.0.1,localhost"})


def _result(client: docker.DockerClient, root: Path, name: str) -> str:
    archive = root / "image.tar"
    shutil.rmtree(archive, ignore_errors=True)
    from tests.e2e.conftest import tool

    tool("skopeo", "copy", "--quiet", f"oci:{root / 'out'}:img",
         f"docker-archive:{archive}:hybridless-tests/{name}:latest")
    (tag,) = load_archive(client, archive)
    try:
        finished = run_to_exit(client, tag, ["{}"], timeout=120)
    finally:
        client.images.remove(tag, force=True)
    assert finished.exit_code == 0, finished.stdout + finished.stderr
    return str(json.loads(finished.last_line)["body"])


def _image_file(layout: Path, name: str) -> str:
    """One file of the ``img`` image in ``layout``, read from the layer that holds it."""
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    for layer in reversed(manifest["layers"]):
        data = gzip.decompress((blobs / layer["digest"].split(":")[1]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            try:
                member = tar.extractfile(name)
            except KeyError:
                continue
            assert member is not None
            return member.read().decode()
    raise AssertionError(f"{name} is in no layer of {layout}")


def _stack_blobs(home: Path) -> set[str]:
    """File names of the blobs of the stack images in ``home``'s store (no build wrote them)."""
    store = Store(home)
    names: set[str] = set()
    for row in store.images():
        if row.reference.startswith(STORE_REPOSITORY):
            found = store.read(row.reference)
            digests = [found.digest, found.config_digest, *(layer.digest for layer in found.layers)]
            names.update(d.split(":", 1)[1] for d in digests)
    return names


def _everything(roots: list[Path], skip: set[Path]) -> Iterator[tuple[Path, bytes]]:
    """Every file under ``roots`` (gzip blobs decompressed) except ``skip`` and the blobs of
    the stack images each root's store holds."""
    for root in roots:
        known = _stack_blobs(root / "home")
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            if path in skip or (path.parent.name == "sha256" and path.name in known):
                continue
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            yield path, data


@pytest.fixture(scope="module")
def node_builds(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
                stack_home: Path, npm_registry: NpmServer, marked_ca: Path
                ) -> tuple[Path, Path, list[Any]]:
    """The Node.js app built from two host directories (each with its own cache)."""
    first = tmp_path_factory.mktemp("node-a")
    second = tmp_path_factory.mktemp("somewhere-else") / "deeper" / "node-b"
    second.mkdir(parents=True)
    docs = []
    for root in (first, second):
        node_app(root / "app")
        docs.append(_node_build(root, stack_home, npm_registry, marked_ca))
        assert _left_behind(docker_client, root) == []
    return first, second, docs


def test_node_addon_compiles_in_the_container_and_runs_in_the_image(
        node_builds: tuple[Path, Path, list[Any]], docker_client: docker.DockerClient,
        npm_registry: NpmServer) -> None:
    first, second, (doc_a, doc_b) = node_builds
    assert doc_a["digest"] == doc_b["digest"]
    assert npm_registry.refused == []  # the token reached npm through the secret
    assert _result(docker_client, first, "native-node") == "42 private"
    gypi = _image_file(first / "out",
                       "layers/hybridless_nodejs/deps/node_modules/addon/build/config.gypi")
    assert '"nodedir": "/layers/hybridless_nodejs/node"' in gypi
    assert str(first) not in gypi and str(second) not in gypi


def test_without_the_secret_the_private_package_is_refused(
        tmp_path: Path, stack_home: Path, npm_registry: NpmServer) -> None:
    node_app(tmp_path / "app")
    result = _runner(tmp_path, stack_home)(
        "build", tmp_path / "app", "--image", f"oci:{tmp_path / 'out'}:img", "--stack",
        NODE_STACK, "--executor", "docker", "--env", f"npm_config_registry={npm_registry.url}/")
    assert result.returncode == 50, result.stderr
    assert "private-dep" in result.stderr and "last output" in result.stderr


def test_no_secret_ca_bundle_or_proxy_value_is_left_anywhere(
        node_builds: tuple[Path, Path, list[Any]]) -> None:
    first, second, _ = node_builds
    markers = [m.encode() for m in (TOKEN, CA_MARKER, PROXY_MARKER)]
    skip = {first / "secret-npmrc", second / "secret-npmrc"}
    searched = 0
    for path, data in _everything([first, second], skip):
        searched += 1
        for marker in markers:
            assert marker not in data, f"{marker.decode()} found in {path}"
    assert searched > 20
    for root in (first, second):
        assert not list((root / "tmp").iterdir()), "the staged secrets were not removed"


def test_a_rebuild_without_change_starts_no_container(
        node_builds: tuple[Path, Path, list[Any]], stack_home: Path, npm_registry: NpmServer,
        marked_ca: Path) -> None:
    first, _, (doc, _) = node_builds
    # Receipts answer only for the local store, so these builds write there.
    into_store = ("--image", "native-node:rebuild")
    builds = [_node_build(first, stack_home, npm_registry, marked_ca, *into_store, *extra)
              for extra in ((), (), ("--full",))]
    assert "starting a build container" in doc["log"]
    for build in builds:
        assert "starting a build container" not in build["log"], build["log"]
        assert build["digest"] == doc["digest"]
        assert all(layer["reused"] for layer in build["layers"] if "/" in layer["name"])
    assert [b["unchanged"] for b in builds] == [False, True, False]


def test_layers_of_another_executor_are_not_reused(
        node_builds: tuple[Path, Path, list[Any]], docker_client: docker.DockerClient,
        stack_home: Path, npm_registry: NpmServer, marked_ca: Path) -> None:
    _, second, _ = node_builds
    records = sorted((second / "cache").rglob("layers/hybridless_nodejs/*.json"))
    assert records and {json.loads(r.read_text())["executor"] for r in records} == {
        f"docker {_build_image_id(docker_client, NODE_STACK)}"}
    local = _node_build(second, stack_home, npm_registry, marked_ca, "--executor", "local")
    assert local["unchanged"] is False
    assert not any(layer["reused"] for layer in local["layers"] if "/" in layer["name"])


def test_python_c_extension_compiles_in_the_container_and_runs_in_the_image(
        tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
        stack_home: Path, marked_ca: Path) -> None:
    docs, roots = [], []
    for name in ("py-a", "py-b"):
        root = tmp_path_factory.mktemp(name) / "nested" / name
        root.mkdir(parents=True)
        python_app(root / "app")
        pip_conf = root / "secret-pip.conf"
        pip_conf.write_text(f"[global]\n# {PIP_MARKER}\n")
        docs.append(_build(root, root / "app", stack_home, PYTHON_STACK,
                           "--secret", f"id=pip.conf,src={pip_conf}",
                           "--secret", "id=netrc,env=TEST_NETRC", "--ca-bundle", str(marked_ca),
                           env={"TEST_NETRC": f"machine x login y password {PIP_MARKER}"}))
        roots.append(root)
    assert docs[0]["digest"] == docs[1]["digest"]
    assert _result(docker_client, roots[0], "native-python") == "42"
    skip = {root / "secret-pip.conf" for root in roots}
    for path, data in _everything(roots, skip):
        for marker in (PIP_MARKER.encode(), CA_MARKER.encode()):
            assert marker not in data, f"{marker.decode()} found in {path}"
