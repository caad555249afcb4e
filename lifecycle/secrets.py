"""Build secrets: ``--secret id=NAME,src=FILE|env=VAR``, staged for one build only.

Each secret is copied into a fresh 0700 directory as a 0600 file named by its id, for the
length of the build. Buildpacks get that file's path from ``ctx.secret(NAME)``; the container
executor mounts the directory read-only at ``/run/secrets``, so commands there see
``/run/secrets/NAME``. The directory is removed when the build ends, however it ends. Nothing
of a secret (its value, its source path, a digest of it) is kept anywhere else: the receipt
records only the option's text, which names a file or a variable, never a value.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UsageError

SECRETS_MOUNT = "/run/secrets"
"""Where build containers see the staged secrets."""
MAX_BYTES = 1 << 20
# A file name on every file system, and never a path: no separators, no dot names.
_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USAGE = "expected --secret id=NAME,src=FILE or --secret id=NAME,env=VAR"


@dataclass(frozen=True)
class SecretSpec:
    """One ``--secret`` option: the id and where the value comes from (a file or a variable)."""

    id: str
    file: Path | None = None
    variable: str | None = None


def parse(text: str) -> SecretSpec:
    """Parse one ``--secret`` value; a malformed one is a usage error (exit 2)."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("id", "src", "source", "env") or not value:
            raise UsageError(f"--secret {text!r}: cannot read {part!r}", hint=_USAGE)
        key = "src" if key == "source" else key
        if key in fields:
            raise UsageError(f"--secret {text!r}: {key} is given twice", hint=_USAGE)
        fields[key] = value
    name = fields.get("id")
    if name is None or not _ID.fullmatch(name):
        raise UsageError(f"--secret {text!r}: the id must be a file name made of letters, "
                         "digits, '.', '_' and '-' (not starting with '.' or '-')", hint=_USAGE)
    if ("src" in fields) == ("env" in fields):
        raise UsageError(f"--secret {text!r}: give exactly one of src=FILE and env=VAR",
                         hint=_USAGE)
    if "env" in fields:
        if not _VAR.fullmatch(fields["env"]):
            raise UsageError(f"--secret {text!r}: {fields['env']!r} is not a variable name",
                             hint=_USAGE)
        return SecretSpec(name, variable=fields["env"])
    return SecretSpec(name, file=Path(fields["src"]))


def parse_all(texts: Sequence[str]) -> tuple[SecretSpec, ...]:
    """Parse every ``--secret``; an id given twice is a usage error."""
    specs = tuple(parse(text) for text in texts)
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise UsageError(f"--secret id={spec.id} is given twice",
                             hint="give each secret once, under its own id")
        seen.add(spec.id)
    return specs


def _value(spec: SecretSpec, environ: Mapping[str, str]) -> bytes:
    """The secret's bytes, read once: a regular file of at most 1 MiB, or a set variable."""
    if spec.variable is not None:
        if spec.variable not in environ:
            raise UsageError(f"--secret id={spec.id},env={spec.variable}: {spec.variable} is "
                             "not set", hint=f"export {spec.variable} before building")
        return environ[spec.variable].encode()
    assert spec.file is not None
    where = f"--secret id={spec.id},src={spec.file}"
    try:
        # O_NONBLOCK: a FIFO given as the source must not hang the build before the check.
        fd = os.open(spec.file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"{where}: cannot open it ({exc.strerror})",
                         hint="name a readable file") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{where}: not a regular file", hint="name a readable file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise UsageError(f"{where}: larger than {MAX_BYTES} bytes",
                         hint="a secret is a credential file, not a payload")
    return data


@contextmanager
def staged(specs: Sequence[SecretSpec], environ: Mapping[str, str] | None = None,
           ) -> Iterator[Mapping[str, Path]]:
    """Write each secret into a private temporary directory; yield id → file; remove it all.

    With no secrets nothing is created and the mapping is empty.
    """
    if not specs:
        yield {}
        return
    environ = os.environ if environ is None else environ
    values = {spec.id: _value(spec, environ) for spec in specs}
    # mkdtemp makes the directory 0700; the files are 0600 from their first byte.
    directory = Path(tempfile.mkdtemp(prefix="hybridless-secrets-"))
    try:
        paths: dict[str, Path] = {}
        for name, data in values.items():
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            paths[name] = path
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def directory_of(paths: Mapping[str, Path]) -> Path | None:
    """The staging directory of ``staged``'s mapping (None without secrets)."""
    return next(iter(paths.values())).parent if paths else None
