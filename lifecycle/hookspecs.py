"""The buildpack author's whole contract: one registration hook and the types it trades in.

pluggy calls a hook on every plugin at once, but detect and build must run one buildpack at a
time in group order. So the only hook is a registration hook,
:func:`Hookspecs.hybridless_buildpacks`; each buildpack it returns is an object with ``id``,
``version``, ``api``, ``detect(ctx)`` and ``build(ctx)``. Contexts are frozen; results are
dataclasses; buildpacks never print (they log through ``ctx.log``) and run commands only
through ``ctx.run`` so the lifecycle can move them into a build container.

Versioning: a buildpack sets ``api = BUILDPACK_API`` of the release it was written against.
The engine accepts the same major version with a minor no newer than its own and rejects
anything else with a message naming the buildpack.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from lifecycle.descriptor import Descriptor, Function

BUILDPACK_API = "0.2"
"""The buildpack API this lifecycle implements; buildpacks declare the one they target."""

PROJECT_NAME = "hybridless"
ENTRY_POINT_GROUP = "hybridless.buildpacks"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------------- detect


@dataclass(frozen=True)
class Require:
    """A plan entry a buildpack needs some buildpack of the group to provide."""

    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectContext:
    """What a buildpack sees while detecting: the app, the descriptor, its own options."""

    app_dir: Path
    descriptor: Descriptor
    options: Mapping[str, Any]
    platform_env: Mapping[str, str]
    log: logging.Logger

    def exists(self, *relative: str) -> bool:
        """True when any of the given paths exists in the app directory."""
        return any((self.app_dir / rel).exists() for rel in relative)


@dataclass(frozen=True)
class DetectResult:
    """A buildpack's vote. ``reason`` is shown to the user when it fails (and at -v when it passes).

    ``functions`` lets a runtime buildpack infer functions when the descriptor has none; the
    lifecycle prints what was inferred.
    """

    passed: bool
    reason: str = ""
    provides: tuple[str, ...] = ()
    requires: tuple[Require, ...] = ()
    functions: tuple[Function, ...] = ()

    @classmethod
    def passes(cls, reason: str = "", **kwargs: Any) -> DetectResult:
        """A passing vote."""
        return cls(True, reason, **kwargs)

    @classmethod
    def fails(cls, reason: str) -> DetectResult:
        """A failing vote, with the reason the user will read."""
        return cls(False, reason)


@dataclass(frozen=True)
class PlanEntry:
    """A resolved plan entry handed to the buildpack that provides it, with requirers' metadata."""

    name: str
    provider: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    required_by: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- build


@dataclass(frozen=True)
class Prepend:
    """An env value put before the existing one, joined by ``sep``."""

    value: str
    sep: str = ":"


@dataclass(frozen=True)
class Append:
    """An env value put after the existing one, joined by ``sep``."""

    value: str
    sep: str = ":"


@dataclass(frozen=True)
class Default:
    """An env value used only when nothing earlier set the variable."""

    value: str


EnvValue = str | Prepend | Append | Default
"""A plain string overrides; the wrappers combine with what the base and earlier layers set."""


@dataclass(frozen=True)
class Process:
    """One process in the image; runtime buildpacks make one per function (docs/reference.md §4).

    ``defaults`` apply at start only where the environment does not already set a variable, so
    values set by the infrastructure win.
    """

    name: str
    command: tuple[str, ...]
    event: str = "process"
    defaults: Mapping[str, str] = field(default_factory=dict)
    default: bool = False
    working_dir: str = "/var/task"


@dataclass(frozen=True)
class RunResult:
    """The outcome of :meth:`BuildContext.run`."""

    argv: tuple[str, ...]
    returncode: int
    output: str


class Executor(Protocol):
    """Runs a buildpack's commands: on the build host, or in the stack's build container."""

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
            log: logging.Logger, check: bool, capture: bool, buildpack: str) -> RunResult:
        """Run ``argv`` and return its outcome; raise BuildpackFailed on failure when ``check``."""
        ...


@dataclass(frozen=True)
class Layer:
    """A layer directory a buildpack owns for this build.

    ``reused`` is True when the previous build's layer had equal metadata: its contents are
    kept (or, for a launch-only layer, its blob is re-referenced by digest) and the buildpack
    should not rebuild it. ``path`` is where to write on the build host; ``image_path`` is where
    the layer appears inside the image (``/layers/<buildpack id, / as _>/<name>``).
    """

    name: str
    path: Path
    image_path: str
    launch: bool
    build: bool
    cache: bool
    metadata: Mapping[str, Any]
    reused: bool


class LayerProvider(Protocol):
    """The lifecycle's side of :meth:`BuildContext.layer` (kept out of the author's way)."""

    def layer(self, buildpack_id: str, name: str, *, metadata: Mapping[str, Any],
              launch: bool, build: bool, cache: bool) -> Layer:
        """Create or reuse one layer."""
        ...


@dataclass(frozen=True)
class BuildContext:
    """What a buildpack sees while building.

    ``env`` is the build environment: the platform's ``--env`` and descriptor build env, plus
    what earlier buildpacks exported through ``BuildResult.build_env``. ``previous`` holds the
    previous build's layer metadata by layer name. ``secrets`` maps the ids of the build's
    ``--secret`` options to their files; read them through :meth:`secret`.
    """

    buildpack_id: str
    app_dir: Path
    layers_dir: Path
    descriptor: Descriptor
    functions: tuple[Function, ...]
    options: Mapping[str, Any]
    plan: tuple[PlanEntry, ...]
    env: Mapping[str, str]
    stack: str | None
    log: logging.Logger
    executor: Executor
    layers: LayerProvider
    previous: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stack_provides: Mapping[str, str] = field(default_factory=dict)
    """What the stack's run image already has, e.g. ``{"nodejs": "22"}`` (empty without one)."""
    secrets: Mapping[str, Path] = field(default_factory=dict)

    def secret(self, name: str) -> Path | None:
        """The file holding the build secret ``name`` (``--secret id=NAME,...``), else None.

        The path is valid for commands run through :meth:`run` (in a build container it is
        ``/run/secrets/NAME``) and only during this build. Pass it to a tool through ``env``
        or ``argv``; never copy the file or its content into a layer, metadata or a label.
        """
        return self.secrets.get(name)

    def layer(self, name: str, *, metadata: Mapping[str, Any] | None = None,
              launch: bool = False, build: bool = False, cache: bool = False) -> Layer:
        """Declare a layer; reuse is automatic when ``metadata`` equals the previous build's."""
        return self.layers.layer(self.buildpack_id, name, metadata=metadata or {},
                                 launch=launch, build=build, cache=cache)

    def exists(self, *relative: str) -> bool:
        """True when any of the given paths exists in the app directory."""
        return any((self.app_dir / rel).exists() for rel in relative)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            cwd: Path | None = None, check: bool = True, capture: bool = False) -> RunResult:
        """Run a command with the build env plus ``env``; a non-zero exit fails the build (50)."""
        merged = {**self.env, **(env or {})}
        return self.executor.run(list(argv), env=merged, cwd=cwd or self.app_dir,
                                 log=self.log, check=check, capture=capture,
                                 buildpack=self.buildpack_id)


@dataclass(frozen=True)
class BuildResult:
    """What a buildpack contributes besides its layers.

    ``app_exclude`` holds globs kept out of the app layer (dependency folders already in a
    layer, files that carry credentials such as ``.npmrc`` or ``.env``). ``app_links`` adds
    symlinks to the app layer, path under ``/var/task`` → absolute target, e.g.
    ``{"node_modules": "/layers/hybridless_nodejs/deps/node_modules"}`` so that module
    resolution (which ignores ``NODE_PATH`` for ES modules) finds a dependency layer.
    """

    processes: tuple[Process, ...] = ()
    launch_env: Mapping[str, EnvValue] = field(default_factory=dict)
    build_env: Mapping[str, EnvValue] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    app_exclude: tuple[str, ...] = ()
    app_links: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ buildpack


@runtime_checkable
class Buildpack(Protocol):
    """The interface of one buildpack.

    Optional attributes the lifecycle reads when present: ``priority`` (int, lower detects
    first in the default order; 100 when absent), ``description`` (str), ``options_schema``
    (a JSON schema for the buildpack's ``[io.hybridless.buildpacks."<id>"]`` table),
    ``hermetic`` (bool) and ``tools`` (program names).

    ``hermetic = True`` promises that what ``build`` produces depends only on the app
    directory, the descriptor, the environment, the run image, the buildpack's own code and the
    programs named in ``tools`` as ``PATH`` finds them; never on the network, the clock or other
    files. When every buildpack of the group is hermetic, a rebuild that observes no change in
    those inputs is answered from the last build's receipt without calling ``detect`` or
    ``build`` (see :mod:`lifecycle.cache.receipt`). Leave it out (False) when in doubt.
    """

    id: str
    version: str
    api: str

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Vote on whether this buildpack applies to the app; cheap, no side effects."""
        ...

    def build(self, ctx: BuildContext) -> BuildResult:
        """Fill layers and return processes, env and labels."""
        ...


class Hookspecs:
    """The hooks a plugin may implement (with ``@hookimpl``)."""

    @hookspec
    def hybridless_buildpacks(self) -> Sequence[Buildpack]:  # type: ignore[empty-body]
        """Return the buildpacks this plugin provides.

        Called once per command, when the lifecycle loads plugins from the
        ``hybridless.buildpacks`` entry-point group. Return a list (possibly empty).
        """

