"""Loading buildpacks: the one façade over pluggy; nothing else in the engine touches it.

Built-in and third-party buildpacks load the same way, from the ``hybridless.buildpacks``
entry-point group. A plugin that fails to import or returns something that is not a buildpack
is reported by name and skipped, so one broken plugin does not break every build.

``HYBRIDLESS_BUILDPACKS`` (comma-separated ids) restricts loading to those buildpacks;
``HYBRIDLESS_BUILDPACKS_BLOCK`` (comma-separated ids or entry-point names) blocks some.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from lifecycle import hookspecs, paths
from lifecycle.errors import UsageError
from lifecycle.image.blobs import write_atomic

log = logging.getLogger("hybridless.plugins")


@dataclass(frozen=True)
class Loaded:
    """A buildpack together with where it came from and its optional attributes, read once."""

    buildpack: hookspecs.Buildpack
    source: str
    distribution: str | None = None
    distribution_version: str | None = None
    priority: int = 100
    """Default-order position; lower detects first."""
    description: str = ""
    options_schema: Mapping[str, Any] | None = None
    hermetic: bool = False
    """Only a literal ``True`` counts (see :class:`lifecycle.hookspecs.Buildpack`)."""
    tools: tuple[str, ...] = ()

    @classmethod
    def of(cls, bp: hookspecs.Buildpack, source: str, distribution: str | None = None,
           distribution_version: str | None = None) -> Loaded:
        """Read ``bp``'s optional attributes; raises TypeError or ValueError for bad ones."""
        return cls(bp, source, distribution, distribution_version,
                   priority=int(getattr(bp, "priority", 100)),
                   description=getattr(bp, "description", ""),
                   options_schema=getattr(bp, "options_schema", None),
                   hermetic=getattr(bp, "hermetic", False) is True,
                   tools=tuple(getattr(bp, "tools", ())))

    @property
    def id(self) -> str:
        """The buildpack id."""
        return self.buildpack.id


@dataclass(frozen=True)
class LoadProblem:
    """A plugin or buildpack that could not be used, and why; the plugin's origin when known."""

    kind: Literal["plugin", "buildpack"]
    name: str
    message: str
    source: str | None = None
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Registry:
    """The buildpacks available to one command, by id, plus the plugins that failed to load."""

    buildpacks: Mapping[str, Loaded]
    problems: tuple[LoadProblem, ...] = ()
    blocked: tuple[str, ...] = field(default_factory=tuple)

    def get(self, buildpack_id: str) -> Loaded:
        """The buildpack with that id, or a usage error listing the known ids."""
        try:
            return self.buildpacks[buildpack_id]
        except KeyError:
            known = ", ".join(sorted(self.buildpacks)) or "none"
            raise UsageError(
                f"unknown buildpack '{buildpack_id}'; available: {known}",
                hint="install the plugin that provides it, or check HYBRIDLESS_BUILDPACKS",
            ) from None

    def ordered(self) -> list[Loaded]:
        """Buildpacks in default detection order: priority, then id."""
        return sorted(self.buildpacks.values(), key=lambda item: (item.priority, item.id))


def api_compatible(declared: str, supported: str = hookspecs.BUILDPACK_API) -> bool:
    """Same major, and a minor no newer than ours (0.x minors are treated as breaking)."""
    try:
        d_major, d_minor = (int(p) for p in declared.split(".", 1))
        s_major, s_minor = (int(p) for p in supported.split(".", 1))
    except ValueError:
        return False
    if d_major != s_major:
        return False
    return d_minor == s_minor if s_major == 0 else d_minor <= s_minor


def load(extra_plugins: Iterable[Any] = (), *, env: Mapping[str, str] | None = None,
         entry_points: bool = True) -> Registry:
    """Load plugins from entry points (and ``extra_plugins``) and collect their buildpacks."""
    env = os.environ if env is None else env
    allow = _id_list(env.get("HYBRIDLESS_BUILDPACKS"))
    block = _id_list(env.get("HYBRIDLESS_BUILDPACKS_BLOCK"))
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs.Hookspecs)
    problems: list[LoadProblem] = []
    sources: dict[int, tuple[str, str | None, str | None]] = {}
    found_eps = _entry_points() if entry_points else []
    by_name = {ep.name: ep for ep in found_eps}

    def problem(kind: Literal["plugin", "buildpack"], name: str, message: str) -> None:
        # A plugin's problem names where it came from, when an entry point provided it.
        ep = by_name.get(name) if kind == "plugin" else None
        if ep is None:
            problems.append(LoadProblem(kind, name, message))
        else:
            problems.append(LoadProblem(kind, name, message, ep.source, ep.distribution,
                                        ep.version))

    if entry_points:
        for ep in found_eps:
            if ep.name in block:
                continue
            dist_name, dist_version = ep.distribution, ep.version
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the rest
                problem("plugin", ep.name, f"plugin '{ep.name}' ({ep.value}) failed to import: "
                        f"{type(exc).__name__}: {exc}")
                continue
            _register(manager, plugin, ep.name, problem)
            sources[id(plugin)] = (ep.source, dist_name, dist_version)
    for index, plugin in enumerate(extra_plugins):
        _register(manager, plugin, f"inline-{index}", problem)
        sources[id(plugin)] = ("registered in-process", None, None)

    found: dict[str, Loaded] = {}
    blocked: list[str] = []
    registered = set(manager.get_plugins())
    implementing = set()
    for impl in manager.hook.hybridless_buildpacks.get_hookimpls():
        name = impl.plugin_name
        implementing.add(impl.plugin)
        try:
            returned: Any = impl.function()
            provided = list(returned or ())
        except Exception as exc:
            problem("plugin", name, f"plugin '{name}' raised in hybridless_buildpacks(): "
                    f"{type(exc).__name__}: {exc}")
            continue
        source, dist_name, dist_version = sources.get(id(impl.plugin), (name, None, None))
        for bp in provided:
            bp_id = getattr(bp, "id", None)
            if isinstance(bp_id, str) and (bp_id in block or (allow and bp_id not in allow)):
                blocked.append(bp_id)
                continue
            refused = check_buildpack(bp, name)
            if refused:
                problem(*refused)
                continue
            if bp.id in found:
                problem("buildpack", bp.id, f"buildpack '{bp.id}' from plugin '{name}' ignored: "
                        f"already provided by {found[bp.id].source}")
                continue
            try:
                found[bp.id] = Loaded.of(bp, source, dist_name, dist_version)
            except (TypeError, ValueError) as exc:
                problem("buildpack", bp.id, f"buildpack '{bp.id}' from plugin '{name}' has an "
                        f"unusable optional attribute: {type(exc).__name__}: {exc}")
    for plugin in registered - implementing:
        if callable(getattr(plugin, "hybridless_buildpacks", None)):
            unhooked = str(manager.get_name(plugin))
            problem("plugin", unhooked, f"plugin '{unhooked}' defines "
                    "hybridless_buildpacks() without @hookimpl, so it was not called; "
                    "decorate it with lifecycle.hookspecs.hookimpl")
    for found_problem in problems:
        log.warning("%s", found_problem.message)
    return Registry(found, tuple(problems), tuple(sorted(blocked)))


def check_buildpack(bp: Any, plugin_name: str
                    ) -> tuple[Literal["plugin", "buildpack"], str, str] | None:
    """Why ``bp`` cannot be used (the kind and name at fault, and a message), or None."""
    missing = [attr for attr in ("id", "version", "api", "detect", "build")
               if not hasattr(bp, attr)]
    if missing:
        return ("plugin", plugin_name, f"plugin '{plugin_name}' returned {bp!r}, which is not "
                f"a buildpack (missing: {', '.join(missing)})")
    if not api_compatible(str(bp.api)):
        return ("buildpack", bp.id,
                f"buildpack '{bp.id}' {bp.version} targets buildpack API {bp.api}, but this "
                f"lifecycle implements API {hookspecs.BUILDPACK_API}; upgrade the buildpack "
                "or the lifecycle so the API versions match")
    return None


def _register(manager: pluggy.PluginManager, plugin: Any, name: str,
              problem: Callable[[Literal["plugin", "buildpack"], str, str], None]) -> None:
    try:
        manager.register(plugin, name=name)
    except Exception as exc:  # pluggy validates hook signatures at registration
        problem("plugin", name, f"plugin '{name}' could not be registered: {exc}")
        # pluggy keeps a plugin whose hook failed validation; drop it so it is reported once.
        if manager.is_registered(plugin):
            manager.unregister(plugin)


@dataclass(frozen=True)
class EntryPoint:
    """One ``hybridless.buildpacks`` entry point, as remembered between commands."""

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None

    @property
    def source(self) -> str:
        """How ``buildpacks`` names where a plugin came from."""
        return f"entry point {self.name} = {self.value}"

    def load(self) -> Any:
        """Import ``module[:attr.path]``, as importlib.metadata's EntryPoint.load does."""
        import importlib

        module, _, attrs = self.value.partition(":")
        loaded: Any = importlib.import_module(module.strip())
        for part in filter(None, attrs.strip().split(".")):
            loaded = getattr(loaded, part)
        return loaded


def _entry_points(environ: Mapping[str, str] | None = None) -> list[EntryPoint]:
    """The group's entry points, sorted by name.

    Scanning every installed distribution's metadata costs tens of milliseconds, a large share
    of a no-change build. The result is remembered under the cache directory, keyed by the
    interpreter and the modification time of every ``sys.path`` directory: installing or
    removing a distribution rewrites its ``*.dist-info`` directory, which changes the mtime of
    the directory that holds it.
    """
    import sys

    memo = paths.CacheLayout(paths.cache_root(environ)).entry_points
    key = [sys.executable, *(_mtime(p) for p in sys.path)]
    try:
        with open(memo, encoding="utf-8") as handle:
            known = json.load(handle)
        if known.get("key") == key:
            return [EntryPoint(**row) for row in known["entry_points"]]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        dist = getattr(ep, "dist", None)
        found.append(EntryPoint(ep.name, ep.value,
                                dist.metadata["Name"] if dist is not None else None,
                                dist.version if dist is not None else None))
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, json.dumps({"key": key,
                                       "entry_points": [e.__dict__ for e in found]}).encode())
    except OSError:
        pass  # remembering only saves time
    return found


def _mtime(path: str) -> list[Any]:
    try:
        return [path, os.stat(path or ".").st_mtime_ns]
    except OSError:
        return [path, None]


def _id_list(value: str | None) -> set[str]:
    return {item.strip() for item in (value or "").split(",") if item.strip()}
