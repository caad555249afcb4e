"""Reference stacks pulled through the registry client: mirrors, the store, builds, refusals.

Nothing here reaches the internet: ``docker.io`` and ``public.ecr.aws`` are given mirrors on
the loopback registry and, for the hostile cases, an ``endpoint`` where nothing listens.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.image.image import empty, with_config
from lifecycle.image.reference import parse
from lifecycle.image.transports import read_image, write_image
from tests.e2e.conftest import copy_example, run_json, tool
from tests.infra.cli import CliRunner
from tests.infra.containers import fetch
from tests.infra.fault_proxy import Fault, running_fault_proxy
from tests.infra.images import BaseImage
from tests.infra.net import free_port
from tests.infra.oci_images import AccessLog, docker_config
from tests.infra.services import Registry

if TYPE_CHECKING:
    import docker


def _mirror_env(tmp_path: Path, hosts: dict[str, list[str]], *,
                dead_upstream: bool = True) -> dict[str, str]:
    """A ``registries.toml`` giving each host its ``mirrors``; the environment naming it."""
    lines = []
    for host, mirrors in hosts.items():
        lines.append(f'["{host}"]')
        lines.append("mirrors = [" + ", ".join(f'"{m}"' for m in mirrors) + "]")
        if dead_upstream:
            # The upstream itself goes where nothing listens: a failure is fast and local.
            lines.append(f'endpoint = "127.0.0.1:{free_port()}"')
    path = tmp_path / f"registries-{secrets.token_hex(3)}.toml"
    path.write_text("\n".join(lines) + "\n")
    return {"HYBRIDLESS_REGISTRIES": str(path),
            **docker_config(tmp_path / "docker-config", {})}


def _push(image_ref: str, dest: str) -> None:
    """Copy with skopeo, an independent client, so our pull is checked against its push."""
    tool("skopeo", "copy", "--dest-tls-verify=false", image_ref, f"docker://{dest}")


def _present(cli: CliRunner, stack_id: str, env: dict[str, str]) -> dict[str, bool]:
    rows = run_json(cli, "stacks", "list", env=env)
    return next(row["present"] for row in rows if row["id"] == stack_id)


def test_stacks_pull_goes_through_mirrors_in_order_and_is_listed_present(
    cli: CliRunner, registry: Registry, busybox_base: BaseImage, tmp_path: Path
) -> None:
    prefix = f"hub-{secrets.token_hex(3)}"
    _push(busybox_base.ref, f"{registry.host}/{prefix}/lambda/nodejs:22")
    dead = f"127.0.0.1:{free_port()}"
    with running_fault_proxy(registry.host) as proxy:
        # The proxied mirror flips a byte of every manifest it serves: its digest is wrong.
        proxy.add(Fault("GET", "/manifests/", "corrupt", times=100))
        env = _mirror_env(tmp_path, {"public.ecr.aws": [
            dead, f"{proxy.host}/{prefix}", f"{registry.host}/{prefix}"]})
        assert _present(cli, "lambda-nodejs22", env) == {"build": False, "run": False}
        log = AccessLog(registry)
        result = cli("stacks", "pull", "lambda-nodejs22", "--json", env=env)
        assert result.returncode == 0, result.stderr
        # Tried in order: the dead mirror, the lying one, then the good one.
        assert f"mirror {dead}/lambda/nodejs failed" in result.stderr
        assert f"mirror {proxy.host}/{prefix}/lambda/nodejs failed" in result.stderr
        assert "failed to verify manifest" in result.stderr
        assert any(method == "GET" and "/manifests/" in path for method, path, _ in proxy.seen)
    doc = json.loads(result.stdout)
    assert doc["id"] == "lambda-nodejs22" and len(doc["pulled"]) == 2
    # One image for both roles: its layers crossed the wire once.
    assert log.count("GET", f"/v2/{prefix}/lambda/nodejs/blobs/") == 1 + len(
        read_image(parse(busybox_base.ref)).layers)
    assert _present(cli, "lambda-nodejs22", env) == {"build": True, "run": True}
    assert _present(cli, "lambda-nodejs20", env) == {"build": False, "run": False}
    stored = run_json(cli, "images", env=env)
    digests = {row["digest"] for row in stored if "lambda-nodejs22" in row["reference"]}
    assert digests == {busybox_base.digest}


def test_reference_stack_refusals_have_their_exit_codes(
    cli: CliRunner, registry: Registry, tmp_path: Path
) -> None:
    prefix = f"hub-{secrets.token_hex(3)}"
    arm = with_config(empty("linux", "arm64"), user="1000:1000")
    write_image(arm, parse(f"oci:{tmp_path / 'arm'}:base"))
    _push(f"oci:{tmp_path / 'arm'}:base", f"{registry.host}/{prefix}/library/node:20-bookworm-slim")
    env = _mirror_env(tmp_path, {"docker.io": [f"{registry.host}/{prefix}"]})

    # Only an arm64 image where the stack is linux/amd64: exit 30, nothing stored.
    wrong = cli("stacks", "pull", "node-20-bookworm-slim", env=env)
    assert wrong.returncode == 30, wrong.stderr
    assert "is a linux/arm64 image, and the stack is linux/amd64" in wrong.stderr
    assert _present(cli, "node-20-bookworm-slim", env) == {"build": False, "run": False}

    # The mirror lacks the tag and docker.io cannot be reached: exit 70, no traceback.
    absent = cli("stacks", "pull", "node-24-bookworm-slim", env=env)
    assert absent.returncode == 70, absent.stderr
    assert "failed to reach registry" in absent.stderr and "Traceback" not in absent.stderr

    # Only a lying mirror: its warning says why, and the upstream's failure is the exit code.
    # (An amd64 image the store has never seen: an honest mirror would have served it.)
    amd = with_config(empty("linux", "amd64"), user="1000:1000", labels={"x": prefix})
    write_image(amd, parse(f"oci:{tmp_path / 'amd'}:base"))
    _push(f"oci:{tmp_path / 'amd'}:base", f"{registry.host}/{prefix}/library/node:22-bookworm-slim")
    with running_fault_proxy(registry.host) as proxy:
        proxy.add(Fault("GET", "/manifests/", "corrupt", times=100))
        lying = _mirror_env(tmp_path, {"docker.io": [f"{proxy.host}/{prefix}"]})
        refused = cli("stacks", "pull", "node-22-bookworm-slim", env=lying)
    assert refused.returncode == 70, refused.stderr
    assert "failed to verify manifest" in refused.stderr
    assert _present(cli, "node-22-bookworm-slim", lying) == {"build": False, "run": False}
    honest = cli("stacks", "pull", "node-22-bookworm-slim", env=env)
    assert honest.returncode == 0, honest.stderr

    # A user stack naming a tag the registry lacks: the registry's answer, exit 72.
    config = tmp_path / "config"
    (config / "hybridless" / "stacks").mkdir(parents=True)
    (config / "hybridless" / "stacks" / "site.toml").write_text(
        'id = "site"\ndescription = "site base"\nplatform = "linux/amd64"\n'
        'user = { name = "svc", uid = 1500, gid = 1500 }\nruntimes = ["nodejs22"]\n'
        f'[build-image]\nreference = "docker://{registry.host}/{prefix}/absent:1"\n'
        f'[run-image]\nreference = "docker://{registry.host}/{prefix}/absent:1"\n')
    missing = cli("stacks", "pull", "site", env={**env, "XDG_CONFIG_HOME": str(config)})
    assert missing.returncode == 72 and "MANIFEST_UNKNOWN" in missing.stderr, missing.stderr

    # The registry options reach stack pulls: an unreadable --ca-bundle is refused as usage.
    bundle = cli("stacks", "pull", "node-20-bookworm-slim", "--ca-bundle",
                 str(tmp_path / "no-such.pem"), env=env)
    assert bundle.returncode != 0 and "no-such.pem" in bundle.stderr, bundle.stderr


def node_like(debian_base: BaseImage, tmp_path: Path) -> str:
    """The Debian test base (Debian's Node.js 18) configured as the node image is: root user,
    ``NODE_VERSION`` in the environment, ``node`` as its command; an ``oci:`` reference."""
    base = read_image(parse(debian_base.ref))
    version = "18"  # bookworm's nodejs is 18.x, which is why the node-18 stack is the honest one
    image = with_config(base, user=None, cmd=["node"],
                        env={**base.env, "NODE_VERSION": version})
    ref = f"oci:{tmp_path / 'node-like'}:18-bookworm-slim"
    write_image(image, parse(ref))
    return ref


def test_a_build_on_a_node_reference_stack_pulls_through_the_mirror_and_adds_no_node(
    cli: CliRunner, registry: Registry, debian_base: BaseImage, tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    prefix = f"hub-{secrets.token_hex(3)}"
    _push(node_like(debian_base, tmp_path),
          f"{registry.host}/{prefix}/library/node:18-bookworm-slim")
    dead = f"127.0.0.1:{free_port()}"
    env = _mirror_env(tmp_path, {"docker.io": [dead, f"{registry.host}/{prefix}"]})
    app = copy_example("nodejs-handler", tmp_path / "src")  # engines.node ">=18"
    tag = f"hybridless-e2e/node-ref:{os.getpid()}"
    # No `stacks pull` first: the build pulls the missing stack itself.
    result = cli("build", app, "--image", "on-node", "--tag", f"docker-daemon:{tag}",
                 "--stack", "node-18-bookworm-slim", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "stack: node-18-bookworm-slim (--stack node-18-bookworm-slim)" in result.stderr
    assert "is not in the local store: pulling docker://docker.io/library/node" in result.stderr
    assert f"mirror {dead}/library/node failed" in result.stderr
    doc = json.loads(result.stdout)
    names = [layer["name"] for layer in doc["layers"]]
    assert "hybridless/nodejs/node" not in names, names  # the stack provides Node.js
    assert names.count("base") == len(read_image(parse(debian_base.ref)).layers)
    assert _present(cli, "node-18-bookworm-slim", env)["run"] is True
    try:
        image = docker_client.images.get(tag)
        label = json.loads(image.labels["io.hybridless.build"])
        assert label["stack"] == "node-18-bookworm-slim"
        # The base ran as root; the stack's user is what the built image runs as.
        assert image.attrs["Config"]["User"] == "1000:1000"
        who = docker_client.containers.run(tag, entrypoint=["/usr/bin/id", "-u"],
                                           remove=True).decode().strip()
        assert who == "1000"
        node = docker_client.containers.run(tag, entrypoint=["node", "--version"],
                                            remove=True).decode().strip()
        assert node.startswith("v18."), node  # the image's own Node.js, not a layer's
        assert "hello, ref" in answer(docker_client, tag, "/?name=ref")
    finally:
        docker_client.images.remove(tag, force=True)


def answer(client: docker.DockerClient, tag: str, path: str) -> str:
    """The body a container of ``tag`` answers 200 with on ``path`` (port 8080), within 20 s."""
    status, body = fetch(client, tag, path)
    assert status == 200, (status, body)
    return body
