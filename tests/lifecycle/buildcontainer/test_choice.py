"""--executor auto|docker|local: the pick, the printed reason, and the refusals."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.buildcontainer.choice import BUILD_IMAGE_ENV, BuildImage, build_image_of, choose
from lifecycle.errors import BaseImageNotFound, BuildError, UsageError
from tests.infra.images import BaseImage, DockerImage

if TYPE_CHECKING:
    import docker

LOG = logging.getLogger("test.choice")


def _dead_engine(timeout: int = 0) -> Any:
    import docker

    # Port 9 (discard): nothing listens, so the ping fails at once.
    return docker.DockerClient(base_url="tcp://127.0.0.1:9", timeout=max(timeout, 1))


def test_local_is_local(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, client = choose("local", BuildImage("any-image", "stack x"), LOG)
    assert (choice.name, client, choice.cache_key) == ("local", None, "local")
    assert "executor: local (--executor local)" in caplog.text


def test_auto_without_a_build_image_is_local_and_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, _ = choose("auto", build_image_of(None, {}), LOG)
    assert choice.name == "local"
    assert "auto: no build image" in caplog.text


def test_auto_with_a_dead_engine_is_local_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, _ = choose("auto", BuildImage("img", "x"), LOG, connect=_dead_engine)
    assert choice.name == "local" and "the Docker engine does not answer" in caplog.text


def test_docker_with_a_dead_engine_is_refused() -> None:
    with pytest.raises(BuildError, match="does not answer") as caught:
        choose("docker", BuildImage("img", "x"), LOG, connect=_dead_engine)
    assert caught.value.exit_code == 51


def test_docker_without_a_build_image_is_exit_30() -> None:
    with pytest.raises(BaseImageNotFound, match=BUILD_IMAGE_ENV) as caught:
        choose("docker", None, LOG)
    assert caught.value.exit_code == 30


def test_unknown_executor_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        choose("podman", None, LOG)


def test_the_variable_beats_the_stack() -> None:
    stack = BuildImage("stack-build:1", "stack s")
    assert build_image_of(stack, {BUILD_IMAGE_ENV: " mine:2 "}) == BuildImage(
        "mine:2", f"${BUILD_IMAGE_ENV}")
    assert build_image_of(stack, {}) is stack


def test_auto_with_an_engine_and_an_image_is_docker_keyed_by_the_image_id(
        docker_client: docker.DockerClient, busybox_in_docker: DockerImage,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice, client = choose("auto", BuildImage(busybox_in_docker.name, "stack s"), LOG)
    assert choice.name == "docker" and client is not None
    assert choice.cache_key == f"docker {busybox_in_docker.id}"
    assert "auto: the Docker engine answers" in caplog.text


def test_a_build_image_missing_from_the_engine_is_exit_30(
        docker_client: docker.DockerClient) -> None:
    with pytest.raises(BaseImageNotFound, match="no-such-build-image") as caught:
        choose("docker", BuildImage("hybridless-tests/no-such-build-image:0", "x"), LOG)
    assert caught.value.exit_code == 30


def test_a_missing_stack_build_image_is_loaded_from_what_provide_gives(
        docker_client: docker.DockerClient, busybox_base: BaseImage,
        caplog: pytest.LogCaptureFixture) -> None:
    from lifecycle.image import reference, transports

    name = f"hybridless-tests/provided-build:{uuid.uuid4().hex[:12]}"
    calls: list[str] = []

    def provide() -> object:
        calls.append("provide")
        return transports.read_image(reference.parse(busybox_base.ref))

    caplog.set_level(logging.INFO)
    try:
        choice, _ = choose("docker", BuildImage(name, "stack s", provide), LOG)
        again, _ = choose("docker", BuildImage(name, "stack s", provide), LOG)
        assert calls == ["provide"]  # the second build finds it in the engine
        assert choice.image_id == again.image_id == docker_client.images.get(name).id
        assert f"loading build image {name} into the Docker engine" in caplog.text
    finally:
        docker_client.images.remove(name, force=True)
