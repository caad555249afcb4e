"""Registry image names: ``HOST/REPO[:TAG|@DIGEST]``, Docker Hub's spellings, ECR hosts."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import NoReturn

from lifecycle.errors import InvalidReference

DOCKER_HUB = "docker.io"
# Where docker.io's registry API really answers; docker and skopeo talk to this host.
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_ECR_RE = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)
_FORM = "HOST/REPO[:TAG|@sha256:DIGEST], e.g. docker.io/library/alpine:3"


@dataclass(frozen=True)
class ImageName:
    """One image in a registry: ``host`` as configured (``docker.io`` for Docker Hub)."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def repo_path(self) -> str:
        """``HOST/REPO``, the name without tag or digest."""
        return f"{self.host}/{self.repository}"

    def pinned(self, digest: str) -> ImageName:
        """This repository at ``digest`` (the tag dropped)."""
        return replace(self, tag=None, digest=digest)

    def tagged(self, tag: str) -> ImageName:
        """This repository at ``tag``."""
        return replace(self, tag=tag, digest=None)

    def in_repository(self, host: str, repository: str) -> ImageName:
        """The same tag or digest in another repository (a mirror's, for instance)."""
        return replace(self, host=host, repository=repository)

    def __str__(self) -> str:
        at = f"@{self.digest}" if self.digest else f":{self.tag or DEFAULT_TAG}"
        return f"{self.host}/{self.repository}{at}"


def parse_name(text: str) -> ImageName:
    """Parse ``HOST/REPO[:TAG|@DIGEST]``; a first part that is no host means docker.io."""
    rest = text
    digest: str | None = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST_RE.fullmatch(digest):
            _fail(text, f"{digest!r} is not a digest (sha256:<64 hex>)")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST_RE.fullmatch(first):
            _fail(text, f"{first!r} is not a registry host")
        host, repository = first, remainder
    else:
        host, repository = DOCKER_HUB, rest
    tag: str | None = None
    if digest is None:
        repository, colon, maybe_tag = repository.rpartition(":")
        if not colon:
            repository, maybe_tag = maybe_tag, DEFAULT_TAG
        if not _TAG_RE.fullmatch(maybe_tag):
            _fail(text, f"{maybe_tag!r} is not a tag (1-128 of A-Z a-z 0-9 _ . -)")
        tag = maybe_tag
    host = canonical_host(host)
    if host == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or len(repository) > 255 or not _REPO_RE.fullmatch(repository):
        _fail(text, f"{repository!r} is not a repository name (lowercase, '/'-separated)")
    return ImageName(host, repository, tag, digest)


def canonical_host(host: str) -> str:
    """The host as settings and credentials know it: Docker Hub's aliases become docker.io."""
    lowered = host.lower()
    return DOCKER_HUB if lowered in _HUB_ALIASES else lowered


def api_host(host: str) -> str:
    """The host that answers the registry API for ``host`` (docker.io answers elsewhere)."""
    return DOCKER_HUB_API if canonical_host(host) == DOCKER_HUB else host


def split_host_port(host: str) -> tuple[str, int | None]:
    """``"h:5000"`` → ``("h", 5000)``; brackets of an IPv6 literal are removed."""
    if host.startswith("["):
        literal, _, tail = host[1:].partition("]")
        return literal, int(tail[1:]) if tail.startswith(":") else None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (with or without a port) is this machine's loopback."""
    name, _ = split_host_port(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def ecr_region(host: str) -> str | None:
    """The AWS region of an Amazon ECR registry host, else None."""
    name, _ = split_host_port(host)
    match = _ECR_RE.fullmatch(name.lower())
    return match.group("region") if match else None


def _fail(text: str, why: str) -> NoReturn:
    raise InvalidReference(f"failed to parse registry image name {text!r}: {why}", hint=_FORM)
