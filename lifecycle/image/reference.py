"""Image references: the one syntax that names every source and sink (docs/reference.md §2).

Forms::

    name[:tag]                          the embedded local store
    oci:DIR[:TAG]                       an OCI image layout directory
    oci-archive:FILE[:TAG]              a tar of an OCI image layout
    docker-archive:FILE[:NAME:TAG]      what ``docker save`` writes and ``docker load`` reads
    docker-daemon:NAME[:TAG]            the local Docker engine
    docker://HOST/REPO[:TAG|@DIGEST]    a registry; the only form that means a registry

How a path and a tag are told apart, since paths may hold colons too:

* ``oci:`` and ``oci-archive:`` — the tag is the text after the LAST colon, but only when it
  is a valid tag and the text before it is a path that is neither empty nor a lone drive
  letter. So ``oci:C:\\images`` and ``oci:C:images`` are paths without a tag, ``oci:out:v1``
  is ``out`` tagged ``v1``, and a directory whose name ends in ``:word`` must be written with
  an explicit tag (``oci:dir:word:latest``).
* ``docker-archive:`` — the image name starts after the FIRST colon whose remainder is a valid
  ``NAME:TAG`` (NAME may carry a ``host:port/`` prefix); with no such colon, everything is the
  file path.
* Without a transport prefix the text is a store name, and a prefix that names a transport
  we do not know is an error rather than a store name.

Tags left out stay ``None`` on archive and layout references so that readers can fall back
to the only image present; writers use ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn, get_args

from lifecycle.errors import InvalidReference

Transport = Literal["store", "oci", "oci-archive", "docker-archive", "docker-daemon", "docker"]
TRANSPORTS: tuple[str, ...] = get_args(Transport)

DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HOST_RE = re.compile(
    r"(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_DRIVE_RE = re.compile(r"[A-Za-z]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_MAX_NAME = 255

# Transports other tools (skopeo, podman) know and we do not: naming them gets a clear
# "not supported" instead of being read as a store image called e.g. "dir".
_FOREIGN = frozenset(
    {"dir", "containers-storage", "ostree", "sif", "tarball", "http", "https", "file"}
)

VALID_FORMS = (
    "name[:tag] (local store), oci:DIR[:TAG], oci-archive:FILE[:TAG], "
    "docker-archive:FILE[:NAME:TAG], docker-daemon:NAME:TAG, docker://HOST/REPO[:TAG|@DIGEST]"
)


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; ``str()`` gives its canonical spelling back."""

    transport: Transport
    name: str = ""
    """Store image name, docker-archive/docker-daemon image name, or registry repository."""
    tag: str | None = None
    """The tag; ``None`` when an archive or layout reference leaves it out."""
    path: str = ""
    """File or directory of ``oci``, ``oci-archive`` and ``docker-archive`` references."""
    host: str = ""
    """Registry host (with port) of a ``docker://`` reference."""
    digest: str | None = None
    """Manifest digest of a ``docker://HOST/REPO@DIGEST`` reference."""

    @property
    def tag_or_default(self) -> str:
        """The tag, or ``latest`` when none was given."""
        return self.tag if self.tag is not None else DEFAULT_TAG

    @property
    def store_name(self) -> str:
        """``name:tag`` as the store and archives record it."""
        return f"{self.name}:{self.tag_or_default}"

    def __str__(self) -> str:
        if self.transport == "store":
            return self.store_name
        if self.transport in ("oci", "oci-archive"):
            suffix = f":{self.tag}" if self.tag is not None else ""
            return f"{self.transport}:{self.path}{suffix}"
        if self.transport == "docker-archive":
            suffix = f":{self.name}:{self.tag_or_default}" if self.name else ""
            return f"docker-archive:{self.path}{suffix}"
        if self.transport == "docker-daemon":
            return f"docker-daemon:{self.store_name}"
        at = f"@{self.digest}" if self.digest else f":{self.tag_or_default}"
        return f"docker://{self.host}/{self.name}{at}"


def parse(text: str) -> Reference:
    """Parse ``text`` in any form of docs/reference.md §2, or raise ``InvalidReference``."""
    if not text or text != text.strip():
        _fail(text, "it is empty or has surrounding spaces")
    if text.startswith("docker://"):
        return _parse_registry(text, text[len("docker://") :])
    prefix, colon, rest = text.partition(":")
    if colon and prefix in ("oci", "oci-archive"):
        path, tag = _split_path_tag(text, rest)
        return Reference(prefix, path=path, tag=tag)  # type: ignore[arg-type]
    if colon and prefix == "docker-archive":
        return _parse_docker_archive(text, rest)
    if colon and prefix == "docker-daemon":
        name, tag = _split_docker_name(text, rest)
        return Reference("docker-daemon", name=name, tag=tag or DEFAULT_TAG)
    if colon and prefix == "docker":
        _fail(text, "a registry reference is written docker://HOST/REPO[:TAG]")
    if colon and (prefix in _FOREIGN or (_SCHEME_RE.fullmatch(prefix) and rest.startswith("//"))):
        _fail(text, f"the transport {prefix + ':'!r} is unknown")
    return _parse_store(text)


def _parse_store(text: str) -> Reference:
    name, sep, tag = text.rpartition(":")
    if not sep:
        name, tag = text, DEFAULT_TAG
    elif "/" in tag:
        _fail(text, f"store names carry no registry host; for a registry write docker://{text}")
    _check_name(text, name)
    _check_tag(text, tag)
    return Reference("store", name=name, tag=tag)


def _split_path_tag(text: str, rest: str) -> tuple[str, str | None]:
    path, sep, tag = rest.rpartition(":")
    if sep and not path:
        _fail(text, "the path is empty")
    if sep and not tag:
        _fail(text, "the tag after the last ':' is empty")
    if not sep or _DRIVE_RE.fullmatch(path) or not _TAG_RE.fullmatch(tag):
        path, tag_or_none = rest, None
    else:
        tag_or_none = tag
    if not path:
        _fail(text, "the path is empty")
    return path, tag_or_none


def _parse_docker_archive(text: str, rest: str) -> Reference:
    start = 0
    while (colon := rest.find(":", start)) != -1:
        path, image = rest[:colon], rest[colon + 1 :]
        start = colon + 1
        if not path or _DRIVE_RE.fullmatch(path):
            continue
        name, sep, tag = image.rpartition(":")
        if sep and "/" not in tag and _TAG_RE.fullmatch(tag) and _is_docker_name(name):
            return Reference("docker-archive", path=path, name=name, tag=tag)
    if not rest:
        _fail(text, "the file path is empty")
    return Reference("docker-archive", path=rest)


def _split_docker_name(text: str, rest: str) -> tuple[str, str | None]:
    name, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        name, tag_or_none = rest, None
    else:
        _check_tag(text, tag)
        tag_or_none = tag
    if not _is_docker_name(name):
        _fail(text, f"{name!r} is not a valid image name ({_NAME_RULE})")
    return name, tag_or_none


def _parse_registry(text: str, rest: str) -> Reference:
    host, slash, remainder = rest.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        # No host, as skopeo reads it: Docker Hub.
        host, remainder = "docker.io", rest
    if not remainder:
        _fail(text, "it names no repository: write docker://HOST/REPO[:TAG]")
    if not _HOST_RE.fullmatch(host):
        _fail(text, f"{host!r} is not a registry host")
    repository = remainder.partition("@")[0].partition(":")[0]
    if host.lower() in ("docker.io", "index.docker.io") and "/" not in repository:
        # Docker Hub's official images live under library/.
        remainder = f"library/{remainder}"
    digest: str | None = None
    tag: str | None = None
    if "@" in remainder:
        remainder, _, digest = remainder.partition("@")
        if not _DIGEST_RE.fullmatch(digest):
            _fail(text, f"{digest!r} is not a digest (sha256:<64 hex>)")
    else:
        repo, sep, maybe_tag = remainder.rpartition(":")
        if sep:
            _check_tag(text, maybe_tag)
            remainder, tag = repo, maybe_tag
        else:
            tag = DEFAULT_TAG
    _check_name(text, remainder)
    return Reference("docker", host=host, name=remainder, tag=tag, digest=digest)


_NAME_RULE = "lowercase letters and digits, separated by '.', '_', '-' or '/'"
_TAG_RULE = "1 to 128 of A-Z a-z 0-9 '_' '.' '-', not starting with '.' or '-'"


def _is_docker_name(name: str) -> bool:
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST_RE.fullmatch(first):
            return False
        name = remainder
    return len(name) <= _MAX_NAME and _NAME_RE.fullmatch(name) is not None


def _check_name(text: str, name: str) -> None:
    if not name:
        _fail(text, "the image name is empty")
    if len(name) > _MAX_NAME:
        _fail(text, f"the image name is longer than {_MAX_NAME} characters")
    if not _NAME_RE.fullmatch(name):
        _fail(text, f"{name!r} is not a valid image name ({_NAME_RULE})")


def _check_tag(text: str, tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        _fail(text, f"{tag!r} is not a valid tag ({_TAG_RULE})")


def _fail(text: str, why: str) -> NoReturn:
    raise InvalidReference(
        f"failed to parse image reference {text!r}: {why}", hint=f"valid forms: {VALID_FORMS}"
    )
