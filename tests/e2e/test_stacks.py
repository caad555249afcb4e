"""Stacks through the CLI: listing, choice, refusals, first-use builds and the Docker engine."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lifecycle.image.reference import parse
from lifecycle.image.transports import docker_daemon, write_image
from lifecycle.image.transports.store import Store
from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner
from tests.infra.containers import fetch
from tests.infra.images import BaseImage

if TYPE_CHECKING:
    import docker


def python_app(tmp_path: Path, runtime: str) -> Path:
    """The python-hello example with a descriptor that asks for ``runtime``."""
    app = copy_example("python-hello", tmp_path / "src")
    (app / "project.toml").write_text(
        '[_]\nschema-version = "0.2"\nid = "com.example.py"\n\n'
        '[[io.hybridless.functions]]\nname = "main"\nhandler = "handler.handler"\n'
        f'runtime = "{runtime}"\n'
    )
    return app


def test_stacks_list_has_the_contract_shape(cli: CliRunner) -> None:
    rows = run_json(cli, "stacks", "list")
    by_id = {row["id"]: row for row in rows}
    node = by_id["debian-bookworm-nodejs"]
    assert {"id", "description", "platform", "runtimes", "build_image", "run_image",
            "present"} <= set(node)
    assert node["runtimes"] == ["nodejs18-24"] and node["platform"] == "linux/amd64"
    assert node["present"] == {"build": False, "run": False}
    assert node["build_image"] == by_id["debian-bookworm-python"]["build_image"]
    assert by_id["python-3.12-slim-bookworm"]["run_source"] == (
        "docker://docker.io/library/python:3.12-slim-bookworm")
    assert len(rows) == 20


def test_a_user_stack_file_is_listed_and_a_broken_one_names_its_key(
    cli: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    (config / "hybridless" / "stacks").mkdir(parents=True)
    mine = config / "hybridless" / "stacks" / "site.toml"
    mine.write_text(
        'id = "site"\ndescription = "site base"\nplatform = "linux/amd64"\n'
        'user = { name = "svc", uid = 1500, gid = 1500 }\nruntimes = ["nodejs20-22"]\n'
        '[build-image]\nreference = "oci:/srv/base:build"\n'
        '[run-image]\nreference = "oci:/srv/base:run"\n'
    )
    env = {"XDG_CONFIG_HOME": str(config)}
    rows = run_json(cli, "stacks", "list", env=env)
    assert [row["runtimes"] for row in rows if row["id"] == "site"] == [["nodejs20-22"]]
    mine.write_text(mine.read_text().replace('runtimes = ["nodejs20-22"]', "runtime = 1"))
    result = cli("stacks", "list", env=env)
    assert result.returncode == 11 and "site.toml: runtime is not a known key" in result.stderr


def test_stacks_build_and_pull_refuse_what_they_cannot_do(cli: CliRunner) -> None:
    unknown = cli("stacks", "build", "debian-sid-cobol")
    assert unknown.returncode == 30 and "debian-bookworm-nodejs" in unknown.stderr
    reference = cli("stacks", "build", "node-22-bookworm-slim")
    assert reference.returncode == 30 and "stacks pull node-22-bookworm-slim" in reference.stderr
    recipe = cli("stacks", "pull", "debian-bookworm-nodejs")
    assert recipe.returncode == 30 and "stacks build debian-bookworm-nodejs" in recipe.stderr
    # docker.io is sent to a loopback port where nothing listens: the pull goes through the
    # registry client and fails as unreachable (70), without depending on the network.
    from tests.infra.net import free_port

    settings = cli.home.parent / "registries.toml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(f'["docker.io"]\nendpoint = "127.0.0.1:{free_port()}"\n')
    registry = cli("stacks", "pull", "node-22-bookworm-slim",
                   env={"HYBRIDLESS_REGISTRIES": str(settings)})
    assert registry.returncode == 70, registry.stderr
    assert "failed to reach registry" in registry.stderr and "refused" in registry.stderr


@pytest.mark.parametrize("stack", [None, "debian-bookworm-python"])
def test_python_312_on_a_recipe_stack_names_the_stacks_that_serve_it(
    cli: CliRunner, tmp_path: Path, stack: str | None
) -> None:
    app = python_app(tmp_path, "python3.12")
    extra = ["--stack", stack] if stack else []
    result = cli("build", app, "--image", "py312", *extra)
    assert result.returncode == 30, result.stderr
    assert "lambda-python3.12" in result.stderr
    assert "python-3.12-slim-bookworm" in result.stderr
    assert not Store(cli.home).root.exists()  # refused before anything was built


def test_a_missing_stack_without_mmdebstrap_names_both_ways(cli: CliRunner) -> None:
    app = copy_example("nodejs-express", cli.home.parent / "src")
    # No mmdebstrap on this PATH; the CLI itself runs by its absolute interpreter path.
    result = cli("build", app, "--image", "express", env={"PATH": str(cli.home.parent)})
    assert result.returncode == 30, result.stderr
    assert "mmdebstrap" in result.stderr and "stacks pull" in result.stderr
    assert "stack: debian-bookworm-nodejs (the default stack" in result.stderr


def test_a_run_image_of_another_platform_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    from lifecycle.image.image import empty, with_config

    arm = with_config(empty("linux", "arm64"), user="1000:1000")
    write_image(arm, parse(f"oci:{tmp_path / 'arm'}:base"))
    app = copy_example("procfile-hello", tmp_path / "src")
    result = cli("build", app, "--image", "x", "--run-image", f"oci:{tmp_path / 'arm'}:base")
    assert result.returncode == 2 and "linux/arm64" in result.stderr, result.stderr
    asked = cli("build", app, "--image", "x", "--run-image", f"oci:{tmp_path / 'arm'}:base",
                "--platform", "linux/amd64")
    assert asked.returncode == 30 and "failed to build for linux/amd64" in asked.stderr


def shared_cli(stack_home: Path, tmp_path: Path) -> CliRunner:
    """A CLI whose store is a private copy of the session's stack store (blobs hard-linked)."""
    home = tmp_path / "home"
    source = Store(stack_home)
    target = Store(home)
    for row in source.images():
        target.write(source.read(row.reference), [row.reference])
    return CliRunner(home=home, cache=tmp_path / "cache")


def test_express_builds_on_its_default_stack_and_runs_as_the_stack_user(
    stack_home: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    cli = shared_cli(stack_home, tmp_path)
    app = copy_example("nodejs-express", tmp_path / "src")
    tag = f"hybridless-e2e/express:{os.getpid()}"
    run_json(cli, "build", app, "--image", "express", "--tag", f"docker-daemon:{tag}")
    try:
        label = json.loads(docker_client.images.get(tag).labels["io.hybridless.build"])
        assert label["stack"] == "debian-bookworm-nodejs"
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["User"] == "1000:1000" and config["WorkingDir"] == "/var/task"
        who = docker_client.containers.run(tag, entrypoint=["/usr/bin/id", "-un"],
                                           remove=True).decode().strip()
        assert who == "app"
        # Node.js comes as a layer (the run image has none): exactly the version resolved.
        node = next(layer for layer in label["layers"] if layer["name"] == "hybridless/nodejs/node")
        version = docker_client.containers.run(tag, entrypoint=["node", "--version"],
                                               remove=True).decode().strip()
        assert version == f"v{node['metadata']['node']['version']}"
        assert int(version[1:].split(".")[0]) >= 18  # the example's engines.node is >=18
        assert serves(docker_client, tag, "/health")
    finally:
        docker_client.images.remove(tag, force=True)


def test_python_builds_on_trixie_with_python_313(
    stack_home: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    cli = shared_cli(stack_home, tmp_path)
    app = python_app(tmp_path, "python3.13")
    tag = f"hybridless-e2e/py313:{os.getpid()}"
    result = cli("build", app, "--image", f"docker-daemon:{tag}")
    assert result.returncode == 0, result.stderr
    assert "stack: debian-trixie-python" in result.stderr
    try:
        version = docker_client.containers.run(
            tag, entrypoint=["python3", "-c", "import sys; print(sys.version_info[:2])"],
            remove=True).decode().strip()
        assert version == "(3, 13)"
        assert serves(docker_client, tag, "/hi?name=you")
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_second_daemon_load_sends_only_what_the_engine_lacks(
    stack_home: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    cli = shared_cli(stack_home, tmp_path)
    app = copy_example("procfile-hello", tmp_path / "src")
    # A file no other run has: this app layer is new to the engine whatever it held before.
    (app / "unique.txt").write_text(f"{uuid.uuid4()}\n")
    run_json(cli, "build", app, "--image", "hello", "--stack", "debian-bookworm-nodejs")
    image = Store(cli.home).read("hello")
    base_tag, tag = (f"hybridless-e2e/{name}:{os.getpid()}" for name in ("base", "hello"))
    said: list[str] = []
    try:
        # The engine gets the base first (sent whole unless it already had it).
        label = json.loads(image.labels["io.hybridless.build"])
        base = Store(cli.home).read(label["run-image"]["reference"])
        docker_daemon.write(base, [parse(f"docker-daemon:{base_tag}")], said.append)
        for _ in range(2):
            docker_daemon.write(image, [parse(f"docker-daemon:{tag}")], said.append)
        first, second = (int(line.split()[1]) for line in said[1:])
        whole = sum(layer.size for layer in image.layers)
        base_size = sum(layer.size for layer in base.layers)
        assert whole - base_size < first < whole, said  # the app's layers, not the base
        assert second < 100_000, said  # manifest, config and tar framing only
        back = docker_daemon.read(parse(f"docker-daemon:{tag}"), "linux/amd64")
        assert [layer.diff_id for layer in back.layers] == [
            layer.diff_id for layer in image.layers]
        assert back.labels["io.hybridless.stack"] == "debian-bookworm-nodejs"
    finally:
        for name in (tag, base_tag):
            docker_client.images.remove(name, force=True)


def serves(client: docker.DockerClient, tag: str, path: str) -> bool:
    """Whether a container of ``tag`` answers 200 on ``path`` (port 8080) within 20 s."""
    return fetch(client, tag, path)[0] == 200




def test_rebase_refuses_a_run_image_of_another_stack(
    cli: CliRunner, tmp_path: Path, busybox_base: BaseImage
) -> None:
    from lifecycle.image.image import with_config
    from lifecycle.image.transports import read_image

    base = read_image(parse(busybox_base.ref))
    stacked = with_config(base, labels={**base.labels, "io.hybridless.stack": "site-stack"})
    write_image(stacked, parse(f"oci:{tmp_path / 'bases'}:site"))
    write_image(with_config(stacked, env={"X": "1"}), parse(f"oci:{tmp_path / 'bases'}:site2"))
    app = copy_example("procfile-hello", tmp_path / "src")
    run_json(cli, "build", app, "--image", "hello", "--run-image", busybox_base.ref)
    refused = cli("rebase", "hello", "--run-image", f"oci:{tmp_path / 'bases'}:site")
    assert refused.returncode == 51 and "stack site-stack" in refused.stderr, refused.stderr
    run_json(cli, "rebase", "hello", "--run-image", f"oci:{tmp_path / 'bases'}:site", "--force")
    # Built on no stack, forced onto site-stack: the label records it, and its own stack is fine.
    doc = run_json(cli, "build", app, "--image", "hello2", "--run-image",
                   f"oci:{tmp_path / 'bases'}:site")
    assert doc["digest"]
    moved = run_json(cli, "rebase", "hello2", "--run-image", f"oci:{tmp_path / 'bases'}:site2")
    assert moved["base_digest"] != moved["previous_digest"]
