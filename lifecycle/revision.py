"""The app's source revision for the build label: git's HEAD commit, read without ``git``.

The app tree is untrusted, and whatever this returns is written into the image's label. So
the answer is a commit id or nothing: only files inside the app's own ``.git`` directory are
read, only regular files, each bounded in size, and the result must look like an object id
(40 or 64 hex digits). A ``.git`` that is a symlink, or a ``gitdir:`` file (a worktree or a
submodule) naming a directory outside the app, gives no revision rather than a read elsewhere;
so does anything unreadable, non-UTF-8 or malformed. Starting ``git`` instead would run
whatever the app's ``.git/config`` asks for (``core.fsmonitor``), which is worse.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from lifecycle import safeio

_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# HEAD and loose refs are one line; packed-refs grows with the repository's tags.
_SMALL = 4096
_PACKED_LIMIT = 32 * 1024 * 1024
_SYMREF_HOPS = 5


def git_revision(app_dir: Path) -> str | None:
    """HEAD's commit id when ``app_dir`` is the top of a git work tree, else None."""
    try:
        git_dir = _git_dir(app_dir)
        if git_dir is None:
            return None
        return _resolve(git_dir, "HEAD")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _git_dir(app_dir: Path) -> Path | None:
    dot_git = app_dir / ".git"
    st = os.lstat(dot_git)
    if stat.S_ISDIR(st.st_mode):
        return dot_git
    if not stat.S_ISREG(st.st_mode):
        return None  # a symlink or anything stranger: not followed
    text = safeio.read_text(dot_git, root=app_dir, limit=_SMALL)
    if not text.startswith("gitdir:"):
        return None
    target = app_dir / text[len("gitdir:"):].strip()
    if not safeio.inside(target, app_dir) or not target.is_dir():
        return None
    return Path(os.path.realpath(target))


def _resolve(git_dir: Path, name: str) -> str | None:
    """Follow ``ref:`` lines from ``name`` to an object id, staying inside ``git_dir``."""
    for _hop in range(_SYMREF_HOPS):
        path = git_dir / name
        if safeio.is_regular(path, root=git_dir):
            value = safeio.read_text(path, root=git_dir, limit=_SMALL).strip()
        elif name.startswith("refs/"):
            return _packed(git_dir, name)
        else:
            return None
        if not value.startswith("ref:"):
            return value if _OBJECT_ID.fullmatch(value) else None
        name = value[len("ref:"):].strip()
        if not _plain_ref(name):
            return None
    return None


def _plain_ref(name: str) -> bool:
    parts = name.split("/")
    return (name.startswith("refs/") and "\\" not in name and "\0" not in name
            and all(part not in ("", ".", "..") for part in parts))


def _packed(git_dir: Path, ref: str) -> str | None:
    path = git_dir / "packed-refs"
    if not safeio.is_regular(path, root=git_dir):
        return None
    text = safeio.read_text(path, root=git_dir, limit=_PACKED_LIMIT)
    for line in text.splitlines():
        oid, _, name = line.partition(" ")
        if name == ref:
            return oid if _OBJECT_ID.fullmatch(oid) else None
    return None
