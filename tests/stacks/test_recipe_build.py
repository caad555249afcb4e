"""Recipe stacks built for real with mmdebstrap (heavy: the ``debian`` marker)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.image.reference import parse
from lifecycle.image.transports import write_image
from lifecycle.image.transports.store import Store
from stacks import builder, catalog

if TYPE_CHECKING:
    import docker

STACKS = catalog.load({"XDG_CONFIG_HOME": "/nonexistent"})


def test_the_same_sources_give_a_bit_identical_image(stack_home: Path, tmp_path: Path) -> None:
    _, run = builder.recipe_images(STACKS.get("debian-bookworm-nodejs"))
    assert run is not None
    first = Store(stack_home).read(run.store_name)
    epoch = int(first.labels[builder.EPOCH_LABEL])
    again = builder.build(run, epoch, Store(tmp_path / "home"))
    assert again == first.digest


def test_a_stored_recipe_is_not_built_again(stack_home: Path) -> None:
    _, run = builder.recipe_images(STACKS.get("debian-trixie-python"))
    assert run is not None
    said: list[str] = []
    outcome = builder.ensure(run, Store(stack_home), say=said.append)
    assert not outcome.built and said == []
    assert outcome.digest == Store(stack_home).read(run.store_name).digest


def test_run_images_run_as_the_stack_user_with_the_suite_python(
    stack_home: Path, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    for stack_id, probe, expected in (
        ("debian-bookworm-nodejs", "id -u; id -gn; pwd; ls /etc/ssl/certs | grep -c pem",
         None),
        ("debian-trixie-python", "python3 -c 'import sys; print(sys.version_info[:2])'",
         "(3, 13)"),
    ):
        _, run = builder.recipe_images(STACKS.get(stack_id))
        assert run is not None
        image = Store(stack_home).read(run.store_name)
        assert image.labels[builder.STACK_LABEL] == stack_id
        archive = tmp_path / f"{stack_id}.tar"
        tag = f"hybridless-tests/{stack_id}:{image.digest[7:19]}"
        write_image(image, parse(f"docker-archive:{archive}:{tag}"))
        with archive.open("rb") as data:
            docker_client.images.load(data)
        try:
            out = docker_client.containers.run(tag, ["sh", "-c", probe], remove=True).decode()
        finally:
            docker_client.images.remove(tag, force=True)
        lines = out.split()
        if expected is None:
            assert lines[:3] == ["1000", "app", "/var/task"] and int(lines[3]) > 50
        else:
            assert lines == expected.split()


def test_refresh_rebuilds_only_when_the_release_dates_moved(stack_home: Path) -> None:
    _, run = builder.recipe_images(STACKS.get("debian-trixie-python"))
    assert run is not None
    store = Store(stack_home)
    before = store.read(run.store_name)
    said: list[str] = []
    outcome = builder.ensure(run, store, refresh=True, say=said.append)
    assert outcome.epoch is not None
    if outcome.built:  # Debian published since the cached build
        assert outcome.epoch > int(before.labels[builder.EPOCH_LABEL])
    else:
        assert outcome.digest == before.digest and "up to date" in said[0]
