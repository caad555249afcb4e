"""The ``docker-archive:FILE[:NAME:TAG]`` source and sink: what ``docker save``/``docker load`` use.

The sink writes one tar that is both a ``docker load`` archive (``manifest.json`` listing
``Config``, ``RepoTags`` and ``Layers``) and an OCI layout (``oci-layout``, ``index.json``,
``blobs/sha256/``) over the same blobs, the way Docker 25+ saves images; skopeo can then
read it as ``docker-archive:`` or ``oci-archive:``. Layers stay gzip-compressed, which
``docker load`` accepts.

The source reads both forms ``docker save`` writes: the OCI-in-tar one (via ``index.json``,
keeping the manifest bytes) and the legacy one (``<id>/layer.tar``, uncompressed, sometimes
symlinked), for which the layer digest is its DiffID and the manifest is synthesised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound
from lifecycle.image.blobs import CHUNK, digest_of, hex_of
from lifecycle.image.image import (
    INDEX_TYPES,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    Image,
    Layer,
    from_manifest,
)
from lifecycle.image.reference import Reference
from lifecycle.image.transports.oci_archive import (
    ArchiveSource,
    add_layout,
    clean_member,
    read_layout,
    write_archive,
)
from lifecycle.image.transports.oci_layout import Progress, index_entry

MANIFEST = "manifest.json"
CONTAINERD_NAME = "io.containerd.image.name"
_MAGIC = {b"\x1f\x8b": OCI_LAYER_GZIP, b"\x28\xb5\x2f\xfd": OCI_LAYER_ZSTD}


def qualified(name_and_tag: str) -> str:
    """``name:tag`` as Docker spells it in full (``app:1`` → ``docker.io/library/app:1``)."""
    name, sep, tag = name_and_tag.rpartition(":")
    if not sep or "/" in tag:
        name, tag = name_and_tag, "latest"
    first, slash, _ = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


def write(image: Image, refs: Sequence[Reference], progress: Progress | None) -> str:
    """Write a new archive holding ``image``, tagged with the NAME:TAG of each of ``refs``."""
    repo_tags = list(dict.fromkeys(ref.store_name for ref in refs if ref.name))
    entries = [
        index_entry(image, ref.tag_or_default, {CONTAINERD_NAME: qualified(ref.store_name)})
        for ref in refs
        if ref.name
    ] or [index_entry(image, None)]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    manifest = [
        {
            "Config": f"blobs/sha256/{hex_of(image.config_digest)}",
            "RepoTags": repo_tags,
            "Layers": [f"blobs/sha256/{hex_of(layer.digest)}" for layer in image.layers],
        }
    ]
    extra = {MANIFEST: jsonutil.dumps(manifest)}
    write_archive(
        Path(refs[0].path), lambda writer: add_layout(writer, image, index, progress, extra)
    )
    return image.digest


def read(ref: Reference, platform: str) -> Image:
    """Read the image a ``docker-archive:`` reference names."""
    where = str(ref)
    source = ArchiveSource.scan(Path(ref.path), where)
    if MANIFEST not in source.members:
        if "index.json" in source.members:
            return read_layout(source, ref.tag if ref.name else None, platform, where)
        raise BaseImageFetchError(
            f"failed to read image {where}: {ref.path} is not a docker archive (no {MANIFEST})"
        )
    try:
        entries = jsonutil.loads(source.read_member(MANIFEST))
        entry = _select(entries, ref, where)
        config_bytes = source.read_member(entry["Config"])
    except (KeyError, TypeError, ValueError) as error:
        raise BaseImageFetchError(
            f"failed to read image {where}: bad {MANIFEST}: {error}"
        ) from error
    image = _from_layout(source, digest_of(config_bytes), config_bytes)
    if image is not None:
        return image
    return _from_legacy(source, entry, config_bytes, where)


def _select(entries: Sequence[Mapping[str, Any]], ref: Reference, where: str) -> Mapping[str, Any]:
    tags = [str(tag) for entry in entries for tag in entry.get("RepoTags") or []]
    if ref.name:
        wanted = qualified(ref.store_name)
        for entry in entries:
            if any(qualified(tag) == wanted for tag in entry.get("RepoTags") or []):
                return entry
        raise BaseImageNotFound(
            f"failed to read image {where}: the archive has no image {ref.store_name}",
            hint=f"images present: {', '.join(tags) or 'untagged only'}",
        )
    if len(entries) != 1:
        raise BaseImageNotFound(
            f"failed to read image {where}: the archive holds {len(entries)} images; name one",
            hint=f"write docker-archive:{ref.path}:NAME:TAG; present: {', '.join(tags) or 'none'}",
        )
    return entries[0]


def _from_layout(source: ArchiveSource, config_digest: str, config_bytes: bytes) -> Image | None:
    """The image of the archive's OCI index whose config is ``config_digest``, if any."""
    if "index.json" not in source.members:
        return None
    pending = list(jsonutil.loads(source.read_member("index.json")).get("manifests") or [])
    seen: set[str] = set()
    while pending:
        descriptor = pending.pop(0)
        digest = str(descriptor.get("digest", ""))
        if digest in seen or not _has(source, digest):
            continue
        seen.add(digest)
        document = source.read(digest)
        if digest_of(document) != digest:
            continue
        parsed = jsonutil.loads(document)
        if descriptor.get("mediaType") in INDEX_TYPES or "manifests" in parsed:
            pending.extend(parsed.get("manifests") or [])
            continue
        if (parsed.get("config") or {}).get("digest") != config_digest:
            continue
        if all(_has(source, layer.get("digest", "")) for layer in parsed.get("layers") or []):
            return from_manifest(document, config_bytes, source)
    return None


def _has(source: ArchiveSource, digest: str) -> bool:
    try:
        return source.member_of(digest) in source.members
    except ValueError:
        return False


def _from_legacy(
    source: ArchiveSource, entry: Mapping[str, Any], config_bytes: bytes, where: str
) -> Image:
    diff_ids = (jsonutil.loads(config_bytes).get("rootfs") or {}).get("diff_ids") or []
    paths = [clean_member(str(path)) for path in entry.get("Layers") or []]
    if len(paths) != len(diff_ids):
        raise BaseImageFetchError(
            f"failed to read image {where}: {len(paths)} layers but {len(diff_ids)} diff_ids"
        )
    found: list[tuple[str, str, int, str]] = []
    for path, diff_id in zip(paths, diff_ids, strict=True):
        if path not in source.members:
            raise BaseImageFetchError(f"failed to read image {where}: layer {path} is missing")
        media_type = _media_type(source, path)
        # An uncompressed layer is its own DiffID; a compressed one must be hashed to name it.
        digest = diff_id if media_type == OCI_LAYER else _hash_member(source, path)
        found.append((digest, diff_id, source.members[path][1], media_type))
    by_digest = {digest: path for (digest, *_), path in zip(found, paths, strict=True)}
    with_names = source.with_digests(by_digest)
    layers = tuple(Layer(d, diff_id, size, mt, with_names) for d, diff_id, size, mt in found)
    return Image(config_bytes, layers)


def _media_type(source: ArchiveSource, path: str) -> str:
    with source.open_member(path) as handle:
        head = handle.read(4)
    for magic, media_type in _MAGIC.items():
        if head.startswith(magic):
            return media_type
    return OCI_LAYER


def _hash_member(source: ArchiveSource, path: str) -> str:
    hasher = hashlib.sha256()
    with source.open_member(path) as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"
