"""Sources and sinks: write to every transport, read back, and let skopeo and umoci judge."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, ExportError
from lifecycle.image.blobs import BlobDir, hex_of
from lifecycle.image.image import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    BytesSource,
    DirectorySource,
    Image,
    Layer,
    append_layers,
    empty,
    with_config,
)
from lifecycle.image.reference import parse
from lifecycle.image.transports import read_image, write_image
from lifecycle.image.transports.oci_layout import REF_NAME, Layout, index_entry

FILES_A = {"etc/greeting": b"hello\n", "bin/tool": b"#!/bin/sh\necho tool\n"}
FILES_B = {"var/task/app.js": b"exports.handler = async () => 'ok';\n"}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        directories = sorted({str(Path(n).parent) for n in files} - {"."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 315532801
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 315532801
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def memory_layer(files: dict[str, bytes]) -> Layer:
    raw = layer_tar(files)
    packed = gzip.compress(raw, mtime=0)
    return Layer(sha(packed), sha(raw), len(packed), OCI_LAYER_GZIP, BytesSource.of(packed))


def disk_layer(files: dict[str, bytes], directory: Path) -> Layer:
    """A layer whose blob is a file named by its hex, as the layer writer leaves it."""
    raw = layer_tar(files)
    packed = gzip.compress(raw, mtime=0)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hex_of(sha(packed))).write_bytes(packed)
    return Layer(sha(packed), sha(raw), len(packed), OCI_LAYER_GZIP, DirectorySource(directory))


@pytest.fixture
def image(tmp_path: Path) -> Image:
    layers = [memory_layer(FILES_A), disk_layer(FILES_B, tmp_path / "layers")]
    built = append_layers(empty(), layers, ["base files", "app"])
    return with_config(built, env={"A": "1"}, entrypoint=["/bin/tool"], working_dir="/var/task")


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{argv} failed: {done.stderr}"
    return done.stdout


def skopeo_inspect(ref: str, *extra: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(run("skopeo", "inspect", *extra, ref))
    return document


def unpacked_files(layout: Path, tag: str, bundle: Path) -> dict[str, bytes]:
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle))
    rootfs = bundle / "rootfs"
    return {str(p.relative_to(rootfs)): p.read_bytes() for p in rootfs.rglob("*") if p.is_file()}


def test_oci_layout_round_trip_checked_by_skopeo_and_umoci(image: Image, tmp_path: Path) -> None:
    out = tmp_path / "out"
    lines: list[str] = []
    digest = write_image(
        image, parse(f"oci:{out}:v1"), tags=[parse(f"oci:{out}:v2")], progress=lines.append
    )
    assert digest == image.digest
    assert read_image(parse(f"oci:{out}:v1")).digest == digest
    assert read_image(parse(f"oci:{out}:v2")).digest == digest
    assert lines and all("sha256:" in line for line in lines)

    inspected = skopeo_inspect(f"oci:{out}:v1")
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert inspected["Env"] == ["A=1"]
    assert unpacked_files(out, "v2", tmp_path / "bundle") == {**FILES_A, **FILES_B}

    # The disk layer was hard-linked, not copied.
    disk = image.layers[1]
    assert disk.local_path() is not None
    assert Layout(out).blobs.path(disk.digest).stat().st_ino == disk.local_path().stat().st_ino  # type: ignore[union-attr]


def test_rewriting_a_tag_replaces_its_entry_and_keeps_others(image: Image, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_image(image, parse(f"oci:{out}:keep"))
    write_image(empty(), parse(f"oci:{out}:moving"))
    write_image(image, parse(f"oci:{out}:moving"))
    index = json.loads((out / "index.json").read_bytes())
    names = [(entry["annotations"][REF_NAME], entry["digest"]) for entry in index["manifests"]]
    assert names == [("keep", image.digest), ("moving", image.digest)]
    assert json.loads((out / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert not list(out.glob(".tmp-*")) and not list((out / "blobs" / "sha256").glob(".tmp-*"))


def test_oci_archive_round_trip_is_deterministic_and_skopeo_reads_it(
    image: Image, tmp_path: Path
) -> None:
    first, second = tmp_path / "one" / "img.tar", tmp_path / "two.tar"
    assert write_image(image, parse(f"oci-archive:{first}:v1")) == image.digest
    write_image(image, parse(f"oci-archive:{second}:v1"))
    assert first.read_bytes() == second.read_bytes()
    assert read_image(parse(f"oci-archive:{first}:v1")).digest == image.digest
    assert read_image(parse(f"oci-archive:{first}")).digest == image.digest
    assert skopeo_inspect(f"oci-archive:{first}:v1")["Digest"] == image.digest
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (315532801, 0, 0, "", "")
    }


def test_docker_archive_is_readable_as_docker_and_as_oci(image: Image, tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    ref = parse(f"docker-archive:{archive}:team/app:1")
    assert (
        write_image(image, ref, tags=[parse(f"docker-archive:{archive}:team/app:latest")])
        == image.digest
    )
    assert read_image(ref).digest == image.digest
    assert read_image(parse(f"docker-archive:{archive}")).digest == image.digest
    with tarfile.open(archive) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        manifest = json.loads(handle.read())
    assert manifest == [
        {
            "Config": f"blobs/sha256/{hex_of(image.config_digest)}",
            "RepoTags": ["team/app:1", "team/app:latest"],
            "Layers": [f"blobs/sha256/{hex_of(layer.digest)}" for layer in image.layers],
        }
    ]
    as_docker = skopeo_inspect(f"docker-archive:{archive}")
    assert as_docker["Env"] == ["A=1"] and len(as_docker["Layers"]) == 2  # type: ignore[arg-type]
    config = skopeo_inspect(f"docker-archive:{archive}", "--config")
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": [layer.diff_id for layer in image.layers],
    }
    assert skopeo_inspect(f"oci-archive:{archive}:1")["Digest"] == image.digest


def test_reads_what_skopeo_writes_and_re_exports_it_unchanged(image: Image, tmp_path: Path) -> None:
    write_image(image, parse(f"oci:{tmp_path / 'src'}:v1"))
    run(
        "skopeo",
        "copy",
        "-q",
        f"oci:{tmp_path / 'src'}:v1",
        f"oci-archive:{tmp_path / 'sk.tar'}:v1",
    )
    from_skopeo = read_image(parse(f"oci-archive:{tmp_path / 'sk.tar'}:v1"))
    assert from_skopeo.digest == skopeo_inspect(f"oci-archive:{tmp_path / 'sk.tar'}:v1")["Digest"]
    assert write_image(from_skopeo, parse(f"oci:{tmp_path / 'again'}")) == from_skopeo.digest

    # skopeo's docker-archive keeps uncompressed layers under <diff_id>.tar.
    run(
        "skopeo",
        "copy",
        "-q",
        f"oci:{tmp_path / 'src'}:v1",
        f"docker-archive:{tmp_path / 'd.tar'}:x/y:2",
    )
    legacy = read_image(parse(f"docker-archive:{tmp_path / 'd.tar'}:x/y:2"))
    assert legacy.config_digest == image.config_digest
    assert [(layer.digest, layer.media_type) for layer in legacy.layers] == [
        (layer.diff_id, OCI_LAYER) for layer in image.layers
    ]
    write_image(legacy, parse(f"oci:{tmp_path / 'plain'}:v1"))
    assert skopeo_inspect(f"oci:{tmp_path / 'plain'}:v1")["Digest"] == legacy.digest
    assert unpacked_files(tmp_path / "plain", "v1", tmp_path / "b") == {**FILES_A, **FILES_B}


def legacy_save(path: Path) -> tuple[bytes, bytes]:
    """A tar in the pre-OCI ``docker save`` form: <id>/layer.tar, one of them a symlink."""
    raw = layer_tar(FILES_A)
    packed = gzip.compress(layer_tar(FILES_B), mtime=0)
    config_a = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": [sha(raw), sha(raw)]},
        }
    ).encode()
    config_b = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": [sha(layer_tar(FILES_B))]},
        }
    ).encode()
    manifest = [
        {
            "Config": f"{hex_of(sha(config_a))}.json",
            "RepoTags": ["app:1"],
            "Layers": ["l1/layer.tar", "l2/layer.tar"],
        },
        {
            "Config": f"{hex_of(sha(config_b))}.json",
            "RepoTags": ["docker.io/library/other:2"],
            "Layers": ["l3/layer.tar"],
        },
    ]
    with tarfile.open(path, "w") as tar:
        for name, data in [
            ("manifest.json", json.dumps(manifest).encode()),
            (f"{hex_of(sha(config_a))}.json", config_a),
            (f"{hex_of(sha(config_b))}.json", config_b),
            ("l1/layer.tar", raw),
            ("l3/layer.tar", packed),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("l2/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../l1/layer.tar"
        tar.addfile(link)
    return raw, packed


def test_reads_the_legacy_docker_save_form(tmp_path: Path) -> None:
    archive = tmp_path / "save.tar"
    raw, packed = legacy_save(archive)
    first = read_image(parse(f"docker-archive:{archive}:app:1"))
    assert [
        (layer.digest, layer.diff_id, layer.size, layer.media_type) for layer in first.layers
    ] == [(sha(raw), sha(raw), len(raw), OCI_LAYER)] * 2
    second = read_image(parse(f"docker-archive:{archive}:other:2"))
    assert [(layer.digest, layer.media_type) for layer in second.layers] == [
        (sha(packed), OCI_LAYER_GZIP)
    ]
    write_image(first, parse(f"oci:{tmp_path / 'out'}:a"))
    write_image(second, parse(f"oci:{tmp_path / 'out'}:b"))
    assert unpacked_files(tmp_path / "out", "a", tmp_path / "ba") == FILES_A
    assert unpacked_files(tmp_path / "out", "b", tmp_path / "bb") == FILES_B
    with pytest.raises(BaseImageNotFound, match="holds 2 images; name one"):
        read_image(parse(f"docker-archive:{archive}"))
    with pytest.raises(BaseImageNotFound, match="no image nope:1") as caught:
        read_image(parse(f"docker-archive:{archive}:nope:1"))
    assert "app:1" in str(caught.value)


def test_an_image_index_is_resolved_by_platform(tmp_path: Path) -> None:
    amd = append_layers(empty("linux", "amd64"), [memory_layer(FILES_A)])
    arm = append_layers(empty("linux", "arm64", variant="v8"), [memory_layer(FILES_B)])
    layout = Layout(tmp_path / "multi")
    write_image(amd, parse(f"oci:{layout.root}:amd"))
    write_image(arm, parse(f"oci:{layout.root}:arm"))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [index_entry(amd, None), index_entry(arm, None)],
    }
    index_digest = layout.blobs.put_bytes(jsonutil.dumps(index))
    entry = {
        "mediaType": OCI_INDEX,
        "digest": index_digest,
        "size": layout.blobs.size(index_digest),
        "annotations": {REF_NAME: "multi"},
    }
    layout.update_index(lambda current: {**current, "manifests": [*current["manifests"], entry]})
    assert read_image(parse(f"oci:{layout.root}:multi")).digest == amd.digest
    assert (
        read_image(parse(f"oci:{layout.root}:multi"), platform="linux/arm64").digest == arm.digest
    )
    with pytest.raises(BaseImageNotFound, match="no manifest for platform linux/s390x") as caught:
        read_image(parse(f"oci:{layout.root}:multi"), platform="linux/s390x")
    assert "linux/amd64, linux/arm64/v8" in str(caught.value)


def test_missing_images_and_tags_say_what_exists(image: Image, tmp_path: Path) -> None:
    with pytest.raises(BaseImageNotFound, match="is not an OCI layout"):
        read_image(parse(f"oci:{tmp_path / 'nothing'}:v1"))
    write_image(image, parse(f"oci:{tmp_path / 'out'}:v1"))
    with pytest.raises(BaseImageNotFound, match="no tag 'v9'") as caught:
        read_image(parse(f"oci:{tmp_path / 'out'}:v9"))
    assert "tags present: v1" in str(caught.value)
    with pytest.raises(BaseImageNotFound, match="does not exist"):
        read_image(parse(f"oci-archive:{tmp_path / 'missing.tar'}"))
    compressed = tmp_path / "c.tar.gz"
    compressed.write_bytes(gzip.compress(b"x" * 1024))
    with pytest.raises(BaseImageFetchError, match="is compressed"):
        read_image(parse(f"docker-archive:{compressed}"))


def test_a_corrupt_source_blob_fails_the_write_and_leaves_nothing(
    image: Image, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write_image(image, parse(f"oci:{source}:v1"))
    blob = Layout(source).blobs.path(image.layers[0].digest)
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * image.layers[0].size)
    damaged = read_image(parse(f"oci:{source}:v1"))
    for text in (f"oci:{tmp_path / 'dst'}:v1", f"oci-archive:{tmp_path / 'dst.tar'}"):
        with pytest.raises(ExportError, match="content has digest"):
            write_image(damaged, parse(text))
    dst = BlobDir(tmp_path / "dst" / "blobs")
    assert not dst.has(image.layers[0].digest) and dst.temps() == []
    assert not (tmp_path / "dst" / "index.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "layers", "src"]


def test_an_unmodified_base_keeps_its_digest_through_every_sink(
    image: Image, tmp_path: Path
) -> None:
    # Spaced JSON, as another tool might write it: the digest must survive a re-export.
    spaced_config = json.dumps(image.config, indent=2).encode()
    manifest = json.loads(image.manifest_bytes)
    manifest["config"].update(digest=sha(spaced_config), size=len(spaced_config))
    spaced_manifest = json.dumps(manifest, indent=2).encode()
    layout = Layout(tmp_path / "foreign")
    for layer in image.layers:
        with layer.open() as handle:
            layout.blobs.put_stream([handle.read()])
    layout.blobs.put_bytes(spaced_config)
    layout.blobs.put_bytes(spaced_manifest)
    entry = {
        "mediaType": manifest["mediaType"],
        "digest": sha(spaced_manifest),
        "size": len(spaced_manifest),
    }
    layout.update_index(lambda index: {**index, "manifests": [entry]})
    base = read_image(parse(f"oci:{layout.root}"))
    assert base.digest == sha(spaced_manifest)
    for text in (
        f"oci:{tmp_path / 'a'}:x",
        f"oci-archive:{tmp_path / 'b.tar'}:x",
        f"docker-archive:{tmp_path / 'c.tar'}:c:x",
    ):
        assert write_image(base, parse(text)) == base.digest
        assert read_image(parse(text)).digest == base.digest
