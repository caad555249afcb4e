"""The Release dates of a recipe's sources, which set ``SOURCE_DATE_EPOCH`` for its build.

A recipe draws from the suite, ``<suite>-updates`` and ``<suite>-security``. Their newest
``Date:`` is the moment the package set was last changed, so it is the time a reproducible
image should carry: the same package set gives the same epoch and thus the same digest, and
any new package moves the epoch forward and rebuilds.
"""

from __future__ import annotations

import email.utils
import urllib.error
import urllib.request
from dataclasses import dataclass

from lifecycle.errors import BaseImageFetchError
from stacks.model import Recipe

TIMEOUT_S = 30
_MAX_HEAD = 64 * 1024  # Date is in the first lines; never read a whole signed file for it


@dataclass(frozen=True)
class ReleaseDates:
    """Each source's ``Date:`` as Unix seconds, in the order suite, updates, security."""

    sources: tuple[tuple[str, int], ...]

    @property
    def epoch(self) -> int:
        """``SOURCE_DATE_EPOCH`` for the build: the newest of the dates."""
        return max(date for _, date in self.sources)


def sources(recipe: Recipe) -> list[tuple[str, str]]:
    """(base URL, suite) of every apt source the recipe uses."""
    return [
        (recipe.mirror, recipe.suite),
        (recipe.mirror, f"{recipe.suite}-updates"),
        (recipe.security_mirror, f"{recipe.suite}-security"),
    ]


def apt_lines(recipe: Recipe) -> list[str]:
    """The sources as one-line apt ``deb`` entries, for mmdebstrap."""
    return [f"deb {url} {suite} main" for url, suite in sources(recipe)]


def fetch(recipe: Recipe) -> ReleaseDates:
    """Read the ``Date:`` of each source's ``InRelease`` (exit 31 when a mirror fails)."""
    found = []
    for url, suite in sources(recipe):
        address = f"{url}/dists/{suite}/InRelease"
        try:
            with urllib.request.urlopen(address, timeout=TIMEOUT_S) as answer:
                head = answer.read(_MAX_HEAD)
        except (urllib.error.URLError, OSError) as error:
            raise BaseImageFetchError(
                f"failed to read the Release date of {suite} from {address}: {error}",
                hint="check the network or proxy, or set the recipe's mirror keys",
            ) from error
        found.append((suite, parse_date(head, address)))
    return ReleaseDates(tuple(found))


def parse_date(head: bytes, where: str) -> int:
    """The ``Date:`` field of a Release file's first lines, as Unix seconds."""
    for raw in head.decode("utf-8", "replace").splitlines():
        if raw.startswith("Date:"):
            try:
                moment = email.utils.parsedate_to_datetime(raw[5:].strip())
            except (TypeError, ValueError) as error:
                raise BaseImageFetchError(
                    f"failed to read the Release date in {where}: {raw.strip()!r} is not a date"
                ) from error
            if moment.tzinfo is None:
                raise BaseImageFetchError(
                    f"failed to read the Release date in {where}: {raw.strip()!r} has no zone"
                )
            return int(moment.timestamp())
    raise BaseImageFetchError(
        f"failed to read the Release date in {where}: it has no Date field",
        hint="is the mirror URL a Debian archive? it should end in /debian or /debian-security",
    )
