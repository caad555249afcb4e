"""The engine's secrets list: credentials and the descriptor stay out of every image."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage

TOKEN = "npm_tok3n_9d1c"
BUILD_ENV = "build-env-value-52ab"
CLI_ENV = "cli-env-value-0b77"

SECRET_FILES = {
    ".env": f"TOKEN={TOKEN}\n",
    ".env.production": f"TOKEN={TOKEN}\n",
    ".npmrc": f"//registry.npmjs.org/:_authToken={TOKEN}\n",
    ".netrc": f"machine example.com login me password {TOKEN}\n",
    ".pypirc": f"[pypi]\npassword = {TOKEN}\n",
    "id_rsa": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{TOKEN}\n",
    "deploy/id_ed25519": TOKEN,
    ".aws/credentials": f"[default]\naws_secret_access_key = {TOKEN}\n",
    ".ssh/config": TOKEN,
    ".docker/config.json": json.dumps({"auths": {"x": {"auth": TOKEN}}}),
    "nested/.docker/config.json": json.dumps({"auths": {"x": {"auth": TOKEN}}}),
}


def _plant(app: Path) -> None:
    for name, text in SECRET_FILES.items():
        path = app / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    with open(app / "project.toml", "a") as handle:
        handle.write(f'\n[[io.buildpacks.build.env]]\nname = "BUILD_SECRET"\n'
                     f'value = "{BUILD_ENV}"\n')


def _image_bytes(layout: Path) -> tuple[set[str], bytes]:
    """Every file name in the image's layers, and all of its bytes (config and layers)."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    everything = (blobs / manifest["config"]["digest"][7:]).read_bytes()
    names: set[str] = set()

    for layer in manifest["layers"]:
        raw = gzip.decompress((blobs / layer["digest"][7:]).read_bytes())
        everything += raw
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            names.update(m.name.lstrip("./") for m in tar.getmembers())
    return names, everything


def test_secrets_and_the_descriptor_never_reach_the_image_and_each_is_named_once(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    _plant(hello_app)
    out = tmp_path / "out"
    result = cli("build", hello_app, "--image", f"oci:{out}:s", "--run-image",
                 busybox_base.ref, "--env", f"CLI_SECRET={CLI_ENV}")
    assert result.returncode == 0, result.stderr
    names, everything = _image_bytes(out)
    task = {n.removeprefix("var/task/") for n in names if n.startswith("var/task/")}
    assert "public/index.html" in task
    leaked = {n for n in task if n.split("/")[0] in (".env", ".env.production", ".npmrc",
                                                       ".netrc", ".pypirc", "id_rsa", ".aws",
                                                       ".ssh", ".docker", "project.toml")
              or n.endswith(("id_ed25519", ".docker/config.json"))}
    assert leaked == {".docker"}  # the directory stays; its config.json does not
    for value in (TOKEN, BUILD_ENV, CLI_ENV):
        assert value.encode() not in everything, value
    for shown in (".env", ".env.production", ".npmrc", ".netrc", ".pypirc", "id_rsa",
                  "deploy/id_ed25519", ".aws/", ".ssh/", ".docker/config.json",
                  "nested/.docker/config.json", "project.toml"):
        line = f"excluded {shown} (secrets list; add it to include to ship it)"
        assert result.stderr.count(line) == 1, (shown, result.stderr)


def test_an_explicit_include_ships_a_listed_file_and_a_blanket_one_does_not(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    _plant(hello_app)
    text = (hello_app / "project.toml").read_text()
    (hello_app / "project.toml").write_text(
        text.replace('exclude = ["README.md"]',
                     'include = ["**", ".env", ".aws/"]\nexclude = ["README.md"]'))
    out = tmp_path / "out"
    result = cli("build", hello_app, "--image", f"oci:{out}:s", "--run-image",
                 busybox_base.ref)
    assert result.returncode == 0, result.stderr
    names, _ = _image_bytes(out)
    assert {"var/task/.env", "var/task/.aws/credentials"} <= names
    assert "var/task/.npmrc" not in names and "var/task/.env.production" not in names
    assert "excluded .env " not in result.stderr and "excluded .npmrc " in result.stderr


def test_an_undecodable_name_inside_an_excluded_directory_does_not_fail_the_build(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    odd = os.fsencode(hello_app / ".aws") + b"/\xff\xfe"
    os.makedirs(odd)
    with open(odd + b"/credentials", "w") as handle:
        handle.write(TOKEN)
    run_json(cli, "build", hello_app, "--image", f"oci:{tmp_path / 'out'}:s", "--run-image",
             busybox_base.ref)
