"""Decide what goes into a layer: scan a host directory into sorted, image-relative entries.

A scan maps a host directory ``root`` to ``prefix`` inside the image (``var/task`` for the app,
``layers/<buildpack>/<layer>`` for a buildpack layer). The result is deterministic: entries are
sorted by name as UTF-8 bytes, and every parent directory of ``prefix`` is present as an entry,
because Lambda rejects layers that lack them. The directories of ``prefix`` itself are always
mode 0755 whatever the host directory's mode, so the non-root user can traverse them.

Selection rules, applied to paths relative to ``root`` with ``/`` separators:

- ``.git`` (a directory, or the file a worktree or submodule leaves) is ignored at any depth.
- Patterns follow the CNB ``project.toml`` include/exclude (gitignore-like) syntax:
  ``*`` matches within one path segment, ``?`` one character, ``[...]`` a character class
  (``[!...]`` negates), and ``**`` as a whole segment matches zero or more segments
  (``**/x``, ``a/**/b``, ``a/**``). A pattern containing a ``/`` other than a trailing one is
  anchored at ``root`` (a leading ``/`` is allowed and ignored); one without a ``/`` matches
  the basename at any depth. A trailing ``/`` makes it match directories only. Negation
  (``!pattern``) is not supported and is an error.
- A pattern that matches a directory matches everything under it: ``tests`` and ``tests/**``
  both cover the directory and its whole subtree.
- When ``include`` is non-empty, only matching paths go in, plus the directories on the way
  to them (so ``src/**`` brings ``src`` and everything in it).
- ``exclude`` is applied after ``include``: a matching path is dropped, and a matching
  directory drops its subtree.
- ``secrets`` (the engine's list, :mod:`lifecycle.exclusions`) is applied like ``exclude``,
  except to paths that an *explicit* include pattern matches (one whose last part is not just
  ``*`` or ``**``); each path it drops that would otherwise have gone in is passed to
  ``on_secret``, a directory once for its whole subtree.
- Names are checked for UTF-8 only once a path is selected, so an odd name inside an excluded
  directory does not fail the scan.

Kinds: regular files, directories and symlinks go in. Symlinks are never followed (a symlink to
a directory stays a symlink). Files that share an inode become one ``file`` entry (the first in
sorted order) and ``hardlink`` entries naming it. Sockets, FIFOs and devices are skipped and
reported through ``warn``.

``confine=True`` (the app directory) refuses symlinks that lead outside ``root``: absolute
targets, ``..`` escapes, and escapes through other symlinks, resolved hop by hop as the kernel
would. ``confine=False`` (buildpack layers, which hold links such as a venv's
``python -> /usr/bin/python3``) stores every target verbatim.

``app_modes=True`` makes app files readable and not writable by the image's non-root user:
read is added for everyone, group and other write are cleared, directories get exec for
everyone, files that are executable by anyone become executable by everyone, and
setuid/setgid/sticky bits are kept.
"""

from __future__ import annotations

import os
import re
import stat
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lifecycle.errors import BuildError

Kind = Literal["file", "dir", "symlink", "hardlink"]

# Linux gives up with ELOOP after this many symlink hops; a chain that long cannot reach a file
# at run time, so it cannot escape either.
_MAX_HOPS = 40
# The walk recurses once per level. Nothing an app needs is this deep, and refusing it here
# keeps a hostile tree from exhausting Python's stack (a traceback) long before PATH_MAX.
MAX_DEPTH = 256


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a layer: what the tar writer writes and where it reads the bytes from."""

    name: str
    kind: Kind
    mode: int
    size: int = 0
    source: str | None = None
    target: str | None = None
    # (mtime_ns, ctime_ns, inode, device) of a regular file, for the app layer's stat index;
    # not part of what is written, so it takes no part in equality.
    stamp: tuple[int, int, int, int] | None = field(default=None, compare=False)


def parents(prefix: str) -> list[Entry]:
    """Return directory entries (mode 0755) for ``prefix`` and each of its ancestors."""
    clean = _check_prefix(prefix)
    names: list[str] = []
    for part in clean.split("/") if clean else []:
        names.append(f"{names[-1]}/{part}" if names else part)
    return [Entry(name, "dir", 0o755) for name in names]


def scan(
    root: Path,
    *,
    prefix: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    confine: bool = True,
    app_modes: bool = False,
    warn: Callable[[str], None] | None = None,
    secrets: Sequence[str] = (),
    on_secret: Callable[[str], None] | None = None,
) -> list[Entry]:
    """Scan ``root`` into the sorted entries of a layer that places it at ``prefix``."""
    if not root.is_dir():
        raise BuildError(f"failed to scan {root}: not a directory")
    prefix = _check_prefix(prefix)
    scanner = _Scanner(
        root=str(root),
        include=_Patterns(include),
        exclude=_Patterns(exclude),
        secrets=_Patterns(secrets),
        explicit=_Patterns([p for p in include if _explicit(p)]),
        on_secret=on_secret or (lambda _rel: None),
        confine=confine,
        app_modes=app_modes,
        warn=warn or (lambda _message: None),
    )
    scanner.walk(scanner.root, "", inherited=not include)
    for rel in sorted(scanner.secret_hits, key=lambda rel: rel.encode("utf-8", "surrogateescape")):
        scanner.on_secret(rel)
    found = sorted(scanner.found, key=lambda item: item.rel.encode("utf-8"))

    entries = parents(prefix)
    first_of_inode: dict[tuple[int, int], str] = {}
    for item in found:
        name = f"{prefix}/{item.rel}" if prefix else item.rel
        if item.inode is not None:
            first = first_of_inode.setdefault(item.inode, name)
            if first != name:
                entries.append(Entry(name, "hardlink", item.mode, target=first))
                continue
        entries.append(
            Entry(name, item.kind, item.mode, item.size, item.source, item.target, item.stamp)
        )
    return entries


@dataclass(slots=True)
class _Found:
    rel: str
    kind: Kind
    mode: int
    size: int = 0
    source: str | None = None
    target: str | None = None
    inode: tuple[int, int] | None = None  # set only for files with more than one link
    stamp: tuple[int, int, int, int] | None = None


@dataclass
class _Scanner:
    root: str
    include: _Patterns
    exclude: _Patterns
    secrets: _Patterns
    explicit: _Patterns
    on_secret: Callable[[str], None]
    confine: bool
    app_modes: bool
    warn: Callable[[str], None]
    found: list[_Found] = field(default_factory=list)
    secret_hits: list[str] = field(default_factory=list)

    def walk(self, host_dir: str, rel_dir: str, *, inherited: bool, depth: int = 0) -> bool:
        """Collect one directory's selected children; True when any was selected."""
        if depth > MAX_DEPTH:
            shown = os.fsencode(rel_dir[:120]).decode("utf-8", "backslashreplace")
            raise BuildError(
                f"failed to scan {self.root}: directories nested deeper than {MAX_DEPTH} "
                f"levels ({shown}…)",
                hint="flatten the tree, or exclude that directory in project.toml")
        try:
            with os.scandir(host_dir) as listing:
                children = list(listing)
        except OSError as exc:
            raise BuildError(
                f"failed to scan {self.root}: cannot read {rel_dir or '.'}: {exc.strerror}",
                hint="make the directory readable by the user running the build",
            ) from exc
        selected = False
        for child in children:
            if child.name == ".git":
                continue
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            st = child.stat(follow_symlinks=False)
            fmt = stat.S_IFMT(st.st_mode)
            is_dir = fmt == stat.S_IFDIR
            if self.exclude.match(rel, is_dir=is_dir):
                continue
            included = inherited or self.include.match(rel, is_dir=is_dir)
            if self.secrets.match(rel, is_dir=is_dir) and \
                    not self.explicit.match(rel, is_dir=is_dir):
                if included:
                    self.secret_hits.append(rel + "/" if is_dir else rel)
                continue
            _check_name(self.root, rel)
            if is_dir:
                if self.walk(child.path, rel, inherited=included, depth=depth + 1) or included:
                    self.found.append(_Found(rel, "dir", self._mode(st.st_mode, is_dir=True)))
                    selected = True
                continue
            if not included:
                continue
            if fmt == stat.S_IFREG:
                inode = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
                mode = self._mode(st.st_mode, is_dir=False)
                stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
                self.found.append(
                    _Found(rel, "file", mode, st.st_size, child.path, inode=inode, stamp=stamp)
                )
            elif fmt == stat.S_IFLNK:
                target = os.readlink(child.path)
                if self.confine:
                    self._refuse_escape(rel, target)
                self.found.append(_Found(rel, "symlink", st.st_mode & 0o7777, target=target))
            else:
                shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
                self.warn(f"skipped {shown}: a {_special_kind(fmt)} cannot go into a layer")
                continue
            selected = True
        return selected

    def _mode(self, mode: int, *, is_dir: bool) -> int:
        mode &= 0o7777
        if not self.app_modes:
            return mode
        mode = (mode | 0o444) & ~0o022
        if is_dir or mode & 0o111:
            mode |= 0o111
        return mode

    def _refuse_escape(self, rel: str, target: str) -> None:
        hop = self._escape(rel, target)
        if hop is None:
            return
        via = "" if hop == f"{rel} -> {target}" else f", via {hop}"
        raise BuildError(
            f"failed to scan {self.root}: symlink {rel} points outside the directory "
            f"({rel} -> {target}{via})",
            hint="make the link relative and keep its target inside the directory, "
            "or replace the link with a copy of what it points at",
        )

    def _escape(self, rel: str, target: str) -> str | None:
        """Follow a link hop by hop inside root; return the hop that leaves root, if any."""
        hop = f"{rel} -> {target}"
        if target.startswith("/"):
            return hop
        stack = rel.split("/")[:-1]
        pending = deque(target.split("/"))
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    return hop
                stack.pop()
                continue
            stack.append(part)
            try:
                link = os.readlink(os.path.join(self.root, *stack))
            except OSError:
                continue  # not a link, or missing: the rest of the walk is plain path algebra
            hops += 1
            if hops > _MAX_HOPS:
                return None
            hop = f"{'/'.join(stack)} -> {link}"
            if link.startswith("/"):
                return hop
            stack.pop()
            pending.extendleft(reversed(link.split("/")))
        return None


class _Patterns:
    """A compiled list of include or exclude patterns."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._rules: list[tuple[re.Pattern[str], bool]] = [_compile(p) for p in patterns if p]

    def match(self, rel: str, *, is_dir: bool) -> bool:
        """Whether any pattern matches the root-relative path ``rel``."""
        return any(
            regex.fullmatch(rel) for regex, dirs_only in self._rules if is_dir or not dirs_only
        )


def _explicit(pattern: str) -> bool:
    """Whether a pattern names something rather than matching everything below a point."""
    last = pattern.strip("/").rpartition("/")[2]
    return last not in ("", "*", "**")


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid include/exclude pattern, or None when it is."""
    try:
        _compile(pattern)
    except BuildError as exc:
        return exc.message.partition(": ")[2]
    return None


def _compile(pattern: str) -> tuple[re.Pattern[str], bool]:
    if pattern.startswith("!"):
        raise BuildError(
            f"failed to read the include/exclude pattern {pattern!r}: negation is not supported",
            hint="list what to keep in include and what to drop in exclude",
        )
    dirs_only = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = "/" in body or pattern.startswith("/")
    segments = body.split("/")
    regex = "" if anchored else "(?:.*/)?"
    for index, segment in enumerate(segments):
        first, last = index == 0, index == len(segments) - 1
        if segment == "**":
            if first and last:
                regex += ".*"
            elif first:
                regex += "(?:.*/)?"
            elif last:
                regex += "(?:/.*)?"
            else:
                regex += "/(?:.*/)?"
            continue
        if not first and segments[index - 1] != "**":
            regex += "/"
        regex += _segment(segment)
    try:
        return re.compile(regex, re.DOTALL), dirs_only
    except re.error as exc:  # a character class such as [z-a]
        raise BuildError(
            f"failed to read the include/exclude pattern {pattern!r}: {exc}",
            hint="fix the pattern in project.toml; see docs/reference.md §3",
        ) from None


def _segment(segment: str) -> str:
    """Translate one glob segment; nothing in it may match a ``/``."""
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in segment[i + 1 :]:
            end = segment.index("]", i + 1)
            body = segment[i:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"[{'^/' if negate else ''}{re.escape(body).replace(chr(92) + '-', '-')}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _check_prefix(prefix: str) -> str:
    clean = prefix.strip("/")
    if clean and any(part in ("", ".", "..") for part in clean.split("/")):
        raise BuildError(f"failed to place a layer at {prefix!r}: not a plain relative path")
    return clean


def _check_name(root: str, rel: str) -> None:
    if rel.isascii():
        return
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BuildError(
            f"failed to scan {root}: the name {rel!r} is not valid UTF-8",
            hint="rename the file; image layers carry UTF-8 names",
        ) from None


def _special_kind(fmt: int) -> str:
    return {
        stat.S_IFSOCK: "socket",
        stat.S_IFIFO: "FIFO",
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
    }.get(fmt, "special file")
