"""Fixtures of the registry client's tests: a client without credentials, a fault proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.registry.client import RegistryClient
from lifecycle.registry.config import RegistrySettings
from tests.infra.fault_proxy import FaultProxy, running_fault_proxy
from tests.infra.oci_images import FAST_RETRY, docker_config
from tests.infra.services import Registry


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty docker config: no credentials leak in from the host."""
    return docker_config(tmp_path / "docker-config", {})


@pytest.fixture
def client(client_env: dict[str, str]) -> Iterator[RegistryClient]:
    """A client with default settings, fast retries and no credentials."""
    with RegistryClient(RegistrySettings(), environ=client_env, retry=FAST_RETRY,
                        chunk_size=64 << 10) as made:
        yield made


@pytest.fixture
def fault_proxy(registry: Registry) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's open registry."""
    with running_fault_proxy(registry.host) as proxy:
        yield proxy
