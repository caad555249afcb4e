"""The build context sent to the engine: the filtered app, then the additional files.

Filters, in order: the engine's default excludes (``.git``) and its secrets list
(:mod:`lifecycle.exclusions`: ``.env``, ``.npmrc``, the descriptor...), the descriptor's
include/exclude rules, the app's ``.dockerignore`` (Docker's rules: patterns
anchored at the root, ``**``, ``!`` exceptions, the last matching line wins). The
``additional-docker-files`` come last, replacing what the app had at their ``to`` path.
Nothing may lead outside the app directory: symlinks in the app are refused as in the app
layer, and an additional file whose real path leaves the app is refused.

The context is a tar stream made by our layer writer and sent as it is made: no copy of the
app is written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import exclusions
from lifecycle.descriptor import Descriptor, DockerfileSpec
from lifecycle.errors import DockerfileBuildFailed
from lifecycle.image import tarball, tree

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class Context:
    """The entries of a build context, in tar order."""

    entries: tuple[tree.Entry, ...]

    def stream(self, mtime: int) -> Iterator[bytes]:
        """The context as an uncompressed tar, in blocks."""
        return tarball.tar_bytes_iter(self.entries, mtime=mtime)

    @property
    def names(self) -> tuple[str, ...]:
        """The paths in the context (for messages and tests)."""
        return tuple(entry.name for entry in self.entries)


def collect(app_dir: Path, descriptor: Descriptor, spec: DockerfileSpec,
            default_excludes: Sequence[str], log: logging.Logger) -> Context:
    """The build context of ``spec`` for the app at ``app_dir``."""
    dockerfile = inside(app_dir, spec.dockerfile, "dockerfile")
    if not dockerfile.is_file():
        raise DockerfileBuildFailed(
            f"failed to find the Dockerfile {spec.dockerfile} in {app_dir}",
            hint="create it, or fix the function's 'dockerfile' key in the descriptor")
    entries = tree.scan(app_dir, prefix="", include=descriptor.include,
                        exclude=(*default_excludes, *descriptor.exclude), confine=True,
                        app_modes=True, warn=log.warning,
                        secrets=exclusions.patterns(app_dir, descriptor.path),
                        on_secret=lambda rel: log.warning("%s", exclusions.message(rel)))
    ignore = Dockerignore.read(app_dir / DOCKERIGNORE)
    entries = [e for e in entries if not ignore.excludes(e.name)]
    # The engine needs the Dockerfile itself whatever the filters say, as `docker build` does.
    wanted = [(spec.dockerfile.strip("/"), dockerfile)]
    for number, copy in enumerate(spec.additional_files):
        wanted.append((copy.target.strip("/"), inside(
            app_dir, copy.source, f"additional-docker-files[{number}].from")))
    for target, source in wanted:
        entries = _place(entries, target, source, app_dir)
    return Context(tuple(_fix_links(entries, app_dir)))


def inside(app_dir: Path, rel: str, key: str) -> Path:
    """``app_dir / rel`` when its real path stays in the app directory; refused otherwise."""
    path = app_dir / rel
    real, root = os.path.realpath(path), os.path.realpath(app_dir)
    if os.path.isabs(rel) or (real != root and not real.startswith(root + os.sep)):
        raise DockerfileBuildFailed(
            f"failed to prepare the Docker build context: {key} = {rel!r} leads outside the app "
            f"directory (to {real})",
            hint="keep Dockerfiles and additional files inside the app directory; copy "
                 "what they need there instead of linking to it")
    if not os.path.lexists(path):
        what = "the Dockerfile" if key == "dockerfile" else f"{key} ="
        raise DockerfileBuildFailed(
            f"failed to find {what} {rel!r} in {app_dir}",
            hint=f"create it, or fix the function's '{key}' in the descriptor")
    return path


def _place(entries: list[tree.Entry], target: str, source: Path, app_dir: Path
           ) -> list[tree.Entry]:
    """``entries`` with ``source`` (a file or directory) at ``target``, replacing what was there."""
    st = os.stat(source)
    if stat.S_ISDIR(st.st_mode):
        added = tree.scan(source, prefix=target, confine=True, app_modes=True)
    elif stat.S_ISREG(st.st_mode):
        parent = target.rpartition("/")[0]
        added = [*(tree.parents(parent) if parent else []),
                 tree.Entry(target, "file", (st.st_mode | 0o444) & 0o7755, st.st_size,
                            str(source))]
    else:
        raise DockerfileBuildFailed(f"failed to prepare the Docker build context: {source} is "
                                    "neither a file nor a directory")
    replaced = {e.name for e in added if e.kind != "dir"} | {target}
    kept = [e for e in entries
            if e.name not in replaced and not e.name.startswith(target + "/")]
    # A hard link to a replaced file must keep the app's content: it becomes a copy of it.
    kept = [_unlinked(e, app_dir) if e.kind == "hardlink" and e.target in replaced else e
            for e in kept]
    names = {e.name for e in kept}
    return kept + [e for e in added if not (e.kind == "dir" and e.name in names)]


def _unlinked(entry: tree.Entry, app_dir: Path) -> tree.Entry:
    source = app_dir / entry.name
    return tree.Entry(entry.name, "file", entry.mode, os.lstat(source).st_size, str(source))


def _fix_links(entries: list[tree.Entry], app_dir: Path) -> list[tree.Entry]:
    """Sorted entries where a hard link whose file was filtered out becomes that file."""
    ordered = sorted(entries, key=lambda e: e.name.encode())
    names = {e.name for e in ordered}
    fixed = []
    for entry in ordered:
        if entry.kind == "hardlink" and entry.target not in names:
            entry = _unlinked(entry, app_dir)
            names.add(entry.name)
        fixed.append(entry)
    return fixed


@dataclass(frozen=True)
class Dockerignore:
    """The rules of a ``.dockerignore`` file, as Docker applies them to context paths."""

    rules: tuple[tuple[re.Pattern[str], bool], ...] = ()

    @classmethod
    def read(cls, path: Path) -> Dockerignore:
        """Parse ``path``; no file means no rules."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise DockerfileBuildFailed(f"failed to read {path}: {exc}",
                                        hint="make it a readable UTF-8 text file") from exc
        rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line[1:].strip() if negate else line).strip("/")
            if pattern in ("", "."):
                continue
            rules.append((re.compile(_regex(pattern), re.DOTALL), negate))
        return cls(tuple(rules))

    def excludes(self, name: str) -> bool:
        """Whether context path ``name`` is excluded: the last rule matching it or a parent wins."""
        if not self.rules:
            return False
        parts = name.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for regex, negate in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = not negate
        return excluded


def _regex(pattern: str) -> str:
    """Go's ``filepath.Match`` syntax plus ``**`` (any number of directories), as Docker has it."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i < len(pattern):
            out.append(re.escape(pattern[i]))
            i += 1
        elif char == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            body = pattern[i:end]
            if body.startswith("^"):
                body = "!" + body[1:]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^/' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)
