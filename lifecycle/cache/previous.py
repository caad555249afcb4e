"""``build --previous-image``: reuse the last pushed image's launch layers by digest.

A CI runner starts with an empty cache, so the layer records that make a rebuild cheap are
missing. The previous image's build label carries each launch layer's name, DiffID and
metadata; from it this module writes the records a local build would have left, pointing at
the blob in the previous image's repository. A buildpack that declares the same layer with
the same metadata and flags then sees it ``reused`` and skips its install; export refers to
the blob by digest, so a push to that repository finds it there (or mounts it from another
repository of the same registry) and sends nothing.

What a label cannot carry is the layer's files and its flags. So a restored record is
launch-only with an empty directory: a layer that is also ``build`` or ``cache`` does not
match it and is rebuilt, unless ``--cache-image`` brought it back with its files
(:mod:`lifecycle.cache.cacheimage`, which runs first). A record the local cache already has
always wins.

The previous image is trusted as much as the repository it is read from, which by default
is the destination itself: its blobs are checked against their digests when fetched, and the
label's DiffIDs must be the config's, but what a layer holds is whatever was pushed there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from lifecycle.cache.layers import BlobInfo, LayerRecord, ProjectCache, valid_layer_name
from lifecycle.cache.remote import ReadImage
from lifecycle.errors import LifecycleError
from lifecycle.phases import label as label_mod


@dataclass(frozen=True)
class Restored:
    """What one reuse source brought back."""

    image: str
    layers: tuple[str, ...]
    """``<buildpack-id>/<layer>`` names whose records were restored."""


def restore(previous: ReadImage, cache: ProjectCache, group: Iterable[str], stack: str | None,
            log: logging.Logger) -> Restored:
    """Write launch-only records for the previous image's layers that the cache lacks."""
    found = Restored(str(previous.ref), ())
    try:
        label = label_mod.read(previous.image.labels, previous.ref)
    except LifecycleError as error:
        log.warning("not reusing layers of previous image %s: %s", previous.ref, error.message)
        return found
    if label is None:
        log.info("previous image %s has no %s label: it was not built by this lifecycle; "
                 "nothing to reuse", previous.ref, label_mod.BUILD_LABEL)
        return found
    if label.stack != stack:
        log.info("previous image %s was built on stack %s, this build uses %s: not reusing "
                 "its layers", previous.ref, label.stack or "(none)", stack or "(none)")
        return found
    if label.executor is not None and label.executor != cache.executor:
        log.info("previous image %s was built with executor %s, this build uses %s: not "
                 "reusing its layers", previous.ref, label.executor, cache.executor)
        return found
    members = set(group)
    by_diff_id = previous.layer_by_diff_id()
    restored: list[str] = []
    for layer in label.layers:
        buildpack, _, name = layer.name.rpartition("/")
        if buildpack not in members:
            continue  # the app, the launcher, or a buildpack not in this build's group
        if not valid_layer_name(name):
            log.warning("previous image %s names a layer %r: not a layer name; ignored",
                        previous.ref, layer.name)
            continue
        blob = by_diff_id.get(layer.diff_id)
        if blob is None:
            log.warning("previous image %s: layer %s has DiffID %s, which is not one of the "
                        "image's layers; ignored", previous.ref, layer.name, layer.diff_id)
            continue
        if cache.read_record(buildpack, name) is not None:
            continue
        origin = previous.repository
        if origin is None:
            # A local image: copy the blob (a hard link when it can be) into the cache.
            previous.fetch(blob, cache.blobs)
        cache.write_record(LayerRecord(
            buildpack, name, launch=True, build=False, cache=False,
            metadata=dict(layer.metadata),
            blob=BlobInfo(blob.digest, blob.diff_id, blob.size),
            # Checked above when the label names it (labels older than the key do not).
            executor=cache.executor, origin=origin))
        restored.append(layer.name)
    if restored:
        log.info("restored %d layer record(s) from previous image %s: %s", len(restored),
                 previous.ref, ", ".join(restored))
    return Restored(str(previous.ref), tuple(restored))
