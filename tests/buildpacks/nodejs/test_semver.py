"""npm's range grammar judged on exact releases, and what each request form resolves to."""

from __future__ import annotations

import pytest

from buildpacks.nodejs.semver import Range, RangeError, format_version, parse_release
from buildpacks.nodejs.versions import (
    DEFAULT_MAJOR,
    NodeVersion,
    bundled_npm_major,
)
from lifecycle.errors import BuildpackFailed

PUBLISHED = [parse_release(v) for v in (
    "18.0.0", "18.19.1", "18.20.4", "19.9.0", "20.0.0", "20.10.0", "20.11.1", "20.18.0",
    "21.7.3", "22.0.0", "22.11.0", "22.12.0", "23.3.0", "24.1.0")]
RELEASES = [v for v in PUBLISHED if v is not None]


@pytest.mark.parametrize(("spec", "newest"), [
    ("20", "20.18.0"),
    ("20.x", "20.18.0"),
    ("20.11", "20.11.1"),
    ("20.11.x", "20.11.1"),
    ("v20.11.1", "20.11.1"),
    ("=20.10.0", "20.10.0"),
    ("^20.10.0", "20.18.0"),
    ("^20.19", None),
    ("~20.10", "20.10.0"),
    ("~20", "20.18.0"),
    (">=18", "24.1.0"),
    (">= 18 < 21", "20.18.0"),
    (">18.20.4 <20", "19.9.0"),
    ("<=20.11", "20.11.1"),
    ("<20", "19.9.0"),
    ("18 || 22", "22.12.0"),
    ("18.x || >=23 <24", "23.3.0"),
    ("18 - 20.10", "20.10.0"),
    ("18 - 20", "20.18.0"),
    ("*", "24.1.0"),
    ("", "24.1.0"),
    ("^0.1.2", None),
    ("20.0.0-rc.1", None),
    (">*", None),
])
def test_newest_release_in_range(spec: str, newest: str | None) -> None:
    found = Range.parse(spec).newest(RELEASES)
    assert (format_version(found) if found else None) == newest, spec


@pytest.mark.parametrize("spec", ["banana", ">=18 <", "20.1.2.3", "1.2.3 - ", "=>20"])
def test_ranges_npm_does_not_accept_are_refused(spec: str) -> None:
    with pytest.raises(RangeError):
        Range.parse(spec)


def test_pre_releases_and_junk_are_not_releases() -> None:
    assert parse_release("22.0.0-nightly2024") is None
    assert parse_release("latest") is None
    assert parse_release("v22.1.0") == (22, 1, 0)


@pytest.mark.parametrize(("requested", "newest"), [
    ("nodejs20", "20.18.0"),       # a descriptor runtime
    ("20.x", "20.18.0"),           # "nodejs20.x", after the prefix is dropped
    ("v20", "20.18.0"),            # .nvmrc forms
    ("v20.11", "20.11.1"),
    ("lts/iron", "20.18.0"),
    ("lts/*", f"{DEFAULT_MAJOR}.12.0"),
    ("*", f"{DEFAULT_MAJOR}.12.0"),
    ("node", "24.1.0"),
])
def test_request_forms_resolve(requested: str, newest: str) -> None:
    found = NodeVersion(requested, "test").to_range().newest(RELEASES)
    assert found is not None and format_version(found) == newest


def test_unknown_lts_codename_and_bad_range_fail_naming_the_request() -> None:
    with pytest.raises(BuildpackFailed, match=r"unknown LTS codename; known: .*iron"):
        NodeVersion("lts/banana", ".nvmrc").to_range()
    with pytest.raises(BuildpackFailed, match=r"'>=twenty' \(package.json engines.node\)"):
        NodeVersion(">=twenty", "package.json engines.node").to_range()


@pytest.mark.parametrize(("node", "npm"), [
    ((16, 4, 0), 7), ((16, 20, 2), 8), ((18, 0, 0), 8), ((18, 16, 0), 9), ((18, 20, 4), 10),
    ((20, 0, 0), 9), ((20, 9, 0), 9), ((20, 10, 0), 10), ((21, 1, 0), 10), ((22, 12, 0), 10),
    ((23, 0, 0), 10), ((24, 0, 0), 11), ((26, 1, 0), 11),
])
def test_bundled_npm_major_follows_the_release_notes(node: tuple[int, int, int],
                                                      npm: int) -> None:
    assert bundled_npm_major(node) == npm
