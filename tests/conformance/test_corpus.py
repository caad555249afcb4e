"""The corpus itself: each case names its AWS source; the unverified ones are few and listed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import runner

README = Path(__file__).resolve().parent / "README.md"
SOURCED = "cannot be unverified"


def _get(path: str) -> dict[str, Any]:
    return {"method": "GET", "path": path, "headers": []}


def _write(directory: Path, name: str, **fields: Any) -> None:
    case = {
        "name": name,
        "format": "apigw-v1",
        "request": {"method": "GET", "path": "/x", "headers": []},
        **fields,
    }
    (directory / f"{name}.json").write_text(json.dumps(case), encoding="utf-8")


def _readme_unverified() -> set[str]:
    section = README.read_text(encoding="utf-8").split("## Unverified cases", 1)[1]
    section = section.split("\n## ", 1)[0]
    return set(re.findall(r"^- `([a-z0-9-]+)`", section, re.MULTILINE))


def test_every_case_has_a_source_or_a_listed_reason() -> None:
    cases = runner.load_cases()
    unverified = {c.name for c in cases if c.unverified is not None}
    assert all(c.source or c.unverified for c in cases)
    assert len(unverified) <= runner.MAX_UNVERIFIED
    assert _readme_unverified() == unverified


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one"),
        ({"source": "docs", "unverified": "why"}, "exactly one"),
        ({"source": ""}, "exactly one"),
        ({"source": 7}, "exactly one"),
        ({"unverified": "why", "request": _get("/a%2Fb")}, SOURCED),
        ({"unverified": "why", "request": _get("/a?b=c+d")}, SOURCED),
        ({"unverified": "why", "env": {"STAGE": "dev"}}, SOURCED),
        ({"unverified": "why", "expect_event": {"requestContext.path": "/x"}}, SOURCED),
        ({"unverified": "why", "format": "apigw-v2", "behavior": {"return": "s"}}, SOURCED),
    ],
)
def test_provenance_is_refused_when_missing_or_hiding_a_fidelity_case(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    _write(tmp_path, "hostile", **fields)
    with pytest.raises(AssertionError, match=message):
        runner.load_cases(tmp_path)


def test_more_than_the_allowed_unverified_cases_is_refused(tmp_path: Path) -> None:
    for n in range(runner.MAX_UNVERIFIED + 1):
        _write(tmp_path, f"case-{n}", unverified="no AWS source")
    with pytest.raises(AssertionError, match="unverified cases"):
        runner.load_cases(tmp_path)
    (tmp_path / "case-0.json").unlink()
    assert len(runner.load_cases(tmp_path)) == runner.MAX_UNVERIFIED
