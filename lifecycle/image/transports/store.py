"""The embedded local store (docs/reference.md §2): an OCI layout under ``$HYBRIDLESS_HOME/store``.

Bare references (``name[:tag]``) name images here; each is an ``index.json`` entry whose
``org.opencontainers.image.ref.name`` is ``name:tag``, so ``skopeo``/``umoci`` can read the
store as ``oci:$HYBRIDLESS_HOME/store:name:tag``.

Crash and concurrency safety come from ``Layout``'s protocol: blobs are complete before the
index names them, the index is replaced atomically under a lock, and writers hold a shared
lock that ``gc`` and ``verify`` take exclusively, so ``gc`` never sees a blob that a live
writer stored but has not referenced yet. A killed writer leaves at most temporary files,
which ``gc`` and ``verify`` delete once its pid is gone.

Blobs are trusted through a ledger of stamps (``<home>/store.stamps``, see
:mod:`lifecycle.image.blobs`): a blob that changed on disk is hashed again before a build
reuses or links it, and a corrupt one is replaced from the build's source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lifecycle import jsonutil, paths
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, InvalidReference
from lifecycle.image.blobs import (
    BlobDir,
    digest_of,
    find_temps,
    recover_noted,
    recover_temps,
    temp_journal,
)
from lifecycle.image.image import Image
from lifecycle.image.reference import Reference, parse
from lifecycle.image.transports.oci_layout import Layout, Progress, load_index, ref_name

DEFAULT_PLATFORM = "linux/amd64"
LEDGER = "store.stamps"
"""The store's ledger of blob stamps, beside the layout (not inside it: tools read that)."""


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$HYBRIDLESS_HOME``, else ``$XDG_DATA_HOME/hybridless``, else under ``~/.local/share``."""
    return paths.store_home(environ)


@dataclass(frozen=True)
class StoreImage:
    """One line of ``images``: a reference and what it points at."""

    reference: str
    digest: str
    size: int
    """Bytes of manifest, config and layers; -1 when the manifest cannot be read."""
    created: str

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class GcReport:
    """What ``gc`` removed."""

    freed: int
    """Bytes given back to the filesystem: a blob counts only when its last hard link went."""
    removed: tuple[str, ...]
    """Digests of the blobs deleted."""
    recovered: tuple[str, ...]
    """Temporary files of dead writers that were deleted."""

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` checked and found; ``ok`` when nothing is wrong."""

    images: int
    """References checked."""
    blobs: int
    """Blobs checked."""
    recovered: tuple[str, ...]
    """Temporary files of dead writers, deleted before checking."""
    corrupt: tuple[str, ...]
    """Blobs whose content no longer matches their digest."""
    temps: tuple[str, ...]
    """Temporary files still present after recovery (a live process left them)."""
    problems: tuple[str, ...]
    """Everything wrong, one readable line each: corrupt blobs, broken references, temps.

    After a repair, only what the repair could not fix."""
    repaired: tuple[str, ...] = ()
    """What ``verify --repair`` did, one readable line each."""

    @property
    def ok(self) -> bool:
        """Whether the store is sound."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {**asdict(self), "ok": self.ok}


class Store:
    """The local image store rooted at ``<home>/store``."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = self.home / "store"
        self.layout = Layout(self.root, self.home / LEDGER)

    def read(self, ref: Reference | str, platform: str = DEFAULT_PLATFORM) -> Image:
        """The image ``ref`` names (``BaseImageNotFound`` when the store has no such image)."""
        name = _store_ref(ref).store_name
        if not self.layout.exists() or name not in self.layout.tags():
            raise BaseImageNotFound(
                f"failed to read image {name}: the local store ({self.root}) has no such image",
                hint="list the stored images with `hybridless-lifecycle images`",
            )
        return self.layout.read(name, platform, name)

    def write(
        self, image: Image, refs: Sequence[Reference | str], progress: Progress | None = None
    ) -> str:
        """Store ``image`` under every one of ``refs``; return its manifest digest."""
        names = list(dict.fromkeys(_store_ref(ref).store_name for ref in refs))
        return self.layout.write(image, names, progress)

    def images(self) -> list[StoreImage]:
        """Every reference in the store, sorted by name."""
        listed = []
        for entry in self.layout.index().get("manifests") or []:
            digest = str(entry.get("digest", ""))
            size, created = self._describe(digest)
            listed.append(StoreImage(ref_name(entry) or "<none>", digest, size, created))
        return sorted(listed, key=lambda item: (item.reference, item.digest))

    def remove(self, ref: Reference | str) -> str:
        """Remove a reference (its blobs stay until ``gc``); return the digest it named."""
        name = _store_ref(ref).store_name
        if not self.layout.exists():
            raise BaseImageNotFound(f"failed to remove {name}: the local store is empty")
        removed: list[str] = []

        def change(index: dict[str, Any]) -> dict[str, Any]:
            entries = index.get("manifests") or []
            removed.extend(str(e.get("digest")) for e in entries if ref_name(e) == name)
            return {**index, "manifests": [e for e in entries if ref_name(e) != name]}

        self.layout.update_index(change)
        if not removed:
            raise BaseImageNotFound(
                f"failed to remove {name}: no such image in the local store",
                hint="list the stored images with `hybridless-lifecycle images`",
            )
        return removed[0]

    def gc(self) -> GcReport:
        """Delete blobs no reference reaches, and dead writers' temporary files.

        Temps are recovered in the store and in every outside directory a sink noted
        (``blobs.note_temp_dir``). Refuses (``BaseImageFetchError``) when a referenced
        manifest cannot be read, since what it references would then be unknown; ``verify``
        says which and ``rm`` clears it.
        """
        noted = tuple(str(path) for path in recover_noted(temp_journal(self.home)))
        if not self.root.is_dir():
            return GcReport(0, (), noted)
        with self.layout.collecting():
            recovered = (*self._recover(), *noted)
            reachable, unreadable, _ = self._reachable()
            if unreadable:
                raise BaseImageFetchError(
                    f"failed to collect garbage: {unreadable[0]}",
                    hint="run `hybridless-lifecycle verify`, then `rm` the damaged references",
                )
            freed, removed = self.layout.blobs.sweep(reachable)
        return GcReport(freed, removed, recovered)

    def verify(self, repair: bool = False, spares: Sequence[BlobDir] = ()) -> VerifyReport:
        """Check every blob against its digest and every reference for a complete image.

        With ``repair``, a corrupt blob is replaced from the first of ``spares`` (the build
        cache) that holds a good copy, else removed; a reference whose image is still
        incomplete then is removed too (a build writes it again), so the store verifies.
        """
        if not self.root.is_dir():
            return VerifyReport(0, 0, (), (), (), ())
        repaired: list[str] = []
        with self.layout.collecting():
            recovered = self._recover()
            blobs = self.layout.blobs
            digests = list(blobs.digests())
            corrupt = tuple(d for d in digests if not blobs.verify(d))
            if repair:
                repaired.extend(self._repair(corrupt, spares))
                bad: set[str] = set()
            else:
                bad = set(corrupt)
            _, unreadable, missing = self._reachable(bad)
            temps = tuple(str(p) for p in (*blobs.temps(), *find_temps(self.root)))
            references = len(self.layout.index().get("manifests") or [])
        problems = (
            *(f"blob {digest} is corrupt: its content has another digest"
              for digest in (() if repair else corrupt)),
            *unreadable,
            *missing,
            *(f"temporary file {path} is left (its writer is still alive)" for path in temps),
        )
        return VerifyReport(references, len(digests), recovered, corrupt, temps, problems,
                            tuple(repaired))

    def _repair(self, corrupt: Iterable[str], spares: Sequence[BlobDir]) -> list[str]:
        """Replace or remove corrupt blobs, then drop references left incomplete."""
        blobs = self.layout.blobs
        done: list[str] = []
        for digest in corrupt:
            blobs.path(digest).unlink(missing_ok=True)
            spare = next((s for s in spares if s.trusted(digest)), None)
            if spare is not None:
                blobs.put_blob(spare, digest)
                done.append(f"blob {digest} was corrupt: replaced from {spare.root}")
            else:
                done.append(f"blob {digest} was corrupt: removed (no good copy is kept)")
        # Tags sharing a manifest are reported under one label per pass: repeat until none.
        dropped: set[str] = set()
        while broken := self._incomplete_references() - dropped:
            self.layout.update_index(lambda index: {
                **index, "manifests": [e for e in index.get("manifests") or []
                                       if (ref_name(e) or str(e.get("digest"))) not in broken]})
            dropped |= broken
        done.extend(f"reference {name} was incomplete: removed (build it again)"
                    for name in sorted(dropped))
        return done

    def _incomplete_references(self) -> set[str]:
        """The labels of index entries whose image has an unreadable or missing blob."""
        _, unreadable, missing = self._reachable()
        return {line.split(": ", 1)[0] for line in (*unreadable, *missing)}

    def _recover(self) -> tuple[str, ...]:
        paths = (*self.layout.blobs.recover(), *recover_temps(self.root))
        return tuple(str(path) for path in paths)

    def _reachable(self, corrupt: Iterable[str] = ()) -> tuple[set[str], list[str], list[str]]:
        """Blobs reachable from the index, unreadable manifests, and missing leaf blobs."""
        blobs = self.layout.blobs
        bad = set(corrupt)
        reachable: set[str] = set()
        unreadable: list[str] = []
        missing: list[str] = []
        try:
            index = load_index(self.layout.index_path)
        except FileNotFoundError:
            return reachable, unreadable, missing
        except ValueError as error:
            return reachable, [f"index.json {error}"], missing
        pending = [
            (ref_name(entry) or str(entry.get("digest")), str(entry.get("digest")))
            for entry in index.get("manifests") or []
        ]
        while pending:
            label, digest = pending.pop()
            if digest in reachable:
                continue
            reachable.add(digest)
            try:
                data = blobs.read(digest)
                if digest in bad or digest_of(data) != digest:
                    raise ValueError("its content does not match its digest")
                document = jsonutil.loads(data)
            except (OSError, ValueError) as error:
                unreadable.append(f"{label}: manifest {digest} cannot be read ({error})")
                continue
            for child in document.get("manifests") or []:
                pending.append((label, str(child.get("digest"))))
            leaves = [document.get("config") or {}, *(document.get("layers") or [])]
            for leaf in leaves:
                leaf_digest = str(leaf.get("digest"))
                reachable.add(leaf_digest)
                if leaf_digest in bad or not blobs.present(leaf_digest):
                    state = "corrupt" if leaf_digest in bad else "missing"
                    missing.append(f"{label}: blob {leaf_digest} is {state}")
        return reachable, unreadable, missing

    def _describe(self, digest: str) -> tuple[int, str]:
        try:
            manifest_bytes = self.layout.blobs.read(digest)
            manifest = jsonutil.loads(manifest_bytes)
            children = [*(manifest.get("layers") or []), *(manifest.get("manifests") or [])]
            config = manifest.get("config")
            size = len(manifest_bytes) + sum(int(c.get("size", 0)) for c in children)
            if not config:
                return size, ""
            config_document = jsonutil.loads(self.layout.blobs.read(config["digest"]))
            return size + int(config.get("size", 0)), str(config_document.get("created", ""))
        except (OSError, ValueError, KeyError):
            return -1, ""


def open_store(home: Path | str | None = None) -> Store:
    """The store at ``home``, by default the one this environment names (``default_home``)."""
    return Store(home)


def _store_ref(ref: Reference | str) -> Reference:
    parsed = parse(ref) if isinstance(ref, str) else ref
    if parsed.transport != "store":
        raise InvalidReference(
            f"failed to use {str(parsed)!r} in the local store: it names the "
            f"{parsed.transport}: transport",
            hint="local store references have no transport prefix: name[:tag]",
        )
    return parsed


def read(ref: Reference, platform: str) -> Image:
    """Read a store reference from the store of this environment."""
    return Store().read(ref, platform)


def write(image: Image, refs: Sequence[Reference], progress: Progress | None) -> str:
    """Write ``image`` to the store of this environment under each of ``refs``."""
    return Store().write(image, refs, progress)
