"""The client against a real Distribution registry: push, pull, skip, mount, interop, indexes."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from lifecycle.errors import BaseImageNotFound, RegistryError
from lifecycle.registry.client import RegistryClient
from lifecycle.registry.manifests import OCI_INDEX, Manifest, Platform
from lifecycle.registry.names import parse_name
from tests.infra.oci_images import (
    AccessLog,
    image_manifest,
    layer_bytes,
    make_image,
    write_layout,
)
from tests.infra.services import Registry


def _repo(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_push_then_pull_gives_the_same_bytes(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", sizes=(300_000, 1000))  # one chunked, one whole
    name = parse_name(f"{registry.host}/{_repo('roundtrip')}:v1")
    log = AccessLog(registry)
    pushed = client.push(name, image.manifest, image.open, tags=["extra"])
    assert log.count("PATCH", r"/blobs/uploads/") >= 5  # 300 kB in 64 kB chunks
    assert log.count("PUT", r"/manifests/(v1|extra)$") == 2
    assert pushed.digest == image.manifest.digest
    assert pushed.references == (f"{name.repo_path}@{image.manifest.digest}",)
    assert set(pushed.blobs.values()) == {"pushed"}

    pulled = client.pull(name.tagged("extra"), tmp_path / "blobs")
    assert pulled.manifest.data == image.manifest.data
    for layer in image.layers:
        fetched = tmp_path / "blobs" / "sha256" / layer.digest[7:]
        assert fetched.read_bytes() == image.open(layer.digest).read()
    assert json.loads(pulled.config)["config"]["Labels"] == {"test": "a"}
    assert not list((tmp_path / "blobs").rglob("*.partial"))


def test_repush_uploads_nothing_and_new_repo_mounts(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="mount")
    first = parse_name(f"{registry.host}/{_repo('first')}:v1")
    client.push(first, image.manifest, image.open)

    log = AccessLog(registry)
    again = client.push(first, image.manifest, image.open)
    assert set(again.blobs.values()) == {"exists"}
    assert log.count("PUT", r"/blobs/uploads/") == 0
    assert log.count("PATCH", r"/blobs/uploads/") == 0
    assert log.count("POST", r"/blobs/uploads/") == 0

    log = AccessLog(registry)
    second = parse_name(f"{registry.host}/{_repo('second')}:v1")
    moved = client.push(second, image.manifest, image.open, mount_from=[first.repository])
    assert set(moved.blobs.values()) == {"mounted"}
    assert log.count("POST", rf"mount=sha256.*from={first.repository}") == 3
    assert log.count("PUT", r"/blobs/uploads/") == 0


def test_one_changed_layer_uploads_that_layer_and_the_config(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    base = layer_bytes({"base.txt": b"base"})
    first, _ = image_manifest(layout, [base, layer_bytes({"app.txt": b"one"})])
    name = parse_name(f"{registry.host}/{_repo('change')}:v1")
    client.push(name, first, lambda d: (layout / "blobs/sha256" / d[7:]).open("rb"))
    second, _ = image_manifest(layout, [base, layer_bytes({"app.txt": b"two"})])

    log = AccessLog(registry)
    client.push(name, second, lambda d: (layout / "blobs/sha256" / d[7:]).open("rb"))
    assert log.count("PUT", r"/blobs/uploads/.*digest=") == 2  # the new layer and config
    assert log.count("PUT", r"/manifests/v1") == 1


def test_pushed_image_is_read_by_skopeo_with_our_digest(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="skopeo-out")
    name = parse_name(f"{registry.host}/{_repo('to-skopeo')}:v1")
    pushed = client.push(name, image.manifest, image.open)
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{name}"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout)["Digest"] == pushed.digest
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{name}",
         f"oci:{tmp_path / 'copy'}:v1"], capture_output=True, text=True, check=True,
    )
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed.digest


def test_image_pushed_by_skopeo_is_pulled(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="skopeo-in")
    name = parse_name(f"{registry.host}/{_repo('from-skopeo')}:v1")
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", image.ref, f"docker://{name}"],
        capture_output=True, text=True, check=True,
    )
    pulled = client.pull(name, tmp_path / "blobs")
    assert pulled.manifest.digest == image.manifest.digest
    assert [layer.digest for layer in pulled.manifest.layers()] == [
        layer.digest for layer in image.layers]


def test_index_resolves_to_the_asked_platform_or_names_what_it_has(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    layout = tmp_path / "multi"
    amd, _ = image_manifest(layout, [layer_bytes({"a": b"amd"})], arch="amd64")
    arm, _ = image_manifest(layout, [layer_bytes({"a": b"arm"})], arch="arm64")
    entries = [
        {"mediaType": m.media_type, "digest": m.digest, "size": len(m.data),
         "platform": {"os": "linux", "architecture": arch}}
        for m, arch in ((amd, "amd64"), (arm, "arm64"))
    ]
    index = Manifest.of(json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode())
    write_layout(layout, "v1", amd)
    name = parse_name(f"{registry.host}/{_repo('multi')}:v1")
    client.push(name, index, lambda d: (layout / "blobs/sha256" / d[7:]).open("rb"))

    _, got_index, got = client.resolve(name, Platform.parse("linux/arm64"))
    assert got_index is not None and got_index.digest == index.digest
    assert got.digest == arm.digest
    _, _, default = client.resolve(name, Platform.parse("linux/amd64"))
    assert default.digest == amd.digest
    with pytest.raises(BaseImageNotFound, match=r"no linux/s390x image \(it has linux/amd64, "
                                                r"linux/arm64\)") as caught:
        client.resolve(name, Platform.parse("linux/s390x"))
    assert caught.value.exit_code == 30


def test_missing_tag_quotes_the_registry_error(
    client: RegistryClient, registry: Registry
) -> None:
    name = parse_name(f"{registry.host}/{_repo('absent')}:nope")
    assert client.head_manifest(name) is None
    with pytest.raises(RegistryError, match=r"HTTP 404 (MANIFEST_UNKNOWN|NAME_UNKNOWN)") as caught:
        client.get_manifest(name)
    assert caught.value.exit_code == 72


def test_head_manifest_gives_the_pushed_digest(
    client: RegistryClient, registry: Registry, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", seed="head")
    name = parse_name(f"{registry.host}/{_repo('head')}:v1")
    client.push(name, image.manifest, image.open)
    log = AccessLog(registry)
    found = client.head_manifest(name)
    assert found is not None and found.digest == image.manifest.digest
    assert [m for m, _, _ in log.requests()] == ["HEAD"]
