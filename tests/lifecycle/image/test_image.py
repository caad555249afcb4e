"""The image model: stable digests, canonical JSON, and pure functions that never mutate."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError
from lifecycle.image.image import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    BytesSource,
    Image,
    Layer,
    append_layers,
    created_from_epoch,
    empty,
    from_manifest,
    platform_matches,
    replace_base,
    with_config,
)

EMPTY_DIGEST = "sha256:ec0fa4abb3b3ef287bf3c98a2e6f09a6d79a81f2b9e7c1d91a0d86de77f49a9c"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(files: dict[str, bytes]) -> Layer:
    """A real gzip layer holding ``files``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 315532801
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    compressed = gzip.compress(raw, mtime=0)
    return Layer(
        sha(compressed), sha(raw), len(compressed), OCI_LAYER_GZIP, BytesSource.of(compressed)
    )


def is_canonical(data: bytes) -> bool:
    return data == jsonutil.dumps(json.loads(data))


def test_empty_image_has_a_pinned_digest_and_canonical_documents() -> None:
    image = empty()
    assert image.digest == EMPTY_DIGEST
    assert empty().digest == image.digest
    assert is_canonical(image.config_bytes) and is_canonical(image.manifest_bytes)
    manifest = json.loads(image.manifest_bytes)
    assert manifest["mediaType"] == image.manifest_media_type == OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": image.config_digest,
        "size": len(image.config_bytes),
    }
    assert image.platform == "linux/amd64" and image.created == "1980-01-01T00:00:01Z"
    assert empty("linux", "arm64", variant="v8").platform == "linux/arm64/v8"


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert jsonutil.dumps({"b": 1, "a": ["é", {"z": None, "y": True}]}) == (
        '{"a":["é",{"y":true,"z":null}],"b":1}'.encode()
    )


def test_config_cannot_be_mutated_through_the_image() -> None:
    image = empty()
    image.config["os"] = "windows"
    image.config.setdefault("config", {})["Env"] = ["X=1"]
    assert image.digest == EMPTY_DIGEST
    with pytest.raises(AttributeError):
        image.layers = ()  # type: ignore[misc]


def test_append_layers_is_pure_and_keeps_diff_ids_and_history_aligned() -> None:
    base = empty()
    first, second = make_layer({"a": b"1"}), make_layer({"b": b"2"})
    one = append_layers(base, [first], ["add a"])
    two = append_layers(one, [second])
    assert base.digest == EMPTY_DIGEST and base.layers == ()
    assert len(one.layers) == 1 and two.layers == (first, second)
    config = two.config
    assert config["rootfs"] == {"type": "layers", "diff_ids": [first.diff_id, second.diff_id]}
    assert config["history"] == [
        {"created": "1980-01-01T00:00:01Z", "created_by": "add a"},
        {"created": "1980-01-01T00:00:01Z"},
    ]
    manifest = json.loads(two.manifest_bytes)
    assert [d["digest"] for d in manifest["layers"]] == [first.digest, second.digest]
    assert is_canonical(two.config_bytes) and is_canonical(two.manifest_bytes)
    assert two.size == len(two.manifest_bytes) + len(two.config_bytes) + first.size + second.size
    # Same inputs, same digest: nothing depends on time or order of calls.
    assert append_layers(append_layers(base, [first], ["add a"]), [second]).digest == two.digest


def test_append_layers_uses_the_image_created_time_and_repairs_missing_history() -> None:
    layer = make_layer({"x": b"x"})
    base = with_config(empty(), created="2020-02-02T00:00:00Z")
    no_history = Image(jsonutil.dumps({**base.config, "history": []}), ())
    # A base with one layer but no history gets one plain entry for it.
    one = append_layers(no_history, [layer])
    patched = Image(jsonutil.dumps({**one.config, "history": []}), one.layers)
    fixed = append_layers(patched, [make_layer({"y": b"y"})], ["top"])
    assert fixed.config["history"] == [
        {"created": "2020-02-02T00:00:00Z"},
        {"created": "2020-02-02T00:00:00Z", "created_by": "top"},
    ]
    with pytest.raises(ValueError, match="2 history entries given for 1 layers"):
        append_layers(base, [layer], ["a", "b"])


def test_with_config_sets_and_removes_fields_without_touching_the_original() -> None:
    base = empty()
    image = with_config(
        base,
        env={"A": "1", "B": "two words"},
        entrypoint=["/hybridless/launcher"],
        cmd=[],
        working_dir="/var/task",
        user="1000:1000",
        labels={"io.example": "yes"},
        exposed_ports=["8080/tcp"],
        created="2024-01-01T00:00:00Z",
    )
    runtime = image.config["config"]
    assert runtime == {
        "Env": ["A=1", "B=two words"],
        "Entrypoint": ["/hybridless/launcher"],
        "Cmd": [],
        "WorkingDir": "/var/task",
        "User": "1000:1000",
        "Labels": {"io.example": "yes"},
        "ExposedPorts": {"8080/tcp": {}},
    }
    assert image.created == "2024-01-01T00:00:00Z"
    assert image.env == {"A": "1", "B": "two words"} and image.labels == {"io.example": "yes"}
    assert base.digest == EMPTY_DIGEST
    removed = with_config(image, cmd=None, user=None, env=["C=3"])
    assert "Cmd" not in removed.config["config"] and "User" not in removed.config["config"]
    assert removed.env == {"C": "3"}
    assert image.config["config"]["Cmd"] == []


def test_with_config_rejects_unknown_fields_and_string_commands() -> None:
    with pytest.raises(TypeError, match=r"unknown fields \['entry_point'\]; valid fields: .*"):
        with_config(empty(), entry_point=["x"])
    with pytest.raises(TypeError, match="must be a list of arguments"):
        with_config(empty(), cmd="node index.js")


def test_replace_base_swaps_bottom_layers_and_keeps_the_image_config() -> None:
    old_base = with_config(
        append_layers(empty(), [make_layer({"old": b"1"})], ["old base"]),
        env=["PATH=/usr/bin", "OLD=1"],
        user="root",
    )
    app_layer = make_layer({"app": b"app"})
    app = with_config(
        append_layers(old_base, [app_layer], ["app"]),
        env=["PATH=/usr/bin", "OLD=1", "APP=1"],
        entrypoint=["/launcher"],
        user="1000",
        created="2024-05-05T00:00:00Z",
    )
    new_layers = [make_layer({"new1": b"1"}), make_layer({"new2": b"2"})]
    new_base = with_config(
        append_layers(empty("linux", "arm64", variant="v8"), new_layers, ["n1", "n2"]),
        env=["PATH=/opt/bin", "NEW=1"],
    )
    before = (app.digest, old_base.digest, new_base.digest)
    rebased = replace_base(app, 1, new_base)
    assert (app.digest, old_base.digest, new_base.digest) == before
    assert rebased.layers == (*new_base.layers, app_layer)
    config = rebased.config
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in rebased.layers]
    assert [h.get("created_by") for h in config["history"]] == ["n1", "n2", "app"]
    assert rebased.platform == "linux/arm64/v8"
    runtime = config["config"]
    assert runtime["Entrypoint"] == ["/launcher"] and runtime["User"] == "1000"
    # The image's values win; variables only the new base sets are added.
    assert runtime["Env"] == ["PATH=/usr/bin", "OLD=1", "APP=1", "NEW=1"]
    assert rebased.created == "2024-05-05T00:00:00Z"
    with pytest.raises(ValueError, match="cannot replace 3"):
        replace_base(app, 3, new_base)


def test_replace_base_with_the_same_base_is_the_identity() -> None:
    base = append_layers(empty(), [make_layer({"b": b"b"})], ["base"])
    app = append_layers(base, [make_layer({"a": b"a"})], ["app"])
    assert replace_base(app, 1, base).digest == app.digest


def test_image_refuses_layers_that_disagree_with_the_config() -> None:
    with pytest.raises(ValueError, match="do not match"):
        Image(empty().config_bytes, (make_layer({"a": b"a"}),))


def docker_documents(layer: Layer) -> tuple[bytes, bytes]:
    """A Docker schema 2 manifest and config, spaced the way Docker writes them."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        },
        indent=3,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": sha(config)},
            "layers": [
                {"mediaType": DOCKER_LAYER_GZIP, "size": layer.size, "digest": layer.digest}
            ],
        },
        indent=3,
    ).encode()
    return manifest, config


def test_from_manifest_keeps_bytes_so_unmodified_images_keep_their_digest() -> None:
    layer = make_layer({"f": b"f"})
    manifest, config = docker_documents(layer)
    assert layer.source is not None
    image = from_manifest(manifest, config, layer.source)
    assert image.digest == sha(manifest) and image.config_digest == sha(config)
    assert image.manifest_media_type == DOCKER_MANIFEST
    assert image.config_media_type == DOCKER_CONFIG
    assert image.layers[0].media_type == DOCKER_LAYER_GZIP
    with image.layers[0].open() as handle:
        assert sha(handle.read()) == layer.digest
    # Deriving re-serialises canonically under OCI media types; the blobs stay the same.
    derived = with_config(image, user="1000")
    described = json.loads(derived.manifest_bytes)
    assert derived.manifest_media_type == OCI_MANIFEST
    assert described["layers"][0] == {
        "mediaType": OCI_LAYER_GZIP,
        "digest": layer.digest,
        "size": layer.size,
    }
    assert is_canonical(derived.config_bytes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, c: (m, c + b" "), "config digest"),
        (lambda m, c: (b"{not json", c), "not JSON"),
        (
            lambda m, c: (m.replace(b'"schemaVersion": 2', b'"schemaVersion": 1'), c),
            "schemaVersion",
        ),
        (
            lambda m, c: (json.dumps({"schemaVersion": 2, "manifests": []}).encode(), c),
            "image index",
        ),
        (lambda m, c: (m.replace(b"tar.gzip", b"tar.bzip2"), c), "unsupported media type"),
    ],
)
def test_from_manifest_rejects_inconsistent_documents(change: object, message: str) -> None:
    layer = make_layer({"f": b"f"})
    manifest, config = change(*docker_documents(layer))  # type: ignore[operator]
    with pytest.raises(BaseImageFetchError, match=message):
        from_manifest(manifest, config, BytesSource({}))


def test_uncompressed_docker_layers_map_to_the_oci_tar_type() -> None:
    layer = Layer(sha(b"x"), sha(b"x"), 1, "application/vnd.docker.image.rootfs.diff.tar")
    assert layer.descriptor()["mediaType"] == OCI_LAYER


def test_platform_matching_and_created_from_epoch() -> None:
    assert platform_matches({"os": "linux", "architecture": "amd64"}, "linux/amd64")
    assert not platform_matches({"os": "linux", "architecture": "arm64"}, "linux/amd64")
    assert platform_matches({"os": "linux", "architecture": "arm64"}, "linux/arm64/v8")
    assert not platform_matches(
        {"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v7"
    )
    assert not platform_matches(None, "linux/amd64")
    assert created_from_epoch(0) == "1970-01-01T00:00:00Z"
    assert created_from_epoch(315532801) == "1980-01-01T00:00:01Z"
