"""Detect: ordered groups, optional members, plan resolution, and the reasons users read."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lifecycle import plugins
from lifecycle.descriptor import Descriptor, GroupEntry
from lifecycle.errors import BuildpackDetectError
from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    Require,
    hookimpl,
)
from lifecycle.phases.detect import NoGroupPassed, detect

log = logging.getLogger("test")


@dataclass
class Voter:
    id: str
    result: DetectResult | Exception
    priority: int = 100
    version: str = "1.0.0"
    api: str = BUILDPACK_API
    seen: list[Any] = field(default_factory=list)

    def detect(self, ctx: DetectContext) -> DetectResult:
        self.seen.append(ctx)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def build(self, ctx: BuildContext) -> BuildResult:
        return BuildResult()


class Plugin:
    def __init__(self, *bps: Any) -> None:
        self.bps = list(bps)

    @hookimpl
    def hybridless_buildpacks(self) -> list[Any]:
        return self.bps


def registry(*bps: Any) -> plugins.Registry:
    return plugins.load([Plugin(*bps)], entry_points=False, env={})


def test_first_passing_group_in_priority_order_wins(tmp_path: Path) -> None:
    a = Voter("a", DetectResult.fails("no a.txt"), priority=1)
    b = Voter("b", DetectResult.passes("found b"), priority=2)
    c = Voter("c", DetectResult.passes("found c"), priority=3)
    outcome = detect(tmp_path, Descriptor(), registry(c, b, a), log=log)
    assert [lp.id for lp in outcome.group] == ["b"]
    assert [t.group for t in outcome.trials] == [("a",), ("b",)]
    assert c.seen == []


def test_no_group_passes_reports_every_reason(tmp_path: Path) -> None:
    a = Voter("a", DetectResult.fails("no package.json"))
    b = Voter("b", DetectResult.fails("no requirements.txt"))
    with pytest.raises(NoGroupPassed) as info:
        detect(tmp_path, Descriptor(), registry(a, b), log=log)
    text = str(info.value)
    assert "no package.json" in text and "no requirements.txt" in text
    assert info.value.exit_code == 20


def test_optional_member_drops_out_and_plan_resolves(tmp_path: Path) -> None:
    provider = Voter("provider", DetectResult.passes(provides=("node",)))
    user = Voter("user", DetectResult.passes(requires=(Require("node", {"v": "20"}),)))
    extra = Voter("extra", DetectResult.fails("not needed"))
    desc = Descriptor(group=(GroupEntry("provider"), GroupEntry("extra", optional=True),
                             GroupEntry("user")))
    outcome = detect(tmp_path, desc, registry(provider, user, extra), log=log)
    assert [lp.id for lp in outcome.group] == ["provider", "user"]
    (entry,) = outcome.plan
    assert (entry.name, entry.provider, dict(entry.metadata), entry.required_by) == (
        "node", "provider", {"v": "20"}, ("user",))


def test_unresolved_requirement_fails_the_group_with_a_reason(tmp_path: Path) -> None:
    user = Voter("user", DetectResult.passes(requires=(Require("python"),)))
    with pytest.raises(NoGroupPassed) as info:
        detect(tmp_path, Descriptor(), registry(user), log=log)
    assert "requires 'python', which no buildpack in the group provides" in str(info.value)


def test_raising_buildpack_exits_21_naming_it(tmp_path: Path) -> None:
    bad = Voter("third/party", RuntimeError("boom"))
    with pytest.raises(BuildpackDetectError) as info:
        detect(tmp_path, Descriptor(), registry(bad), log=log)
    assert "'third/party'" in str(info.value) and "boom" in str(info.value)
    assert info.value.exit_code == 21


def test_requested_buildpacks_override_order_and_unknown_is_usage_error(tmp_path: Path) -> None:
    a = Voter("a", DetectResult.passes(), priority=1)
    b = Voter("b", DetectResult.passes(), priority=2)
    outcome = detect(tmp_path, Descriptor(), registry(a, b), requested=["b"], log=log)
    assert [lp.id for lp in outcome.group] == ["b"]
    with pytest.raises(Exception, match="unknown buildpack 'zzz'; available: a, b"):
        detect(tmp_path, Descriptor(), registry(a, b), requested=["zzz"], log=log)


def test_api_mismatch_is_rejected_by_name() -> None:
    old = Voter("old", DetectResult.passes(), api="9.0")
    reg = registry(old)
    assert "old" not in reg.buildpacks
    assert any(p.name == "old" and "targets buildpack API 9.0" in p.message
               for p in reg.problems)


def test_allow_and_block_lists() -> None:
    a = Voter("a", DetectResult.passes())
    b = Voter("b", DetectResult.passes())
    reg = plugins.load([Plugin(a, b)], entry_points=False, env={"HYBRIDLESS_BUILDPACKS": "a"})
    assert list(reg.buildpacks) == ["a"]
    reg = plugins.load([Plugin(a, b)], entry_points=False,
                       env={"HYBRIDLESS_BUILDPACKS_BLOCK": "a"})
    assert list(reg.buildpacks) == ["b"]


def test_builtin_procfile_loads_through_the_entry_point_group() -> None:
    reg = plugins.load(env={})
    assert "hybridless/procfile" in reg.buildpacks
    assert "entry point" in reg.buildpacks["hybridless/procfile"].source


def test_entry_point_scan_is_remembered_until_a_path_directory_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os
    import sys

    watched = tmp_path / "site"
    watched.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(watched)])
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    real = plugins._entry_points(env)
    assert "procfile" in [ep.name for ep in real]
    memo = tmp_path / "cache" / "hybridless" / "entry-points.json"
    data = json.loads(memo.read_text())
    data["entry_points"] = [{"name": "remembered", "value": "x"}]
    memo.write_text(json.dumps(data))
    assert [ep.name for ep in plugins._entry_points(env)] == ["remembered"]
    (watched / "new.dist-info").mkdir()  # what installing a distribution does
    os.utime(watched, ns=(1, 1))
    assert [ep.name for ep in plugins._entry_points(env)] == [ep.name for ep in real]
