"""The app layer's stat index: a no-change rebuild re-references the app blob without reading
a single file.

The rule:

- The key hashes, for every entry of the app scan, its name, kind, mode, size, link target
  and, for regular files, ``(mtime_ns, ctime_ns, inode, device)``; plus everything else that
  shapes the layer (include/exclude globs, buildpack links, file time, compressor). Added,
  removed, renamed or re-moded files change the key.
- Content changes are caught by ctime: any write to a file sets its ctime to the current time,
  and no user call can set it back (``touch -d`` and ``os.utime`` change mtime only). So when a
  file's mtime or ctime is not older than the start of the previous scan (less one second of
  timestamp granularity), the layer is rebuilt, even when the key matches: an edit that keeps
  the size and restores the mtime is still seen, and so is a file changed while the previous
  scan was reading it.
- Only equal keys with no such file re-reference the previous blob. What this trusts is the
  clock: setting the system time backwards can hide an edit (as it can from make and git).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.cache.layers import BlobInfo
from lifecycle.image.blobs import write_atomic
from lifecycle.image.tree import Entry

GRANULARITY_NS = 1_000_000_000
INDEX_VERSION = 1


@dataclass(frozen=True)
class Scan:
    """One scan of the app: its entries, when it started, and the key they hash to."""

    entries: list[Entry]
    started_ns: int
    key: str
    newest_ns: int


def scan_key(entries: Sequence[Entry], shape: Mapping[str, Any]) -> tuple[str, int]:
    """Hash the entries' metadata and the layer's shape; also return the newest file time."""
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode())
    newest = 0
    for entry in entries:
        stamp = entry.stamp
        if stamp is not None:
            newest = max(newest, stamp[0], stamp[1])
        digest.update(f"{entry.name}\0{entry.kind}\0{entry.mode}\0{entry.size}\0"
                      f"{entry.target}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), newest


def now_ns() -> int:
    """Wall-clock time in ns, comparable with file times."""
    return time.time_ns()


@dataclass(frozen=True)
class AppIndex:
    """The record of the previous build's app layer."""

    path: Path

    def lookup(self, scan: Scan) -> BlobInfo | None:
        """The previous blob when the scan matches and no file is racy, else None."""
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != INDEX_VERSION or data["key"] != scan.key:
                return None
            if scan.newest_ns >= int(data["started_ns"]) - GRANULARITY_NS:
                return None
            return BlobInfo(**data["blob"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, scan: Scan, blob: BlobInfo) -> None:
        """Record this build's app layer (atomically: a torn index would only cost a rebuild)."""
        write_atomic(self.path, json.dumps({"version": INDEX_VERSION, "key": scan.key,
                                            "started_ns": scan.started_ns,
                                            "blob": blob.__dict__}).encode(), durable=False)
