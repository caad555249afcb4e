"""The docker-daemon: transport against the real engine: refusals and load errors."""

from __future__ import annotations

import gzip
import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, ExportError
from lifecycle.image.image import BytesSource, Layer, append_layers, empty
from lifecycle.image.reference import parse
from lifecycle.image.transports import docker_daemon, read_image, write_image

if TYPE_CHECKING:
    import docker


def test_chain_ids_follow_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    second = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert docker_daemon.chain_ids([a, b]) == [a, second]
    assert docker_daemon.chain_ids([]) == []


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    image = empty()
    with pytest.raises(ExportError, match="Docker engine") as caught:
        write_image(image, parse("docker-daemon:hybridless-none:1"))
    assert caught.value.exit_code == 60
    with pytest.raises(BaseImageFetchError, match="Docker engine"):
        read_image(parse("docker-daemon:hybridless-none:1"))


def test_a_missing_image_is_exit_30(docker_client: docker.DockerClient) -> None:
    with pytest.raises(BaseImageNotFound, match="has no image hybridless-absent/x:"):
        read_image(parse(f"docker-daemon:hybridless-absent/x:{os.getpid()}"))


def test_an_error_inside_the_load_stream_is_raised(docker_client: docker.DockerClient) -> None:
    # A layer whose gzip holds no tar: the engine accepts the upload and fails the load.
    garbage = b"this is not a tar archive\n" * 40
    blob = gzip.compress(garbage, mtime=0)
    layer = Layer("sha256:" + hashlib.sha256(blob).hexdigest(),
                  "sha256:" + hashlib.sha256(garbage).hexdigest(), len(blob),
                  source=BytesSource.of(blob))
    image = append_layers(empty(), [layer])
    tag = f"hybridless-tests/broken:{os.getpid()}"
    with pytest.raises(ExportError, match="failed to load"):
        write_image(image, parse(f"docker-daemon:{tag}"))
    import docker.errors

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
