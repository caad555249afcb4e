"""Release dates: parsed from InRelease heads, hostile heads refused, the newest wins."""

from __future__ import annotations

import pytest

from lifecycle.errors import BaseImageFetchError
from stacks.model import Recipe
from stacks.release import ReleaseDates, apt_lines, fetch, parse_date

HEAD = b"""-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Suite: stable-security
Codename: bookworm-security
Date: Sat, 05 Dec 2026 03:33:28 UTC
"""


def test_the_date_field_becomes_unix_seconds() -> None:
    assert parse_date(HEAD, "x") == 1796441608


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"Origin: Debian\nSuite: stable\n", "has no Date field"),
        (b"Date: yesterday\n", "is not a date"),
        (b"Date: Sat, 05 Dec 2026 03:33:28\n", "has no zone"),
        (b"<html>404 Not Found</html>", "has no Date field"),
    ],
)
def test_heads_without_a_usable_date_are_exit_31(head: bytes, why: str) -> None:
    with pytest.raises(BaseImageFetchError, match=why) as caught:
        parse_date(head, "http://mirror.example/dists/x/InRelease")
    assert caught.value.exit_code == 31


def test_the_epoch_is_the_newest_source() -> None:
    dates = ReleaseDates((("bookworm", 10), ("bookworm-updates", 30), ("bookworm-security", 20)))
    assert dates.epoch == 30


def test_sources_are_the_suite_its_updates_and_its_security_archive() -> None:
    recipe = Recipe("trixie", (), "http://m.example/debian", "http://s.example/debian-security")
    assert apt_lines(recipe) == [
        "deb http://m.example/debian trixie main",
        "deb http://m.example/debian trixie-updates main",
        "deb http://s.example/debian-security trixie-security main",
    ]


def test_an_unreachable_mirror_is_exit_31_naming_the_address() -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    recipe = Recipe("bookworm", (), "http://127.0.0.1:9/debian", "http://127.0.0.1:9/sec")
    with pytest.raises(BaseImageFetchError, match=r"127\.0\.0\.1:9/debian/dists/bookworm/"):
        fetch(recipe)
