"""Session fixtures for every test: real services and base images, each made once per run.

When a service is missing, its tests are skipped on a developer's machine (the reason says to
run ``.ci/setup``) and fail in CI (``CI`` set), where ``.ci/setup`` must have provided it.

The Debian base (``debian_base``, ``debian_in_docker``) costs a minute or two to build the first
time. Tests that use it get the ``debian`` marker and run only in CI or when selected with
``-m debian`` (or any ``-m`` expression naming it); elsewhere they are skipped. The built layout
is cached under ``~/.cache/hybridless-tests/``, so later runs reuse it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.infra.cli import CliRunner
from tests.infra.images import (
    BaseImage,
    DockerImage,
    build_busybox_base,
    build_debian_base,
    cache_root,
    load_into_docker,
    remove_other_tags,
)
from tests.infra.moto_process import MotoProcess, moto_process
from tests.infra.pki import TestAuthority, new_authority
from tests.infra.services import (
    Registry,
    RegistryOptions,
    ServiceUnavailable,
    connect_docker,
    in_ci,
    new_credentials,
    running_moto,
    running_registry,
    unavailable,
)
from tests.infra.stacks import SHARED_STACKS, build_stack_home
from tests.infra.token_server import TokenServer, running_token_server, token_auth_config

if TYPE_CHECKING:
    import docker

T = TypeVar("T")

DEBIAN_FIXTURES = frozenset({"debian_base", "debian_in_docker", "stack_home"})


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers these fixtures apply."""
    config.addinivalue_line(
        "markers", "debian: uses the Debian base image (heavy; runs in CI or with -m debian)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the Debian base, so ``-m`` can select or exclude them."""
    # tryfirst: the marker must be there before pytest's own -m filtering looks.
    for item in items:
        if DEBIAN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.debian)


def _enter(what: str, manager: AbstractContextManager[T], stack: ExitStack) -> T:
    """Enter a service's context, or apply the missing-service policy."""
    try:
        return stack.enter_context(manager)
    except ServiceUnavailable as exc:
        unavailable(what, str(exc))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client to the running Docker engine."""
    try:
        client = connect_docker()
    except ServiceUnavailable as exc:
        unavailable("the Docker engine", str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP Distribution registry on 127.0.0.1, with no auth."""
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("registry")
        yield _enter("the local registry", running_registry(workdir), stack)


@pytest.fixture(scope="session")
def registry_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that requires basic auth; its ``username`` and ``password`` get in."""
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("registry-auth")
        credentials = new_credentials()
        yield _enter(
            "the authenticated registry",
            running_registry(workdir, credentials=credentials),
            stack,
        )


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    """A throwaway certificate authority (``ca_file`` is its PEM certificate)."""
    try:
        return new_authority(tmp_path_factory.mktemp("test-ca"))
    except ServiceUnavailable as exc:
        unavailable("a test certificate authority", str(exc))


@pytest.fixture(scope="session")
def token_server(
    test_ca: TestAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenServer]:
    """A token server signing RS256 JWTs (``x5c`` from ``test_ca``) for one user."""
    with ExitStack() as stack:
        users = dict([new_credentials()])
        yield _enter(
            "the token server",
            running_token_server(test_ca, tmp_path_factory.mktemp("token-server"), users),
            stack,
        )


@pytest.fixture(scope="session")
def registry_token(
    token_server: TokenServer, test_ca: TestAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry behind Bearer token auth served by ``token_server``."""
    with ExitStack() as stack:
        options = RegistryOptions(auth=token_auth_config(token_server, test_ca))
        workdir = tmp_path_factory.mktemp("registry-token")
        user, password = next(iter(token_server.users.items()))
        registry = _enter("the token-auth registry", running_registry(workdir, options=options),
                          stack)
        yield Registry(registry.host, registry.url, registry.root, registry.log, user, password)


@pytest.fixture(scope="session")
def registry_tls(
    test_ca: TestAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry speaking TLS with a certificate from ``test_ca`` (for 127.0.0.1)."""
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("registry-tls")
        issued = test_ca.issue(workdir / "tls", "registry", hosts=("127.0.0.1", "localhost"))
        options = RegistryOptions(tls=(issued.cert, issued.key))
        yield _enter("the TLS registry", running_registry(workdir, options=options), stack)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto server (AWS control planes such as ECR) on 127.0.0.1."""
    with ExitStack() as stack:
        yield _enter("moto's server", running_moto(), stack)


MOTO_ACCOUNT = "123456789012"  # the account moto answers for


@pytest.fixture(scope="session")
def moto_recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    """A moto server process with its request recorder on: the ECR control plane to count."""
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("moto-recorder")
        yield _enter("moto's server (recording)", moto_process(workdir), stack)


@pytest.fixture(scope="session")
def ecr_data_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """ECR's data plane stand-in: a registry taking user ``AWS`` and moto's token as password.

    moto's ``GetAuthorizationToken`` answers base64 of ``AWS:<account>-auth-token``.
    """
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("ecr-data")
        credentials = ("AWS", f"{MOTO_ACCOUNT}-auth-token")
        yield _enter("the ECR data registry",
                     running_registry(workdir, credentials=credentials), stack)


@pytest.fixture(scope="session")
def busybox_base(tmp_path_factory: pytest.TempPathFactory) -> BaseImage:
    """A tiny busybox image in an OCI layout, user 1000:1000, made by umoci."""
    try:
        return build_busybox_base(tmp_path_factory.mktemp("busybox-base"))
    except ServiceUnavailable as exc:
        unavailable("the busybox base image", str(exc))


@pytest.fixture(scope="session")
def busybox_in_docker(
    docker_client: docker.DockerClient,
    busybox_base: BaseImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DockerImage]:
    """The busybox base loaded into the Docker engine."""
    yield from _loaded(docker_client, busybox_base, "hybridless-tests/busybox", tmp_path_factory)


def _heavy_allowed(config: pytest.Config) -> bool:
    """Tell whether this run may build the Debian base."""
    return in_ci() or "debian" in (config.option.markexpr or "")


@pytest.fixture(scope="session")
def debian_base(request: pytest.FixtureRequest) -> BaseImage:
    """A Debian bookworm image with Node.js, npm and Python 3 in an OCI layout, cached on disk."""
    if not _heavy_allowed(request.config):
        pytest.skip("builds a Debian base (1-2 min the first time): runs in CI or with -m debian")
    try:
        return build_debian_base(cache_root())
    except ServiceUnavailable as exc:
        unavailable("the Debian base image", str(exc))


@pytest.fixture(scope="session")
def debian_in_docker(
    docker_client: docker.DockerClient,
    debian_base: BaseImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DockerImage]:
    """The Debian base loaded into the Docker engine."""
    # Kept between runs: reloading 400 MB costs about 20 s, and the cached layout's digest
    # names it, so a stale one is never reused.
    yield from _loaded(
        docker_client, debian_base, "hybridless-tests/debian", tmp_path_factory, keep=True
    )


def _loaded(
    client: docker.DockerClient,
    image: BaseImage,
    repository: str,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    keep: bool = False,
) -> Iterator[DockerImage]:
    """Load ``image`` into the engine for the session.

    Without ``keep``, the image is removed after the session if this run loaded it. With it,
    the image stays for the next run (its name is its digest) and older ones are removed.
    """
    try:
        loaded, fresh = load_into_docker(
            client, image, repository, tmp_path_factory.mktemp("docker-load")
        )
    except ServiceUnavailable as exc:
        unavailable(f"loading {repository} into Docker", str(exc))
    if keep and fresh:
        remove_other_tags(client, repository, loaded.name)
    yield loaded
    if fresh and not keep:
        import docker.errors

        try:
            client.images.remove(loaded.name, force=True)
        except docker.errors.APIError:
            pass  # Still used by a container a test left behind; the engine keeps it.


@pytest.fixture(scope="session")
def stack_home(request: pytest.FixtureRequest) -> Path:
    """A ``HYBRIDLESS_HOME`` whose store holds the run and build images of the recipe stacks.

    Built once (about a minute per image) and cached under ``~/.cache/hybridless-tests``; a
    changed recipe gets a new store name, and the stale ones are dropped here.
    """
    if not _heavy_allowed(request.config):
        pytest.skip("builds Debian stacks (1 min each the first time): runs in CI or -m debian")
    try:
        return build_stack_home(cache_root() / "stacks-home", SHARED_STACKS)
    except ServiceUnavailable as exc:
        unavailable("the recipe stacks", str(exc))


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Runs ``python -m lifecycle ARGS`` with HYBRIDLESS_HOME and XDG_CACHE_HOME in tmp_path."""
    return CliRunner(home=tmp_path / "hybridless-home", cache=tmp_path / "xdg-cache")
