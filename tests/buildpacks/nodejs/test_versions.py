"""Which Node.js an app asks for, and whether a major version meets a range."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildpacks.nodejs.versions import NodeVersion, host_major, requested_version, satisfies
from lifecycle.descriptor import Function


@pytest.mark.parametrize(("spec", "yes", "no"), [
    ("20", [20], [18, 22]),
    ("20.x", [20], [18, 21]),
    ("^18.17.0", [18], [17, 19, 20]),
    ("~20.1", [20], [21]),
    (">=18", [18, 20, 24], [16]),
    (">= 18", [18, 22], [16]),
    (">18", [19, 20], [18]),
    (">18.5", [18, 19], [17]),
    ("<20", [18, 19], [20]),
    ("<20.1", [20, 18], [21]),
    (">=18 <21", [18, 20], [17, 21]),
    ("16 || 20", [16, 20], [18]),
    ("18 - 20", [18, 19, 20], [17, 21]),
    ("v20.11.1", [20], [18]),
    ("*", [0, 18, 99], []),
    ("lts/iron", [20], []),
])
def test_satisfies_judges_majors(spec: str, yes: list[int], no: list[int]) -> None:
    assert all(satisfies(spec, major) for major in yes), spec
    assert not any(satisfies(spec, major) for major in no), spec


def test_major_is_the_lowest_allowed_or_none_for_any() -> None:
    assert NodeVersion(">=18", "x").major == 18
    assert NodeVersion("20.x", "x").major == 20
    assert NodeVersion("*", "x").major is None


def test_descriptor_runtime_wins_then_engines_then_nvmrc(tmp_path: Path) -> None:
    (tmp_path / ".nvmrc").write_text("v22.3.0\n")
    engines = {"engines": {"node": "^20.0.0"}}
    fns = (Function("api", handler="a.handler", runtime="python3.11"),
           Function("b", handler="b.handler", runtime="nodejs24"))
    assert requested_version(fns, engines, tmp_path) == NodeVersion("24", "runtime of function "
                                                                          "'b'")
    assert requested_version((), engines, tmp_path) == NodeVersion("^20.0.0",
                                                                   "package.json engines.node")
    assert requested_version((), {}, tmp_path) == NodeVersion("v22.3.0", ".nvmrc")
    (tmp_path / ".nvmrc").unlink()
    assert requested_version((), {}, tmp_path) == NodeVersion("*", "default")


def test_host_major_reads_node_version_output() -> None:
    assert host_major("v20.20.2\n") == 20
    assert host_major("garbage") is None
