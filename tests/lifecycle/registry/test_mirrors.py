"""Mirrors from registries.toml serve pulls, also when the upstream host is unreachable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lifecycle.registry.client import RegistryClient
from lifecycle.registry.config import HostSettings, Mirror, RegistrySettings
from lifecycle.registry.names import parse_name
from tests.infra.net import free_port
from tests.infra.oci_images import FAST_RETRY, AccessLog, make_image
from tests.infra.services import Registry


def test_docker_io_pulls_through_the_mirror_while_upstream_is_down(
    client: RegistryClient, registry: Registry, tmp_path: Path, client_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = make_image(tmp_path / "src", seed="mirror")
    # What the mirror holds for docker.io/library/mirrored-node, under its prefix.
    client.push(parse_name(f"{registry.host}/hub/library/mirrored-node:20"), image.manifest,
                image.open)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: a mirror that is down
    settings = RegistrySettings(hosts={
        # docker.io itself is sent to a dead endpoint: no test may reach the internet.
        "docker.io": HostSettings(
            mirrors=(Mirror(dead), Mirror(registry.host, "hub")),
            endpoint=f"127.0.0.1:{free_port()}",
        ),
    })
    caplog.set_level(logging.WARNING, logger="hybridless.registry")
    log = AccessLog(registry)
    with RegistryClient(settings, environ=client_env, retry=FAST_RETRY) as mirrored:
        pulled = mirrored.pull(parse_name("mirrored-node:20"), tmp_path / "blobs")
    assert pulled.manifest.digest == image.manifest.digest
    assert pulled.source.repo_path == f"{registry.host}/hub/library/mirrored-node"
    assert f"mirror {dead}/library/mirrored-node failed" in caplog.text
    assert log.count("GET", "/v2/hub/library/mirrored-node/blobs/") == 3
