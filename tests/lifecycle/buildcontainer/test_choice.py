"""--executor auto|docker|local: the pick, the printed reason, and the refusals."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.buildcontainer.choice import BUILD_IMAGE_ENV, build_image_of, choose
from lifecycle.errors import BaseImageNotFound, BuildError, UsageError
from tests.infra.images import DockerImage

if TYPE_CHECKING:
    import docker

LOG = logging.getLogger("test.choice")


def _dead_engine(timeout: int = 0) -> Any:
    import docker

    # Port 9 (discard): nothing listens, so the ping fails at once.
    return docker.DockerClient(base_url="tcp://127.0.0.1:9", timeout=max(timeout, 1))


def test_local_is_local(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, client = choose("local", "any-image", "the stack's build image", LOG)
    assert (choice.name, client, choice.cache_key) == ("local", None, "local")
    assert "executor: local (--executor local)" in caplog.text


def test_auto_without_a_build_image_is_local_and_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    image, source = build_image_of(None, {})
    choice, _ = choose("auto", image, source, LOG)
    assert choice.name == "local"
    assert "auto: no stack build image" in caplog.text


def test_auto_with_a_dead_engine_is_local_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, _ = choose("auto", "img", "x", LOG, connect=_dead_engine)
    assert choice.name == "local" and "the Docker engine does not answer" in caplog.text


def test_docker_with_a_dead_engine_is_refused() -> None:
    with pytest.raises(BuildError, match="does not answer") as caught:
        choose("docker", "img", "x", LOG, connect=_dead_engine)
    assert caught.value.exit_code == 51


def test_docker_without_a_build_image_is_exit_30() -> None:
    with pytest.raises(BaseImageNotFound, match=BUILD_IMAGE_ENV) as caught:
        choose("docker", None, "no stack build image", LOG)
    assert caught.value.exit_code == 30


def test_unknown_executor_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        choose("podman", None, "", LOG)


def test_the_variable_beats_the_stack() -> None:
    assert build_image_of("stack-build:1", {BUILD_IMAGE_ENV: " mine:2 "}) == (
        "mine:2", f"${BUILD_IMAGE_ENV}")
    assert build_image_of("stack-build:1", {}) == ("stack-build:1", "the stack's build image")


def test_auto_with_an_engine_and_an_image_is_docker_keyed_by_the_image_id(
        docker_client: docker.DockerClient, busybox_in_docker: DockerImage,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, client = choose("auto", busybox_in_docker.name, "the stack's build image", LOG)
    assert choice.name == "docker" and client is not None
    assert choice.cache_key == f"docker {busybox_in_docker.id}"
    assert "auto: the Docker engine answers" in caplog.text


def test_a_build_image_missing_from_the_engine_is_exit_30(
        docker_client: docker.DockerClient) -> None:
    with pytest.raises(BaseImageNotFound, match="no-such-build-image") as caught:
        choose("docker", "hybridless-tests/no-such-build-image:0", "x", LOG)
    assert caught.value.exit_code == 30
