"""One test (at least) per item of the author's contract, run through the lifecycle.testing kit.

Each test names the items it exercises with ``@pytest.mark.covers``; test_docs.py fails when
an item of lifecycle/hookspecs.py has no such test.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lifecycle import hookspecs, plugins
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed
from lifecycle.executor import HostExecutor
from lifecycle.hookspecs import (
    BUILDPACK_API,
    Append,
    BuildContext,
    Buildpack,
    BuildResult,
    Default,
    DetectContext,
    DetectResult,
    Executor,
    Layer,
    LayerProvider,
    PlanEntry,
    Prepend,
    Process,
    Require,
    RunResult,
    hookimpl,
)
from lifecycle.testing import BuildRun, DetectRun, Kit

MakeApp = Callable[..., Path]
Detect = Callable[..., DetectRun]
Build = Callable[..., BuildRun]
Register = Callable[..., None]


@dataclass
class Scripted:
    """A buildpack whose detect and build are functions the test supplies."""

    id: str
    on_detect: Callable[[DetectContext], Any] = lambda ctx: DetectResult.passes()
    on_build: Callable[[BuildContext], Any] = lambda ctx: BuildResult(
        processes=(Process("main", ("true",)),))
    version: str = "1.0.0"
    api: str = BUILDPACK_API
    priority: int = 100
    calls: list[str] = field(default_factory=list)

    def detect(self, ctx: DetectContext) -> DetectResult:
        self.calls.append("detect")
        result: DetectResult = self.on_detect(ctx)
        return result

    def build(self, ctx: BuildContext) -> BuildResult:
        self.calls.append("build")
        result: BuildResult = self.on_build(ctx)
        return result


def _keep(into: list[Any], value: Any, result: Any) -> Any:
    """Record ``value`` and return ``result``: lets a one-line hook remember what it saw."""
    into.append(value)
    return result


def _processes(*names: str) -> BuildResult:
    return BuildResult(processes=tuple(Process(name, ("true",)) for name in names))


# ------------------------------------------------------------------------------ registration


@pytest.mark.covers("hybridless_buildpacks", "hookimpl", "hookspec", "Hookspecs",
                    "PROJECT_NAME")
def test_plugins_register_through_the_one_hook() -> None:
    module = types.ModuleType("third_party")

    @hookimpl
    def hybridless_buildpacks() -> list[Any]:
        return [Scripted("third/party")]

    module.hybridless_buildpacks = hybridless_buildpacks  # type: ignore[attr-defined]

    class Raises:
        @hookimpl
        def hybridless_buildpacks(self) -> list[Any]:
            raise RuntimeError("boom")

    class WrongSignature:
        @hookimpl
        def hybridless_buildpacks(self, stack: str) -> list[Any]:  # the hook takes nothing
            return [Scripted("never/seen")]

    registry = plugins.load([module, Raises(), WrongSignature()], entry_points=False, env={})
    assert list(registry.buildpacks) == ["third/party"]
    wrong, raised = registry.problems  # registration fails before any hook is called
    assert (raised.kind, raised.name, raised.source) == ("plugin", "inline-1", None)
    assert raised.message == "plugin 'inline-1' raised in hybridless_buildpacks(): " \
        "RuntimeError: boom"
    assert (wrong.kind, wrong.name) == ("plugin", "inline-2")
    assert wrong.message.startswith("plugin 'inline-2' could not be registered")
    assert "{'stack'}" in wrong.message
    assert hasattr(hookspecs.Hookspecs.hybridless_buildpacks,
                   f"{hookspecs.PROJECT_NAME}_spec")
    assert hookimpl.project_name == hookspecs.hookspec.project_name == "hybridless"


@pytest.mark.covers("ENTRY_POINT_GROUP")
def test_builtins_come_from_the_entry_point_group(hybridless: Kit) -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP)}
    assert {"procfile", "nodejs", "python"} <= names
    procfile = hybridless.installed()["hybridless/procfile"]
    assert procfile.source == "entry point procfile = buildpacks.procfile"
    assert procfile.distribution == "hybridless-lifecycle"


@pytest.mark.covers("BUILDPACK_API")
@pytest.mark.parametrize("api, accepted", [(BUILDPACK_API, True), ("9.0", False),
                                           ("0.0", False), ("one", False)])
def test_buildpacks_for_another_api_are_refused_by_name(api: str, accepted: bool) -> None:
    registry = plugins.load([_Plugin(Scripted("acme/x", api=api))], entry_points=False, env={})
    assert ("acme/x" in registry.buildpacks) is accepted
    if not accepted:
        (problem,) = registry.problems
        assert (problem.kind, problem.name) == ("buildpack", "acme/x")
        assert problem.message == (
            f"buildpack 'acme/x' 1.0.0 targets buildpack API {api}, but this lifecycle "
            f"implements API {BUILDPACK_API}; upgrade the buildpack or the lifecycle so the "
            "API versions match")


class _Plugin:
    def __init__(self, *bps: Any) -> None:
        self.bps = bps

    @hookimpl
    def hybridless_buildpacks(self) -> list[Any]:
        return list(self.bps)


def test_optional_attributes_are_read_once_and_bad_ones_are_problems() -> None:
    good = Scripted("acme/good")
    good.priority = 5  # type: ignore[attr-defined]
    good.hermetic = "yes"  # type: ignore[attr-defined]  # only a literal True counts
    good.tools = ["node"]  # type: ignore[attr-defined]
    bad = Scripted("acme/bad")
    bad.priority = "first"  # type: ignore[attr-defined]
    registry = plugins.load([_Plugin(good, bad)], entry_points=False, env={})
    loaded = registry.get("acme/good")
    assert (loaded.priority, loaded.hermetic, loaded.tools) == (5, False, ("node",))
    assert "acme/bad" not in registry.buildpacks
    (problem,) = registry.problems
    assert (problem.kind, problem.name) == ("buildpack", "acme/bad")
    assert "unusable optional attribute: ValueError" in problem.message


# -------------------------------------------------------------------------------- buildpack


@pytest.mark.covers("Buildpack", "Buildpack.detect", "Buildpack.build")
def test_detect_then_build_in_priority_order(make_app: MakeApp, register_buildpack: Register,
                                             build_app: Build) -> None:
    late = Scripted("acme/late", priority=5)
    early = Scripted("acme/early", on_detect=lambda ctx: DetectResult.fails("not mine"),
                     priority=1)
    register_buildpack(late, early)
    assert isinstance(late, Buildpack) and not isinstance(object(), Buildpack)
    run = build_app(make_app()).assert_passed()
    assert run.detect is not None and run.detect.group == ["acme/late"]
    assert (early.calls, late.calls) == (["detect"], ["detect", "build"])


# ----------------------------------------------------------------------------------- detect


@pytest.mark.covers("DetectContext", "DetectContext.exists")
def test_detect_context_carries_app_descriptor_options_and_env(
        make_app: MakeApp, register_buildpack: Register, detect_app: Detect) -> None:
    seen: list[DetectContext] = []
    register_buildpack(Scripted("acme/ctx", on_detect=lambda ctx: _keep(seen, ctx,
                                                                DetectResult.passes())))
    app = make_app({"src/go.mod": ""}, descriptor=(
        '[io.hybridless]\nstage = "prod"\n'
        '[io.hybridless.buildpacks."acme/ctx"]\nlevel = 3\n'
        '[[io.buildpacks.build.env]]\nname = "FROM_TOML"\nvalue = "1"\n'))
    detect_app(app, env={"FROM_CLI": "2"}).assert_passed()
    (ctx,) = seen
    assert ctx.app_dir == app.resolve() and ctx.descriptor.stage == "prod"
    assert ctx.options == {"level": 3}
    assert ctx.platform_env == {"FROM_TOML": "1", "FROM_CLI": "2"}
    assert ctx.exists("nope", "src/go.mod") and not ctx.exists("go.mod")
    assert ctx.log.name.endswith("acme.ctx")
    with pytest.raises(AttributeError):
        ctx.options = {}  # type: ignore[misc]


@pytest.mark.covers("DetectResult", "DetectResult.passes", "DetectResult.fails")
def test_detect_results_votes_reasons_and_inferred_functions(
        make_app: MakeApp, register_buildpack: Register, detect_app: Detect,
        build_app: Build) -> None:
    functions: list[tuple[Function, ...]] = []
    register_buildpack(
        Scripted("acme/no", on_detect=lambda ctx: DetectResult.fails("no acme.json")),
        Scripted("acme/bad", on_detect=lambda ctx: "yes"),
        Scripted("acme/raises", on_detect=lambda ctx: 1 / 0),
        Scripted("acme/infers", on_detect=lambda ctx: DetectResult.passes(
            "inferred", functions=(Function("main", handler="app.handler"),)),
            on_build=lambda ctx: _keep(functions, ctx.functions, _processes("main"))),
    )
    app = make_app()
    detect_app(app, buildpacks=["acme/no"]).assert_failed(reason="no acme.json", exit_code=20)
    detect_app(app, buildpacks=["acme/bad"]).assert_failed(
        reason="returned str, not a DetectResult", exit_code=21)
    detect_app(app, buildpacks=["acme/raises"]).assert_failed(
        reason="raised ZeroDivisionError", exit_code=21)
    build_app(app, buildpacks=["acme/infers"]).assert_passed()
    assert [fn.name for fn in functions[0]] == ["main"]
    assert DetectResult.passes("r", provides=("x",)) == DetectResult(True, "r", provides=("x",))
    assert DetectResult.fails("why") == DetectResult(False, "why")


@pytest.mark.covers("Require", "PlanEntry")
def test_plan_resolves_requires_against_provides(
        make_app: MakeApp, register_buildpack: Register, detect_app: Detect,
        build_app: Build) -> None:
    plans: list[tuple[PlanEntry, ...]] = []
    register_buildpack(
        Scripted("acme/runtime", on_detect=lambda ctx: DetectResult.passes(provides=("node",)),
                 on_build=lambda ctx: _keep(plans, ctx.plan, BuildResult())),
        Scripted("acme/a", on_detect=lambda ctx: DetectResult.passes(
            requires=(Require("node", {"version": "18", "npm": True}),))),
        Scripted("acme/b", on_detect=lambda ctx: DetectResult.passes(
            requires=(Require("node", {"version": "20"}),)), on_build=lambda ctx: BuildResult()),
    )
    app = make_app()
    detect_app(app, buildpacks=["acme/a", "acme/b"]).assert_failed(
        reason="'acme/a' requires 'node', which no buildpack in the group provides")
    group = ["acme/runtime", "acme/a", "acme/b"]
    run = detect_app(app, buildpacks=group).assert_passed()
    expected = PlanEntry("node", "acme/runtime", {"version": "20", "npm": True},
                         ("acme/a", "acme/b"))
    assert run.plan == (expected,)
    build_app(app, buildpacks=group).assert_passed()
    assert plans == [(expected,)]


# ------------------------------------------------------------------------------------ build


@pytest.mark.covers("BuildContext", "BuildContext.layer", "Layer", "LayerProvider",
                    "LayerProvider.layer")
def test_layers_flags_metadata_and_reuse(hybridless: Kit) -> None:
    seen: list[BuildContext] = []
    handles: list[dict[str, Layer]] = []

    def build(ctx: BuildContext) -> BuildResult:
        seen.append(ctx)
        version = (ctx.app_dir / "version").read_text()
        layers = {
            "launch": ctx.layer("launch", launch=True, metadata={"v": version}),
            "cache": ctx.layer("cache", cache=True, metadata={"v": 1}),
            "scratch": ctx.layer("scratch"),
        }
        if (ctx.app_dir / "extra").exists():
            layers["extra"] = ctx.layer("extra", launch=True)
        assert ctx.layers.layer(ctx.buildpack_id, "cache", metadata={"v": 1}, launch=False,
                                build=False, cache=True) is layers["cache"]
        handles.append(layers)
        for name, layer in layers.items():
            if not layer.reused:
                (layer.path / f"{name}.txt").write_text(version)
        return _processes("main")

    hybridless.register(Scripted("acme/layers", on_build=build))
    app = hybridless.app({"version": "1", "extra": ""})
    first = hybridless.build(app).assert_passed()
    assert set(first.layers) == {"acme/layers/launch", "acme/layers/extra"}
    (app / "extra").unlink()
    second = hybridless.build(app).assert_passed()
    assert second.reused == {"acme/layers/launch"} and set(second.layers) == {
        "acme/layers/launch"}
    assert {n for n, layer in handles[1].items() if layer.reused} == {"launch", "cache"}
    assert seen[1].previous == {"launch": {"v": "1"}, "cache": {"v": 1}, "extra": {}}
    (app / "version").write_text("2")
    third = hybridless.build(app).assert_passed()
    assert third.reused == set()
    assert third.layer("acme/layers/launch").read_text("launch.txt") == "2"
    launch = handles[2]["launch"]
    assert launch.image_path == "/layers/acme_layers/launch"
    assert (launch.launch, launch.build, launch.cache) == (True, False, False)
    provider: LayerProvider = seen[2].layers  # the third build's cache, behind the protocol
    assert provider.layer("acme/layers", "launch", metadata={"v": "2"}, launch=True,
                          build=False, cache=False) is launch
    assert third.files.read_text("/layers/acme_layers/launch/launch.txt") == "2"


@pytest.mark.covers("BuildContext.run", "RunResult", "Executor", "Executor.run")
def test_run_streams_captures_and_fails_with_50(make_app: MakeApp, register_buildpack: Register,
                                               build_app: Build) -> None:
    results: list[RunResult] = []

    def build(ctx: BuildContext) -> BuildResult:
        results.append(ctx.run(["/bin/sh", "-c", 'echo "$GREETING $FROM_ENV"'], capture=True,
                               env={"FROM_ENV": "there"}))
        ctx.run(["/bin/sh", "-c", "echo streamed; echo to-stderr >&2"])
        results.append(ctx.run(["/bin/sh", "-c", "pwd"], cwd=ctx.layers_dir, capture=True))
        results.append(ctx.run(["/bin/sh", "-c", "exit 7"], check=False))
        if ctx.options.get("fail"):
            ctx.run([ctx.options["fail"]])
        return _processes("main")

    register_buildpack(Scripted("acme/run", on_build=build))
    run = build_app(make_app(), env={"GREETING": "hello"}).assert_passed()
    assert results[0] == RunResult(("/bin/sh", "-c", 'echo "$GREETING $FROM_ENV"'), 0,
                                   "hello there")
    assert "info acme.run:   streamed" in run.logs and "info acme.run:   to-stderr" in run.logs
    assert results[1].output.endswith("acme_run") and results[2].returncode == 7
    failing = make_app(descriptor='[io.hybridless.buildpacks."acme/run"]\nfail = "false"\n')
    build_app(failing).assert_failed(reason="ran 'false', which exited with 1", exit_code=50)
    missing = make_app(descriptor='[io.hybridless.buildpacks."acme/run"]\nfail = "no-such"\n')
    build_app(missing).assert_failed(reason="command not found", exit_code=50)
    executor: Executor = HostExecutor()
    direct = executor.run(["/bin/sh", "-c", "exit 4"], env={}, cwd=Path("/"),
                          log=logging.getLogger("t"), check=False, capture=True, buildpack="x")
    assert direct.returncode == 4
    with pytest.raises(BuildpackFailed):
        executor.run(["/bin/sh", "-c", "exit 4"], env={}, cwd=Path("/"),
                     log=logging.getLogger("t"), check=True, capture=True, buildpack="x")


@pytest.mark.covers("Prepend", "Append", "Default", "EnvValue")
def test_env_values_combine_in_group_order(make_app: MakeApp, register_buildpack: Register,
                                           build_app: Build) -> None:
    seen: dict[str, str] = {}

    def first(ctx: BuildContext) -> BuildResult:
        env: dict[str, hookspecs.EnvValue] = {
            "PATH": Prepend("/first"), "FLAGS": Append("-a", sep=" "),
            "LANG": Default("C.UTF-8"), "MODE": "one"}
        return BuildResult(launch_env=env, build_env={"TOOL": Prepend("/tools", sep=";")})

    def second(ctx: BuildContext) -> BuildResult:
        seen.update(ctx.env)
        return BuildResult(processes=(Process("main", ("true",)),), launch_env={
            "PATH": Append("/last"), "FLAGS": Append("-b", sep=" "),
            "LANG": Default("ignored"), "MODE": "two"})

    register_buildpack(Scripted("acme/one", on_build=first), Scripted("acme/two", on_build=second))
    run = build_app(make_app(), buildpacks=["acme/one", "acme/two"],
                    env={"TOOL": "/base"}).assert_passed()
    assert run.env["PATH"] == "/first:/usr/local/bin:/usr/bin:/bin:/last"
    assert run.env["FLAGS"] == "-a -b" and run.env["LANG"] == "C.UTF-8"
    assert run.env["MODE"] == "two" and "TOOL" not in run.env
    assert seen["TOOL"] == "/tools;/base"


@pytest.mark.covers("Process")
def test_processes_defaults_and_the_default_process(
        make_app: MakeApp, register_buildpack: Register, build_app: Build) -> None:
    register_buildpack(Scripted("acme/procs", on_build=lambda ctx: BuildResult(processes=(
        Process("worker", ("/bin/sh", "-c", "work")),
        Process("web", ("serve", "--port", "8080"), event="httpd", defaults={"PORT": "8080"},
                default=True, working_dir="/srv"),
    ))))
    register_buildpack(Scripted("acme/dup", on_build=lambda ctx: _processes("x", "x")))
    run = build_app(make_app(), buildpacks=["acme/procs"]).assert_passed()
    launcher = run.files.read_text("/hybridless/launcher")
    assert 'proc="${HYBRIDLESS_PROCESS:-web}"' in launcher
    assert "PORT=8080" in launcher and "cd /srv" in launcher
    label = run.labels["io.hybridless.build"]
    assert '"event":"httpd"' in label
    chosen = build_app(make_app(), buildpacks=["acme/procs"], default_process="worker")
    assert 'proc="${HYBRIDLESS_PROCESS:-worker}"' in chosen.files.read_text("/hybridless/launcher")
    build_app(make_app(), buildpacks=["acme/dup"]).assert_failed(
        reason="two processes are named 'x'", exit_code=51)


@pytest.mark.covers("BuildResult")
def test_build_result_labels_app_exclude_and_links(
        make_app: MakeApp, register_buildpack: Register, build_app: Build) -> None:
    def build(ctx: BuildContext) -> BuildResult:
        deps = ctx.layer("deps", launch=True)
        (deps.path / "node_modules").mkdir()
        (deps.path / "node_modules" / "dep.js").write_text("dep")
        return BuildResult(processes=(Process("main", ("true",)),),
                           labels={"org.example.team": "payments"},
                           app_exclude=("node_modules/", "*.pem"),
                           app_links={"node_modules": f"{deps.image_path}/node_modules"})

    register_buildpack(Scripted("acme/result", on_build=build))
    app = make_app({"index.js": "", "key.pem": "secret", "node_modules/local.js": ""})
    run = build_app(app).assert_passed()
    assert run.labels["org.example.team"] == "payments"
    assert run.files.listdir("/var/task") == ["index.js", "node_modules"]
    assert run.files.link_target("/var/task/node_modules") == (
        "/layers/acme_result/deps/node_modules")
    assert run.files.read_text("/layers/acme_result/deps/node_modules/dep.js") == "dep"


def test_kit_reports_a_buildpack_that_prints(make_app: MakeApp, register_buildpack: Register,
                                             detect_app: Detect) -> None:
    register_buildpack(Scripted("acme/print", on_detect=lambda ctx: print("hi")
                                or DetectResult.passes()))
    run = detect_app(make_app())
    assert run.passed and run.stdout == "hi\n"
    with pytest.raises(AssertionError, match=r"must log through ctx\.log"):
        run.assert_passed()


def test_kit_refuses_a_registration_that_fails(make_app: MakeApp, register_buildpack: Register,
                                               detect_app: Detect) -> None:
    register_buildpack(Scripted("acme/twice"), Scripted("acme/twice"))
    with pytest.raises(AssertionError, match="already provided"):
        detect_app(make_app())



@pytest.mark.covers("BuildContext.exists")
def test_build_context_exists_looks_in_the_app(make_app: MakeApp, register_buildpack: Register,
                                               build_app: Any) -> None:
    answers: list[tuple[bool, bool]] = []

    def on_build(ctx: Any) -> Any:
        answers.append((ctx.exists("nope", "src/go.mod"), ctx.exists("go.mod")))
        return BuildResult(processes=(Process("main", ("true",)),))

    register_buildpack(Scripted("acme/exists", on_build=on_build))
    build_app(make_app({"src/go.mod": ""})).assert_passed()
    assert answers == [(True, False)]


@pytest.mark.covers("BuildContext.secret")
def test_secret_files_exist_for_the_build_only(make_app: MakeApp, register_buildpack: Register,
                                               build_app: Build) -> None:
    seen: list[tuple[Path | None, str, int, int]] = []

    def build(ctx: BuildContext) -> BuildResult:
        path = ctx.secret("token")
        missing = ctx.secret("other")
        assert missing is None
        if path is not None:
            output = ctx.run(["/bin/sh", "-c", 'cat "$F"'], env={"F": str(path)},
                             capture=True).output
            seen.append((path, output, path.stat().st_mode & 0o777,
                         path.parent.stat().st_mode & 0o777))
        return _processes("main")

    register_buildpack(Scripted("acme/secret", on_build=build))
    app = make_app()
    build_app(app, secrets={"token": "s3cret"}).assert_passed()
    (path, output, mode, dir_mode), = seen
    assert (output, mode, dir_mode) == ("s3cret", 0o600, 0o700)
    assert path is not None and not path.exists() and not path.parent.exists()
    build_app(app).assert_passed()
    assert len(seen) == 1
