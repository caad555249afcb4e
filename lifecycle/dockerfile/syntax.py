"""Read a Dockerfile far enough to plan its build: stages, ``FROM`` images, BuildKit-only syntax.

This is not a Dockerfile interpreter. It joins continued lines, reads the parser directives,
substitutes build args into ``FROM`` lines (``$X``, ``${X}``, ``${X:-default}``,
``${X:+alternative}``), and finds what the classic builder of Docker 20.10 cannot build, so
that the user reads one clear line instead of a builder error half way through the build.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lifecycle.errors import DockerfileBuildFailed

BASE_ARG = "HYBRIDLESS_IMAGE"
"""The build arg that carries the buildpacks' image in extend mode."""

_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_VARIABLE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
# A heredoc marker is a word of its own: "<<EOF", "<<-EOF", "<<'EOF'" (not "$((1<<2))").
_HEREDOC = re.compile(r"(?:^|\s)<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?(?=\s|$)")
# Flags the classic builder of Docker 20.10 does not know, per instruction; its error for them
# says nothing about BuildKit, so they are named here.
_BUILDKIT_FLAGS = {
    "RUN": ("--mount", "--network", "--security"),
    "COPY": ("--link", "--chmod", "--parents", "--exclude"),
    "ADD": ("--link", "--chmod", "--checksum", "--keep-git-dir", "--parents", "--exclude"),
}


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword in upper case, its text after the keyword, its first line."""

    keyword: str
    text: str
    line: int


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and what follows it."""

    index: int
    base: str
    """The image or stage the stage starts from, with build args substituted."""
    raw_base: str
    """The ``FROM`` operand as written."""
    name: str | None
    line: int
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    """The parts of a Dockerfile that the lifecycle plans with."""

    path: str
    stages: tuple[Stage, ...]

    @property
    def extends(self) -> bool:
        """Whether the last stage starts, directly or through earlier stages, from our image."""
        return is_base_arg(self.root_of(self.stages[-1]).raw_base)

    def root_of(self, stage: Stage) -> Stage:
        """Follow ``FROM <earlier stage>`` back to the stage that starts from an image."""
        names = {s.name: s for s in self.stages if s.name}
        seen = {stage.index}
        while stage.base.lower() in names and names[stage.base.lower()].index < stage.index:
            stage = names[stage.base.lower()]
            if stage.index in seen:
                break
            seen.add(stage.index)
        return stage

    @property
    def external_images(self) -> tuple[str, ...]:
        """The images ``FROM`` lines name that are neither stages, ``scratch`` nor ours."""
        earlier: set[str] = set()
        found: list[str] = []
        for stage in self.stages:
            base = stage.base
            if (base.lower() not in earlier and base != "scratch"
                    and not is_base_arg(stage.raw_base)
                    and base not in found):
                found.append(base)
            if stage.name:
                earlier.add(stage.name)
        return tuple(found)


def parse(text: str, path: str, *, build_args: Mapping[str, str], platform: str) -> Dockerfile:
    """Parse ``text`` (read from ``path``), refusing what the classic builder cannot build."""
    lines = text.splitlines()
    escape, first = _directives(lines, path)
    instructions = _instructions(lines, first, escape, path)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    current: list[Instruction] = []
    header: tuple[str, str, str | None, int] | None = None
    for ins in instructions:
        _refuse_buildkit(ins, path)
        if ins.keyword == "FROM":
            if header is not None:
                stages.append(Stage(len(stages), header[0], header[1], header[2], header[3],
                                    tuple(current)))
            # Like Docker, FROM sees only the ARGs declared before the first FROM.
            header = _from(ins, path, global_args, platform)
            current = []
        elif header is None:
            if ins.keyword != "ARG":
                raise _error(path, ins.line, f"{ins.keyword} before the first FROM",
                             "only ARG may come before the first FROM")
            name, _, default = ins.text.strip().partition("=")
            global_args[name.strip()] = build_args.get(name.strip(), _unquote(default.strip()))
        else:
            current.append(ins)
    if header is None:
        raise _error(path, 0, "no FROM instruction", f"start with 'ARG {BASE_ARG}' and "
                     f"'FROM ${{{BASE_ARG}}}' to extend the buildpacks' image, or FROM an image")
    stages.append(Stage(len(stages), header[0], header[1], header[2], header[3], tuple(current)))
    return Dockerfile(path, tuple(stages))


def _directives(lines: list[str], path: str) -> tuple[str, int]:
    """The escape character and the index of the first line after the parser directives."""
    escape = "\\"
    for index, line in enumerate(lines):
        match = _DIRECTIVE.fullmatch(line.strip())
        if not match:
            return escape, index
        key, value = match.group(1).lower(), match.group(2)
        if key == "syntax":
            raise _error(path, index + 1, f"'# syntax={value}' asks for a BuildKit frontend",
                         "this engine builds with the classic builder (Docker 20.10, no "
                         "BuildKit); remove the syntax line and BuildKit-only instructions")
        if key == "escape":
            if value not in ("\\", "`"):
                raise _error(path, index + 1, f"escape directive {value!r} is not \\ or `",
                             "use '# escape=\\' or '# escape=`'")
            escape = value
    return escape, len(lines)


def _instructions(lines: list[str], first: int, escape: str, path: str) -> list[Instruction]:
    """Join continued lines and drop comments and blank lines."""
    found: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, line in enumerate(lines[first:], start=first + 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue  # comment lines may sit inside a continued instruction
        if not parts:
            start = number
        continued = line.rstrip().endswith(escape)
        parts.append(line.rstrip()[:-1] if continued else line)
        if not continued:
            _add(found, " ".join(parts), start)
            parts = []
    if parts:
        _add(found, " ".join(parts), start)
    return found


def _add(found: list[Instruction], text: str, line: int) -> None:
    keyword, _, rest = text.strip().partition(" ")
    found.append(Instruction(keyword.upper(), rest.strip(), line))


def _refuse_buildkit(ins: Instruction, path: str) -> None:
    if ins.keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(ins.text):
        raise _error(path, ins.line, f"{ins.keyword} uses a heredoc (<<)",
                     "the classic builder of Docker 20.10 has no heredocs; copy a script from "
                     "the context and run it instead")
    for flag in _BUILDKIT_FLAGS.get(ins.keyword, ()):
        if re.search(rf"(^|\s){re.escape(flag)}(=|\s|$)", _flags(ins.text)):
            raise _error(path, ins.line, f"{ins.keyword} {flag} is BuildKit-only syntax",
                         "the classic builder of Docker 20.10 cannot build it; remove the flag "
                         "(see docs/reference.md §7)")


def _flags(text: str) -> str:
    """The leading ``--flag`` words of an instruction."""
    words = []
    for word in text.split():
        if not word.startswith("--"):
            break
        words.append(word)
    return " ".join(words)


def _from(ins: Instruction, path: str, args: Mapping[str, str], platform: str
          ) -> tuple[str, str, str | None, int]:
    words = ins.text.split()
    wanted = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--platform="):
            wanted = substitute(flag.partition("=")[2], args)
        else:
            raise _error(path, ins.line, f"FROM {flag} is not a flag the classic builder knows",
                         "FROM takes only --platform")
    if not words or len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise _error(path, ins.line, f"FROM {ins.text!r} is not 'FROM image [AS name]'",
                     "write FROM IMAGE or FROM IMAGE AS NAME")
    if wanted is not None and wanted != platform:
        raise _error(path, ins.line, f"FROM --platform={wanted} is not this engine's platform "
                     f"({platform})",
                     "the classic builder builds only for the engine's own platform; remove "
                     "--platform or set it to that platform")
    raw = words[0]
    if is_base_arg(raw) and BASE_ARG not in args:
        raise _error(path, ins.line, f"FROM uses ${{{BASE_ARG}}} but no 'ARG {BASE_ARG}' "
                     "comes before the first FROM",
                     f"add the line 'ARG {BASE_ARG}' at the top of the Dockerfile")
    # Our image's name is known only once the buildpacks have built it.
    base = (args.get(BASE_ARG) or raw) if is_base_arg(raw) else substitute(raw, args)
    if not base:
        raise _error(path, ins.line, f"FROM {raw} is empty once build args are substituted",
                     "declare the ARG with a default before the first FROM, or pass it in "
                     "docker-build-args")
    return base, raw, words[2].lower() if len(words) == 3 else None, ins.line


def is_base_arg(raw: str) -> bool:
    """Whether a ``FROM`` operand is ``$HYBRIDLESS_IMAGE`` or ``${HYBRIDLESS_IMAGE}``."""
    return raw in (f"${BASE_ARG}", f"${{{BASE_ARG}}}")


def substitute(text: str, args: Mapping[str, str]) -> str:
    """Expand ``$X``, ``${X}``, ``${X:-default}`` and ``${X:+alternative}`` from ``args``."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = args.get(name, "")
        if match.group(2) == "-":
            return value or match.group(3)
        if match.group(2) == "+":
            return match.group(3) if value else ""
        return value

    return _VARIABLE.sub(one, text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _error(path: str, line: int, what: str, hint: str) -> DockerfileBuildFailed:
    where = f"{path}:{line}" if line else path
    return DockerfileBuildFailed(f"failed to read Dockerfile {where}: {what}", hint=hint)
