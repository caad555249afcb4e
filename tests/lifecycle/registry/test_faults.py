"""Faults between client and registry: drops, 503, 429, refused PATCH, corruption, 500, TLS."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from lifecycle.errors import RegistryError, RegistryUnreachable
from lifecycle.registry.client import RegistryClient
from lifecycle.registry.config import HostSettings, RegistrySettings
from lifecycle.registry.names import parse_name
from tests.infra.fault_proxy import Fault, FaultProxy, running_fault_proxy
from tests.infra.oci_images import FAST_RETRY, AccessLog, make_image
from tests.infra.pki import TestAuthority
from tests.infra.services import Registry


def _name(proxy: FaultProxy, prefix: str) -> str:
    return f"{proxy.host}/{prefix}-{secrets.token_hex(4)}:v1"


def test_push_survives_drops_503_and_429(
    client: RegistryClient, fault_proxy: FaultProxy, registry: Registry, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = make_image(tmp_path / "src", sizes=(200_000, 3000), seed="faulty-push")
    fault_proxy.add(
        Fault("PATCH", r"/blobs/uploads/", "drop-request"),
        Fault("PUT", r"/blobs/uploads/.*digest=", "drop-request"),
        Fault("HEAD", r"/blobs/", "status", code=503),
        Fault("PUT", r"/manifests/", "status", code=429, retry_after="1"),
    )
    caplog.set_level(logging.WARNING, logger="hybridless.registry")
    name = parse_name(_name(fault_proxy, "faulty"))
    pushed = client.push(name, image.manifest, image.open)
    assert all(fault.times == 0 for fault in fault_proxy.faults)
    assert "retrying" in caplog.text
    statuses = [s for m, p, s in fault_proxy.seen if m == "PUT" and "/manifests/" in p]
    assert statuses[:2] == [429, 201]
    # What landed is whole: the registry serves every blob and the manifest.
    direct = parse_name(f"{registry.host}/{name.repository}:v1")
    pulled = client.pull(direct, tmp_path / "check")
    assert pulled.manifest.digest == pushed.digest


def test_refused_patch_falls_back_to_one_put(
    client: RegistryClient, fault_proxy: FaultProxy, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", sizes=(300_000,), seed="no-patch")
    fault_proxy.add(Fault("PATCH", r"/blobs/uploads/", "status", code=405, times=100))
    log = AccessLog(registry)
    client.push(parse_name(_name(fault_proxy, "nopatch")), image.manifest, image.open)
    assert log.count("PATCH", "/blobs/uploads/") == 0
    assert log.count("PUT", r"/blobs/uploads/.*digest=") == 2  # layer and config, whole


def test_pull_resumes_a_broken_download_and_leaves_nothing_partial(
    client: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", sizes=(400_000,), seed="resume")
    name = parse_name(_name(fault_proxy, "resume"))
    client.push(name, image.manifest, image.open)
    layer = image.layers[0].digest
    fault_proxy.add(Fault("GET", rf"/blobs/{layer}", "drop-response", times=2))
    pulled = client.pull(name, tmp_path / "blobs")
    assert pulled.manifest.digest == image.manifest.digest
    assert (tmp_path / "blobs/sha256" / layer[7:]).read_bytes() == image.open(layer).read()
    assert not list((tmp_path / "blobs").rglob("*.partial"))


def test_blob_digest_mismatch_is_refused(
    client: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="bad-blob")
    name = parse_name(_name(fault_proxy, "badblob"))
    client.push(name, image.manifest, image.open)
    layer = image.layers[0].digest
    fault_proxy.add(Fault("GET", rf"/blobs/{layer}", "corrupt"))
    with pytest.raises(RegistryError, match=r"failed to verify blob.*refused") as caught:
        client.pull(name, tmp_path / "blobs")
    assert caught.value.exit_code == 72
    assert not (tmp_path / "blobs/sha256" / layer[7:]).exists()
    assert not list((tmp_path / "blobs").rglob("*.partial"))


def test_manifest_digest_mismatch_is_refused(
    client: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="bad-manifest")
    name = parse_name(_name(fault_proxy, "badmanifest"))
    client.push(name, image.manifest, image.open)
    fault_proxy.add(Fault("GET", r"/manifests/", "corrupt"))
    with pytest.raises(RegistryError, match=r"failed to verify manifest.*refused"):
        client.get_manifest(name.pinned(image.manifest.digest))


def test_500_is_retried_then_exit_72_quoting_the_code(
    client: RegistryClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(Fault("GET", r"/manifests/", "status", code=500, times=100))
    with pytest.raises(RegistryError, match="HTTP 500 UNAVAILABLE: injected fault") as caught:
        client.get_manifest(parse_name(_name(fault_proxy, "broken")))
    assert caught.value.exit_code == 72
    assert sum(1 for m, _, s in fault_proxy.seen if m == "GET" and s == 500) == FAST_RETRY.attempts


def test_redirect_to_another_host_drops_authorization(
    client: RegistryClient, fault_proxy: FaultProxy, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="redirect")
    name = parse_name(_name(fault_proxy, "redirect"))
    client.push(name, image.manifest, image.open)
    layer = image.layers[0].digest
    with running_fault_proxy(registry.host) as storage:  # another host: "blob storage"
        target = f"http://{storage.host}/v2/{name.repository}/blobs/{layer}"
        fault_proxy.add(Fault("GET", rf"/blobs/{layer}", "redirect", location=target))
        # As if the registry had asked for credentials: every request to it now carries them.
        client.authenticator(name.host)._basic = "Basic c2VjcmV0OnNlY3JldA=="
        client.pull(name, tmp_path / "blobs")
        assert [p for _, p, s in storage.seen] == [f"/v2/{name.repository}/blobs/{layer}"]
        assert storage.authorizations == [None]
    assert "Basic c2VjcmV0OnNlY3JldA==" in fault_proxy.authorizations


def test_unknown_host_is_exit_70(client: RegistryClient) -> None:
    with pytest.raises(RegistryUnreachable, match=r"hybridless-no-such-host\.invalid") as caught:
        client.get_manifest(parse_name("hybridless-no-such-host.invalid/x:v1"))
    assert caught.value.exit_code == 70


def test_tls_registry_needs_its_ca(
    registry_tls: Registry, test_ca: TestAuthority, tmp_path: Path, client_env: dict[str, str]
) -> None:
    image = make_image(tmp_path / "src", seed="tls")
    name = parse_name(f"{registry_tls.host}/tls:v1")
    with RegistryClient(RegistrySettings(), environ=client_env, retry=FAST_RETRY) as client:
        with pytest.raises(RegistryUnreachable, match="certificate verify failed") as caught:
            client.push(name, image.manifest, image.open)
        assert caught.value.exit_code == 70
    settings = RegistrySettings(hosts={registry_tls.host: HostSettings(ca_file=test_ca.ca_file)})
    with RegistryClient(settings, environ=client_env, retry=FAST_RETRY) as client:
        assert client.push(name, image.manifest, image.open).digest == image.manifest.digest
    trusted = RegistrySettings().with_overrides(ca_bundle=test_ca.ca_file)
    with RegistryClient(trusted, environ=client_env, retry=FAST_RETRY) as client:
        assert client.head_manifest(name) is not None
    insecure = RegistrySettings().with_overrides(insecure_hosts=[registry_tls.host])
    with RegistryClient(insecure, environ=client_env, retry=FAST_RETRY) as client:
        assert client.head_manifest(name) is not None
