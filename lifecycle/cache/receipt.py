"""Build receipts: a no-change rebuild answered without loading a buildpack.

A no-change rebuild through every phase costs more in imports (pluggy, the buildpacks, the
image model) than in work. So, after a build into the local store succeeds, the lifecycle
writes a *receipt*: what the build observed before it started, and the digest it stored under
each reference. The next build of the same request observes again, before importing anything
heavy; when nothing differs and the store still holds the result, it prints the recorded
result and stops. ``build --full`` always runs every phase.

What is observed (a change in any of them means a full build):

- the request: every ``build`` option that shapes the image, and the lifecycle's version;
- the whole environment, since buildpacks read it (but for a shell's own ``OLDPWD``,
  ``SHLVL`` and ``_``);
- every entry under the app directory, excluded files included (``.npmrc`` and ``.env`` shape
  installs without reaching a layer): its path, type, mode, size, mtime, ctime, inode and link
  target; an edit that restores the size and mtime still moves the ctime;
- the directories on ``sys.path`` (installing or removing a plugin changes them) and on
  ``PATH``, and the descriptor when it lies outside the app;
- recorded after the build: the files of every Python module the build ran (the lifecycle,
  pluggy, the buildpacks: an edited buildpack is seen), the programs the buildpacks name in
  ``tools`` (where ``PATH`` finds them, and their size, mtime and inode), and the run image
  (a layout's ``index.json``, an archive file, or the digest a store reference names).

Rules that keep it sound:

- The observation is taken before detect starts, so a file edited while the build runs makes
  the next observation differ.
- Filesystem clocks are coarse: a write in the same tick as the observation could keep every
  field equal. So the observation also hashes the content of every file whose mtime or ctime
  is less than :data:`RACY_NS` old, and a later lookup compares those contents too (git's
  "racily clean" rule). Once those files are older than that, a lookup that found them
  unchanged drops them from the receipt (git refreshes its index the same way), so later
  rebuilds read no file again.
- Only groups whose buildpacks all declare ``hermetic = True`` get a receipt: their result
  depends on nothing but the inputs above. A buildpack that asks the network or the clock
  leaves the attribute out and is always run.
- Registry references (as destination or run image) get no receipt: a remote tag can move
  without anything here changing.
- The store must still name the recorded digest under every reference, with every blob present
  and trusted (``rm`` and ``gc`` are seen): a blob whose ``(inode, size, mtime, ctime)`` stamp
  is not the one the store's ledger recorded is hashed again, and a corrupt one means a full
  build, which writes it anew (see :mod:`lifecycle.image.blobs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

from lifecycle import __version__, paths
from lifecycle.image.blobs import BlobDir, file_digest, write_atomic

FORMAT = 2
"""Receipt file format; a receipt of another format is ignored."""

_SHELL_ONLY = frozenset({"OLDPWD", "SHLVL", "_"})
"""Variables a shell rewrites for its own bookkeeping (a ``cd``, a nested shell): not inputs."""

RACY_NS = 2_000_000_000
"""Files changed this close to the observation are checked by content as well (see above)."""

Result = TypeVar("Result")


class Storable(Protocol):
    """A build's result as the receipt stores it: whatever its ``to_json`` gives."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        ...


class Observation:
    """What one build request saw before it started: the receipt's key and its parts' digests."""

    __slots__ = ("app_dir", "fresh", "parts", "receipt_path")

    def __init__(self, receipt_path: Path, parts: dict[str, str], app_dir: str,
                 fresh: dict[str, str]) -> None:
        self.receipt_path = receipt_path
        self.parts = parts
        self.app_dir = app_dir
        self.fresh = fresh
        """Content digests of the app's files that changed less than RACY_NS ago."""


# NamedTuple, not a frozen dataclass: this module runs on the no-change rebuild path, and
# importing dataclasses (with inspect, ast and dis) costs about 25 ms there.
class RunImageFile(NamedTuple):
    """A run image read from a file (a layout's ``index.json`` or an archive): its signature."""

    file: str
    signature: list[int] | None

    def to_json(self) -> dict[str, Any]:
        """The receipt's ``run_image`` object."""
        return {"file": self.file, "signature": self.signature}


class RunImageName(NamedTuple):
    """A run image named in the local store: the digest the name must still give."""

    store: str
    name: str
    digest: str

    def to_json(self) -> dict[str, Any]:
        """The receipt's ``run_image`` object."""
        return {"store": self.store, "name": self.name, "digest": self.digest}


RunImageSource = RunImageFile | RunImageName
"""How a later lookup rechecks the run image (see :func:`local_source`)."""


class Outputs(NamedTuple):
    """What the build stored: the store, the names given the image, its digest and blobs."""

    store: str
    names: tuple[str, ...]
    digest: str
    blobs: tuple[str, ...]
    ledger: str | None = None
    """The store's ledger of checked blob stamps (``image.blobs``); None trusts names."""

    def to_json(self) -> dict[str, Any]:
        """The receipt's ``outputs`` object."""
        return {"store": self.store, "names": list(self.names), "digest": self.digest,
                "blobs": list(self.blobs), "ledger": self.ledger}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outputs:
        """Parse :meth:`to_json`'s output."""
        ledger = data.get("ledger")
        return cls(str(data["store"]), tuple(map(str, data["names"])), str(data["digest"]),
                   tuple(map(str, data["blobs"])), str(ledger) if ledger else None)


def _run_image_from_json(data: Mapping[str, Any]) -> RunImageSource:
    if "file" in data:
        return RunImageFile(str(data["file"]), data.get("signature"))
    return RunImageName(str(data["store"]), str(data["name"]), str(data["digest"]))


class Receipt(NamedTuple):
    """One receipt file: what a build observed, what it ran and read, and what it printed."""

    parts: Mapping[str, str]
    fresh: Mapping[str, str]
    modules: list[list[Any]]
    tools: list[list[Any]]
    run_image: RunImageSource
    outputs: Outputs
    document: Mapping[str, Any]
    """The producer's result as its ``to_json`` gave it; stored, never read by key here."""

    def to_json(self) -> dict[str, Any]:
        """The receipt file's content."""
        return {"format": FORMAT, "parts": dict(self.parts), "fresh": dict(self.fresh),
                "modules": self.modules, "tools": self.tools,
                "run_image": self.run_image.to_json(), "outputs": self.outputs.to_json(),
                "document": dict(self.document)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        """Parse a receipt file; raises KeyError, TypeError or ValueError for another format."""
        if data.get("format") != FORMAT:
            raise ValueError(f"receipt format {data.get('format')!r}, not {FORMAT}")
        return cls(dict(data["parts"]), dict(data.get("fresh") or {}),
                   list(data.get("modules") or ()), list(data.get("tools") or ()),
                   _run_image_from_json(data["run_image"]), Outputs.from_json(data["outputs"]),
                   dict(data["document"]))


def observe(request: Mapping[str, Any], app_dir: str, cache_dir: str | None,
            descriptor: str | None) -> Observation:
    """Observe the request, the environment and the app tree (see the module docstring)."""
    started_ns = time.time_ns()
    request_json = json.dumps({**request, "lifecycle": __version__, "python": sys.executable},
                              sort_keys=True)
    request_key = _sha(request_json)
    root = Path(cache_dir) if cache_dir else paths.cache_root()
    tree = hashlib.sha256()
    fresh = {name: _content(os.path.join(app_dir, name))
             for name in _walk(app_dir, tree, started_ns - RACY_NS)}
    places = hashlib.sha256()
    search = os.environ.get("PATH", "").split(os.pathsep)
    for directory in [*sys.path, *search, *([descriptor] if descriptor else [])]:
        places.update(f"{directory}\0{_signature(directory or '.')}\n".encode())
    env = "\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k not in _SHELL_ONLY)
    parts = {"request": request_key, "environment": _sha(env), "paths": places.hexdigest(),
             "app": tree.hexdigest()}
    return Observation(paths.CacheLayout(root).receipts / f"{request_key}.json", parts, app_dir,
                       fresh)


def lookup(observed: Observation, log: Any,
           parse: Callable[[Mapping[str, Any]], Result]) -> Result | None:
    """The recorded result, read back by ``parse`` (the producer's ``from_json``), when nothing
    changed and the store still holds it; None when the build must run."""
    try:
        receipt = Receipt.from_json(json.loads(observed.receipt_path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    why = _difference(receipt, observed)
    if why is not None:
        log.debug("receipt %s not used: %s", observed.receipt_path.name, why)
        return None
    try:
        result = parse(receipt.document)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.debug("receipt %s not used: its result does not parse: %s",
                  observed.receipt_path.name, exc)
        return None
    _refresh(receipt, observed, log)
    return result


def record(observed: Observation, result: Storable, *, hermetic: bool,
           tools: Iterable[str], run_image: RunImageSource | None,
           outputs: Outputs | None, log: Any) -> bool:
    """Write the receipt for a build that just succeeded; False when it does not qualify.

    ``run_image`` says how to recheck the base (see :func:`local_source`), ``outputs`` what
    the build stored; None for either means the build involved a registry (or another place
    that cannot be rechecked locally).
    """
    why = None
    if not hermetic:
        why = "a buildpack of the group is not hermetic"
    elif run_image is None or outputs is None:
        why = "the run image or the destination is not local"
    if why is not None or run_image is None or outputs is None:
        log.debug("no receipt recorded: %s", why)
        observed.receipt_path.unlink(missing_ok=True)
        return False
    receipt = Receipt(observed.parts, observed.fresh, _module_signatures(),
                      _tool_signatures(tools), run_image, outputs, result.to_json())
    return _write(observed.receipt_path, receipt, log)


def _write(path: Path, receipt: Receipt, log: Any) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(receipt.to_json(), sort_keys=True).encode("utf-8"),
                     durable=False)
    except OSError as exc:  # a receipt only saves time
        log.debug("no receipt recorded: %s", exc)
        return False
    return True


def _refresh(receipt: Receipt, observed: Observation, log: Any) -> None:
    """Drop the content checks of files that are no longer racy from a receipt just used.

    The lookup found each such file with the recorded stat and the recorded content. A file
    that ``observe`` no longer counts as fresh has times older than ``RACY_NS``, so any later
    write gives it a ctime the recorded one cannot equal: the stat alone is proof from now on.
    """
    kept = {name: content for name, content in receipt.fresh.items() if name in observed.fresh}
    if len(kept) == len(receipt.fresh):
        return
    log.debug("receipt %s refreshed: %d file(s) no longer racy", observed.receipt_path.name,
              len(receipt.fresh) - len(kept))
    _write(observed.receipt_path, receipt._replace(fresh=kept), log)


def local_source(transport: str, path: str, store_root: str | None, name: str | None,
                 digest: str | None) -> RunImageSource | None:
    """How to recheck a run image later, or None when it is remote."""
    if transport == "oci":
        index = os.path.join(path, "index.json")
        return RunImageFile(index, _signature(index))
    if transport in ("oci-archive", "docker-archive"):
        return RunImageFile(path, _signature(path))
    if transport == "store" and store_root and name and digest:
        return RunImageName(store_root, name, digest)
    return None


# ------------------------------------------------------------------------------ internals


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _signature(path: str) -> list[int] | None:
    """Size, mtime, ctime, inode and mode of ``path`` (without following a last symlink)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode]


def _content(path: str) -> str:
    """The digest of a file's content ("" when it cannot be read)."""
    try:
        return file_digest(path)
    except OSError:
        return ""


def _walk(top: str, digest: Any, fresh_after_ns: int) -> list[str]:
    """Feed every entry under ``top`` into ``digest`` in a fixed order; return the regular
    files whose mtime or ctime is ``fresh_after_ns`` or later."""
    fresh = []
    stack = [""]
    while stack:
        rel = stack.pop()
        directory = os.path.join(top, rel) if rel else top
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            digest.update(f"{rel}\0!{exc.errno}\n".encode())
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                digest.update(f"{name}\0gone\n".encode("utf-8", "surrogateescape"))
                continue
            target = os.readlink(entry.path) if entry.is_symlink() else ""
            digest.update(f"{name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0"
                          f"{st.st_ctime_ns}\0{st.st_ino}\0{st.st_dev}\0{target}\n"
                          .encode("utf-8", "surrogateescape"))
            if entry.is_dir(follow_symlinks=False):
                stack.append(name)
            elif entry.is_file(follow_symlinks=False) and \
                    max(st.st_mtime_ns, st.st_ctime_ns) >= fresh_after_ns:
                fresh.append(name)
    return fresh


def _module_signatures() -> list[list[Any]]:
    """The files of the non-standard-library modules this process has imported."""
    import sysconfig

    stdlib = tuple(os.path.join(sysconfig.get_paths()[key], "")
                   for key in ("stdlib", "platstdlib"))
    files = sorted({f for m in list(sys.modules.values())
                    if isinstance(f := getattr(m, "__file__", None), str)
                    and not f.startswith(stdlib)})
    return [[f, _signature(f)] for f in files]


def _tool_signatures(tools: Iterable[str]) -> list[list[Any]]:
    """Where ``PATH`` finds each tool now, and that file's signature."""
    import shutil

    rows = []
    for tool in sorted(set(tools)):
        found = shutil.which(tool)
        real = os.path.realpath(found) if found else None
        rows.append([tool, real, _signature(real) if real else None])
    return rows


def _difference(receipt: Receipt, observed: Observation) -> str | None:
    """Why the receipt does not answer this observation, or None when it does."""
    for part, value in observed.parts.items():
        if receipt.parts.get(part) != value:
            return f"the {part} changed"
    for name, content in receipt.fresh.items():
        if _content(os.path.join(observed.app_dir, name)) != content:
            return f"{name} changed within a timestamp tick"
    for path, signature in receipt.modules:
        if _signature(path) != signature:
            return f"{path} changed"
    if receipt.tools and _tool_signatures(t[0] for t in receipt.tools) != receipt.tools:
        return "a build tool on PATH changed"
    run_image = receipt.run_image
    if isinstance(run_image, RunImageFile):
        if _signature(run_image.file) != run_image.signature:
            return "the run image changed"
    elif not _store_names(run_image.store, [run_image.name], run_image.digest):
        return "the run image's reference moved"
    outputs = receipt.outputs
    if not _store_names(outputs.store, outputs.names, outputs.digest):
        return "the store no longer names the built image"
    blobs = BlobDir(Path(outputs.store) / "blobs",
                    Path(outputs.ledger) if outputs.ledger else None)
    for digest in outputs.blobs:
        try:
            # Cheap while the stamp is the recorded one; hashed again (once) when it moved.
            if not blobs.trusted(digest):
                return f"the store lost blob {digest} or it is corrupt"
        except ValueError:
            return f"the receipt names a bad digest {digest!r}"
    return None


def _store_names(store: str, names: Sequence[str], digest: str) -> bool:
    """Whether the store at ``store`` names ``digest`` under every one of ``names``, only."""
    if not store or not names or not digest:
        return False
    try:
        index = json.loads((Path(store) / "index.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list) or \
            not all(isinstance(e, dict) for e in index["manifests"]):
        return False  # a damaged index: a full build says what is wrong with it
    named: dict[str, set[str]] = {}
    for entry in index.get("manifests") or ():
        # transports.oci_layout.ref_name's rule, read here without importing the image model.
        name = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if name is not None:
            named.setdefault(name, set()).add(entry.get("digest"))
    return all(named.get(name) == {digest} for name in names)
