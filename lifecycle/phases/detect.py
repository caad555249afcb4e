"""The detect phase: try ordered groups of buildpacks; the first group that resolves wins.

Every buildpack of every tried group votes, so that when nothing passes the user reads why
for each one. A required buildpack that fails fails its group; an optional one drops out. The
plan resolves when every requirement of the passing buildpacks is provided inside the group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.descriptor import Descriptor, Function
from lifecycle.errors import BuildpackDetectError, DetectFailed, LifecycleError
from lifecycle.hookspecs import DetectContext, DetectResult, PlanEntry
from lifecycle.plugins import Loaded, Registry


@dataclass(frozen=True)
class Member:
    """A buildpack's place in a group."""

    loaded: Loaded
    optional: bool = False


@dataclass(frozen=True)
class Vote:
    """One buildpack's detect result inside one trial."""

    id: str
    passed: bool
    reason: str
    optional: bool


@dataclass(frozen=True)
class Trial:
    """One group tried, with each buildpack's vote and why the group failed (if it did)."""

    group: tuple[str, ...]
    votes: tuple[Vote, ...]
    failure: str | None = None


@dataclass(frozen=True)
class DetectOutcome:
    """What detect hands to build: the passing group, its plan, inferred functions, the trials."""

    group: tuple[Loaded, ...]
    plan: tuple[PlanEntry, ...]
    functions: tuple[Function, ...]
    inferred: bool
    trials: tuple[Trial, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The ``detect --json`` document of docs/reference.md §1."""
        return {
            "passed": True,
            "group": [{"id": m.id, "version": m.buildpack.version} for m in self.group],
            "plan": [{"name": e.name, "provider": e.provider, "required_by": list(e.required_by),
                      "metadata": dict(e.metadata)} for e in self.plan],
            "functions": [f.name for f in self.functions],
            "inferred": self.inferred,
            "trials": trials_json(self.trials),
        }


def trials_json(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """Trials as plain data for ``--json`` output."""
    return [{"group": list(t.group), "failure": t.failure,
             "results": [{"id": v.id, "passed": v.passed, "reason": v.reason,
                          "optional": v.optional} for v in t.votes]} for t in trials]


class NoGroupPassed(DetectFailed):
    """Detect failed; carries the trials so ``--json`` can report them."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        lines = ["failed to detect: no buildpack group passed"]
        for trial in trials:
            lines.append(f"  group [{', '.join(trial.group)}]: {trial.failure}")
            for vote in trial.votes:
                mark = "pass" if vote.passed else ("skip" if vote.optional else "FAIL")
                lines.append(f"    {mark} {vote.id}: {vote.reason or '(no reason given)'}")
        super().__init__("\n".join(lines),
                         hint="add the file a buildpack looks for, a descriptor function, or "
                              "name a buildpack with --buildpack")
        self.trials = tuple(trials)


def groups(registry: Registry, descriptor: Descriptor, requested: Sequence[str]
           ) -> list[list[Member]]:
    """The ordered groups to try: ``--buildpack`` ids, else the descriptor's, else the default."""
    if requested:
        return [[Member(registry.get(bp_id)) for bp_id in requested]]
    if descriptor.group:
        return [[Member(registry.get(entry.id), entry.optional) for entry in descriptor.group]]
    return [[Member(loaded)] for loaded in registry.ordered()]


def detect(app_dir: Path, descriptor: Descriptor, registry: Registry, *,
           requested: Sequence[str] = (), platform_env: Mapping[str, str] | None = None,
           log: logging.Logger) -> DetectOutcome:
    """Run detect over the ordered groups; raise :class:`NoGroupPassed` (20) when none pass."""
    trials: list[Trial] = []
    for members in groups(registry, descriptor, requested):
        votes: list[tuple[Member, DetectResult]] = []
        for member in members:
            votes.append((member, _vote(member.loaded, app_dir, descriptor,
                                        platform_env or {}, log)))
        failure = _group_failure(votes)
        passing = [(m, r) for m, r in votes if r.passed]
        if failure is None and passing:
            plan = _resolve_plan(passing)
            if isinstance(plan, str):
                failure = plan
            else:
                trials.append(_trial(votes, None))
                functions, inferred = _functions(descriptor, passing)
                return DetectOutcome(tuple(m.loaded for m, _ in passing), plan, functions,
                                     inferred, tuple(trials))
        trials.append(_trial(votes, failure or "no buildpack in the group passed"))
    raise NoGroupPassed(trials)


def _vote(loaded: Loaded, app_dir: Path, descriptor: Descriptor,
          platform_env: Mapping[str, str], log: logging.Logger) -> DetectResult:
    bp = loaded.buildpack
    ctx = DetectContext(app_dir=app_dir, descriptor=descriptor,
                        options=descriptor.options_for(bp.id), platform_env=platform_env,
                        log=log.getChild(bp.id.replace("/", "."))
                        if hasattr(log, "getChild") else log)
    try:
        result = bp.detect(ctx)
    except LifecycleError as exc:
        # The buildpack refused the app on purpose (an unreadable Procfile): its own words.
        raise BuildpackDetectError(f"failed to detect: buildpack '{bp.id}': {exc.message}",
                                   hint=exc.hint) from exc
    except Exception as exc:
        raise BuildpackDetectError(
            f"failed to detect: buildpack '{bp.id}' {bp.version} raised "
            f"{type(exc).__name__}: {exc}",
            hint=f"this is a bug in '{bp.id}' ({loaded.source}); run with -v for the traceback, "
                 "or block it with HYBRIDLESS_BUILDPACKS_BLOCK",
        ) from exc
    if not isinstance(result, DetectResult):
        raise BuildpackDetectError(
            f"failed to detect: buildpack '{bp.id}' returned {type(result).__name__}, "
            "not a DetectResult")
    return result


def _group_failure(votes: Sequence[tuple[Member, DetectResult]]) -> str | None:
    failed = [m.loaded.id for m, r in votes if not r.passed and not m.optional]
    if failed:
        return f"required buildpack(s) did not pass: {', '.join(failed)}"
    return None


def _resolve_plan(passing: Sequence[tuple[Member, DetectResult]]) -> tuple[PlanEntry, ...] | str:
    providers: dict[str, str] = {}
    for member, result in passing:
        for name in result.provides:
            providers.setdefault(name, member.loaded.id)
    metadata: dict[str, dict[str, Any]] = {}
    required_by: dict[str, list[str]] = {}
    for member, result in passing:
        for req in result.requires:
            if req.name not in providers:
                return (f"'{member.loaded.id}' requires '{req.name}', which no buildpack "
                        "in the group provides")
            metadata.setdefault(req.name, {}).update(req.metadata)
            required_by.setdefault(req.name, []).append(member.loaded.id)
    return tuple(PlanEntry(name, providers[name], metadata.get(name, {}),
                           tuple(required_by.get(name, ())))
                 for name in sorted(providers))


def _functions(descriptor: Descriptor, passing: Sequence[tuple[Member, DetectResult]]
               ) -> tuple[tuple[Function, ...], bool]:
    if descriptor.functions:
        return descriptor.functions, False
    for _, result in passing:
        if result.functions:
            return result.functions, True
    return (), False


def _trial(votes: Sequence[tuple[Member, DetectResult]], failure: str | None) -> Trial:
    return Trial(tuple(m.loaded.id for m, _ in votes),
                 tuple(Vote(m.loaded.id, r.passed, r.reason, m.optional) for m, r in votes),
                 failure)
