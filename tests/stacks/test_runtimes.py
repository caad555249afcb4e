"""The runtime range syntax of stack files."""

from __future__ import annotations

import pytest

from stacks.runtimes import parse_range, parse_runtime


@pytest.mark.parametrize(
    ("entry", "served", "refused"),
    [
        ("nodejs18-24", ["nodejs18", "nodejs20.x", "nodejs24", "nodejs22.4"],
         ["nodejs16", "nodejs25", "python3.18"]),
        ("python3.10-13", ["python3.10", "python3.13", "python3"],
         ["python3.9", "python3.14", "python4.10", "nodejs3.11"]),
        ("python3.11", ["python3.11", "python3.11.7"], ["python3.12", "python3.1"]),
    ],
)
def test_range_serves_exactly_its_span(entry: str, served: list[str], refused: list[str]) -> None:
    parsed = parse_range(entry)
    assert str(parsed) == entry
    assert [r for r in served if not parsed.serves(parse_runtime(r))] == []
    assert [r for r in refused if parsed.serves(parse_runtime(r))] == []


@pytest.mark.parametrize(
    "hostile", ["", "nodejs", "18", "nodejs24-18", "nodejs18-", "node js18", "python3.10-3.13",
                "nodejs18-24; rm -rf /", "NODEJS18"],
)
def test_malformed_ranges_are_refused_with_an_example(hostile: str) -> None:
    with pytest.raises(ValueError, match=r"range|e\.g\."):
        parse_range(hostile)


@pytest.mark.parametrize("hostile", ["", "nodejs", "20", "nodejs-20", "python3..12", "node js"])
def test_malformed_runtimes_are_refused(hostile: str) -> None:
    with pytest.raises(ValueError, match="is not a runtime"):
        parse_runtime(hostile)
