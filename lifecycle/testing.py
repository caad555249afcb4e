"""A test kit for buildpack authors, and the pytest plugin that hands it out as fixtures.

Installing hybridless-lifecycle registers this module through the ``pytest11`` entry point,
so any test suite gets the fixtures below without a ``conftest.py``:

- ``hybridless``: a :class:`Kit` rooted in the test's ``tmp_path``;
- ``make_app``: writes a fixture app from a ``{path: content}`` mapping (:meth:`Kit.app`);
- ``register_buildpack``: registers buildpack objects or plugins in-process
  (:meth:`Kit.register`);
- ``detect_app`` / ``build_app``: run detect, or detect + build + export, in-process and
  return a :class:`DetectRun` / :class:`BuildRun` with ``assert_passed()`` and
  ``assert_failed(reason=...)``, the layers, env, processes and the exported image's files.

Nothing here needs Docker or an external tool. Builds run the real phases with the real host
executor; the image is written to an ``oci:`` layout under the kit's root and read back from
its layer blobs with :mod:`tarfile`. Unless a run image is given, the base is a minimal image
made in-process from one empty layer, so images can be inspected but not run.

By default only buildpacks registered with the kit take part, so a test is not disturbed by
whatever else is installed; ``Kit(entry_points=True)`` adds the installed ones (to test that a
package's entry point works, see :meth:`Kit.installed`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.errors import LifecycleError
from lifecycle.hookspecs import Buildpack, PlanEntry, Process, hookimpl

if TYPE_CHECKING:
    from lifecycle.phases.build import BuildOutcome
    from lifecycle.phases.detect import DetectOutcome, Trial
    from lifecycle.phases.label import BuildLabel
    from lifecycle.plugins import Loaded

RUN_IMAGE_TAG = "run"


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class AppFile:
    """A fixture-app file with an explicit mode, e.g. ``AppFile("#!/bin/sh\\n", 0o755)``."""

    content: str | bytes
    mode: int = 0o644


AppContent = str | bytes | AppFile
"""What :meth:`Kit.app` accepts per path: text, bytes, or an :class:`AppFile`."""


class InlinePlugin:
    """Presents buildpack objects as a plugin, the way an entry-point module does."""

    def __init__(self, buildpacks: Sequence[Any]) -> None:
        self.buildpacks = tuple(buildpacks)

    @hookimpl
    def hybridless_buildpacks(self) -> list[Buildpack]:
        """Return the wrapped buildpacks."""
        return list(self.buildpacks)


# ----------------------------------------------------------------------------- outcomes


class _Collector(logging.Handler):
    """Keeps every record of one run, so tests can read what buildpacks logged."""

    def __init__(self, base: str) -> None:
        super().__init__(logging.DEBUG)
        self.base = base
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Buildpack loggers are children of the run's logger; show only the buildpack part.
        who = record.name[len(self.base) + 1:] if record.name != self.base else "lifecycle"
        self.lines.append(f"{record.levelname.lower()} {who}: {record.getMessage()}")


@dataclass(frozen=True)
class _RunBase:
    error: LifecycleError | None
    logs: tuple[str, ...]
    stdout: str

    @property
    def passed(self) -> bool:
        """True when the run raised no lifecycle error."""
        return self.error is None

    @property
    def exit_code(self) -> int:
        """The code the CLI would exit with (0 on success; docs/reference.md §1 table otherwise)."""
        return 0 if self.error is None else self.error.exit_code

    @property
    def output(self) -> str:
        """Everything logged during the run, one record per line."""
        return "\n".join(self.logs)

    def _check_passed(self, what: str) -> None:
        __tracebackhide__ = True
        if self.error is not None:
            raise AssertionError(f"{what} failed (exit {self.exit_code}): {self.error}\n"
                                 f"log:\n{self.output}")
        if self.stdout:
            raise AssertionError(f"{what} wrote to stdout, which breaks --json output; "
                                 f"buildpacks must log through ctx.log instead:\n{self.stdout}")

    def _check_failed(self, what: str, texts: Sequence[str], reason: str | None,
                      exit_code: int | None) -> None:
        __tracebackhide__ = True
        if self.error is None:
            raise AssertionError(f"{what} passed, but it was expected to fail"
                                 + (f" with {reason!r}" if reason else ""))
        if exit_code is not None and self.exit_code != exit_code:
            raise AssertionError(f"{what} failed with exit {self.exit_code}, expected "
                                 f"{exit_code}: {self.error}")
        if reason is not None and not any(reason in text for text in texts):
            raise AssertionError(f"{what} failed, but no reason contains {reason!r}; "
                                 "reasons:\n" + "\n".join(f"  {t}" for t in texts))


@dataclass(frozen=True)
class DetectRun(_RunBase):
    """The outcome of :meth:`Kit.detect`: the passing group and plan, or why nothing passed."""

    outcome: DetectOutcome | None = None
    trials: tuple[Trial, ...] = ()

    @property
    def group(self) -> list[str]:
        """Ids of the passing group, in order (empty when detect failed)."""
        return [lp.id for lp in self.outcome.group] if self.outcome else []

    @property
    def plan(self) -> tuple[PlanEntry, ...]:
        """The resolved plan (empty when detect failed)."""
        return self.outcome.plan if self.outcome else ()

    @property
    def reasons(self) -> dict[str, str]:
        """Each buildpack's latest detect reason, by id."""
        return {vote.id: vote.reason for trial in self.trials for vote in trial.votes}

    def assert_passed(self) -> DetectRun:
        """Fail the test unless a group passed; returns self for chaining."""
        __tracebackhide__ = True
        self._check_passed("detect")
        return self

    def assert_failed(self, reason: str | None = None, *, exit_code: int | None = None
                      ) -> DetectRun:
        """Fail the test unless detect failed, with ``reason`` in a vote's reason or the error."""
        __tracebackhide__ = True
        texts = [vote.reason for trial in self.trials for vote in trial.votes]
        texts += [trial.failure or "" for trial in self.trials]
        texts.append(str(self.error or ""))
        self._check_failed("detect", texts, reason, exit_code)
        return self


@dataclass(frozen=True)
class LayerView:
    """One launch layer of a build: its flags' outcome, metadata and files."""

    name: str
    image_path: str
    metadata: Mapping[str, Any]
    reused: bool
    digest: str
    files: Mapping[str, bytes]
    """Regular files by path relative to the layer directory."""

    def read_text(self, path: str) -> str:
        """A file of the layer as UTF-8 text."""
        return self.files[path].decode("utf-8")


@dataclass(frozen=True)
class ImageFiles:
    """The exported image's filesystem, merged over all layers (upper layers win)."""

    members: Mapping[str, tuple[tarfile.TarInfo, bytes | None]]

    def exists(self, path: str) -> bool:
        """Whether ``path`` (absolute, e.g. ``/var/task/index.js``) is in the image."""
        return _norm(path) in self.members

    def read(self, path: str) -> bytes:
        """The bytes of a regular file; KeyError names the path when it is missing."""
        info, data = self._get(path)
        if data is None:
            raise KeyError(f"{path} is a {_kind(info)} in the image, not a regular file")
        return data

    def read_text(self, path: str) -> str:
        """A regular file as UTF-8 text."""
        return self.read(path).decode("utf-8")

    def mode(self, path: str) -> int:
        """Permission bits of a path."""
        return self._get(path)[0].mode & 0o7777

    def link_target(self, path: str) -> str:
        """Where a symlink points."""
        info, _ = self._get(path)
        if not info.issym():
            raise KeyError(f"{path} is a {_kind(info)} in the image, not a symlink")
        return info.linkname

    def listdir(self, path: str) -> list[str]:
        """Names directly under a directory, sorted."""
        prefix = _norm(path).rstrip("/") + "/"
        return sorted({name[len(prefix):].split("/", 1)[0] for name in self.members
                       if name.startswith(prefix) and name != prefix})

    def _get(self, path: str) -> tuple[tarfile.TarInfo, bytes | None]:
        try:
            return self.members[_norm(path)]
        except KeyError:
            raise KeyError(f"{path} is not in the image") from None


@dataclass(frozen=True)
class BuildRun(_RunBase):
    """The outcome of :meth:`Kit.build`: detect, build and export results, or the error."""

    detect: DetectRun | None = None
    built: BuildOutcome | None = None
    image_ref: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    layers: Mapping[str, LayerView] = field(default_factory=dict)
    """Launch layers by ``<buildpack id>/<layer name>``."""
    files: ImageFiles = field(default_factory=lambda: ImageFiles({}))
    """The exported image's files."""
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def processes(self) -> dict[str, Process]:
        """The image's processes by name."""
        return {p.name: p for p in self.built.processes} if self.built else {}

    @property
    def env(self) -> dict[str, str]:
        """The image's environment: the run image's, then every buildpack's launch env."""
        env: dict[str, str] = {}
        for item in (self.config.get("config") or {}).get("Env") or []:
            name, _, value = str(item).partition("=")
            env[name] = value
        return env

    @property
    def labels(self) -> dict[str, str]:
        """The image's labels, including ``io.hybridless.build``."""
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def build_label(self) -> BuildLabel | None:
        """The decoded ``io.hybridless.build`` label (None when the build failed)."""
        from lifecycle.phases import label

        return label.read(self.labels, self.image_ref)

    @property
    def reused(self) -> set[str]:
        """Names of the launch layers re-referenced from the previous build."""
        return {name for name, layer in self.layers.items() if layer.reused}

    def layer(self, name: str) -> LayerView:
        """One launch layer by ``<buildpack id>/<layer>``; KeyError lists the known ones."""
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no launch layer {name!r}; layers: {sorted(self.layers)}") from None

    def assert_passed(self) -> BuildRun:
        """Fail the test unless detect, build and export all passed; returns self."""
        __tracebackhide__ = True
        self._check_passed("build")
        return self

    def assert_failed(self, reason: str | None = None, *, exit_code: int | None = None
                      ) -> BuildRun:
        """Fail the test unless the build failed, with ``reason`` in its error or detect reasons."""
        __tracebackhide__ = True
        texts = [str(self.error or "")]
        if self.detect is not None:
            texts += [vote.reason for trial in self.detect.trials for vote in trial.votes]
        self._check_failed("build", texts, reason, exit_code)
        return self


# ----------------------------------------------------------------------------------- kit


class Kit:
    """Fixture apps, in-process buildpack registration, and in-process detect/build runs.

    ``root`` holds the apps, the build cache (shared by every build of this kit, so a second
    build of the same app shows reuse) and the exported images.
    """

    def __init__(self, root: Path, *, entry_points: bool = False,
                 env: Mapping[str, str] | None = None, run_image: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.entry_points = entry_points
        self.env = dict(env or {})
        self._run_image = run_image
        self._plugins: list[Any] = []
        self._count = 0

    @classmethod
    @contextlib.contextmanager
    def temporary(cls, **options: Any) -> Iterator[Kit]:
        """A kit in a temporary directory removed afterwards (for scripts and doc examples)."""
        with tempfile.TemporaryDirectory(prefix="hybridless-kit-") as tmp:
            yield cls(Path(tmp), **options)

    # -- inputs ---------------------------------------------------------------------------

    def app(self, files: Mapping[str, AppContent] | None = None, *, name: str | None = None,
            descriptor: str | None = None) -> Path:
        """Write a fixture app and return its directory; ``descriptor`` is project.toml text."""
        self._count += 1
        app_dir = self.root / "apps" / (name or f"app-{self._count}")
        app_dir.mkdir(parents=True, exist_ok=False)
        entries: dict[str, AppContent] = dict(files or {})
        if descriptor is not None:
            entries["project.toml"] = descriptor
        for rel, content in entries.items():
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"fixture app path {rel!r} must stay inside the app")
            path = app_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            spec = content if isinstance(content, AppFile) else AppFile(content)
            data = spec.content.encode("utf-8") if isinstance(spec.content, str) else spec.content
            path.write_bytes(data)
            path.chmod(spec.mode)
        return app_dir

    def register(self, *items: Any) -> None:
        """Register buildpack objects (wrapped in one plugin) or plugin objects/modules."""
        plain = [item for item in items if not hasattr(item, "hybridless_buildpacks")]
        self._plugins.extend(item for item in items if hasattr(item, "hybridless_buildpacks"))
        if plain:
            self._plugins.append(InlinePlugin(plain))

    def installed(self) -> dict[str, Loaded]:
        """The buildpacks installed through entry points, by id (registered ones excluded)."""
        from lifecycle import plugins

        return dict(plugins.load((), env=self.env).buildpacks)

    def run_image(self) -> str:
        """The run image reference builds use; made on first use when none was given."""
        if self._run_image is None:
            self._run_image = minimal_run_image(self.root / "run-image")
        return self._run_image

    # -- runs -----------------------------------------------------------------------------

    def detect(self, app: Path, *, buildpacks: Sequence[str] = (),
               env: Mapping[str, str] | None = None) -> DetectRun:
        """Run detect on ``app``; ``buildpacks`` names the group like ``--buildpack``."""
        collector, log = self._logger()
        with _stdout() as out:
            return self._detect_run(app, buildpacks, env, log, collector, out)

    def build(self, app: Path, *, buildpacks: Sequence[str] = (),
              env: Mapping[str, str] | None = None, tag: str | None = None,
              default_process: str | None = None,
              secrets: Mapping[str, str] | None = None) -> BuildRun:
        """Detect, build and export ``app`` into an ``oci:`` layout; never raises for a failure.

        ``secrets`` are build secrets by id with their content, as ``--secret`` would give
        them: ``ctx.secret(id)`` names a private file that is removed after the build.
        """
        from lifecycle import secrets as secrets_mod
        from lifecycle.cache import layers as cache_mod
        from lifecycle.executor import HostExecutor, host_env
        from lifecycle.image import reference, transports
        from lifecycle.phases.build import build
        from lifecycle.phases.export import export, source_date_epoch

        collector, log = self._logger()
        timings: dict[str, float] = {}
        detected: DetectRun | None = None
        built = None
        self._count += 1
        dest = f"oci:{self.root / 'images'}:{tag or f'build-{self._count}'}"
        with _stdout() as out:
            try:
                started = time.monotonic()
                detected = self._detect_run(app, buildpacks, env, log, collector, out)
                timings["detect"] = time.monotonic() - started
                if detected.error is not None or detected.outcome is None:
                    raise detected.error or AssertionError("detect returned no outcome")
                desc = self._descriptor(app)
                run_image_ref = reference.parse(self.run_image())
                base = transports.read_image(run_image_ref)
                project = cache_mod.ProjectCache(self.root / "cache",
                                                 cache_mod.project_key(desc.id, app.resolve()))
                mtime = source_date_epoch({})
                given = {f"KIT_SECRET_{n}": value
                         for n, value in enumerate((secrets or {}).values())}
                specs = [secrets_mod.SecretSpec(name, variable=f"KIT_SECRET_{n}")
                         for n, name in enumerate(secrets or {})]
                with project.locked(), secrets_mod.staged(specs, given) as secret_files:
                    started = time.monotonic()
                    built = build(app.resolve(), desc, detected.outcome, project,
                                  executor=HostExecutor(),
                                  base_env={**host_env(), **desc.build_env, **self.env,
                                            **(env or {})},
                                  stack=desc.stack, mtime=mtime, log=log,
                                  secrets=secret_files)
                    timings["build"] = time.monotonic() - started
                    started = time.monotonic()
                    exported = export(app.resolve(), desc, built, base,
                                      run_image_ref=run_image_ref,
                                      blobs=project.blobs, stack=desc.stack, mtime=mtime,
                                      default_process=default_process, log=log)
                    transports.write_image(exported.image, reference.parse(dest))
                    timings["export"] = time.monotonic() - started
            except LifecycleError as exc:
                return BuildRun(exc, tuple(collector.lines), out.getvalue(), detected, built,
                                timings=timings)
        written = transports.read_image(reference.parse(dest))
        layers = {
            bl.label_name: LayerView(
                bl.label_name, f"/layers/{cache_mod.bp_dirname(bl.buildpack)}/{bl.name}",
                bl.metadata, bl.reused, bl.blob.digest,
                _layer_files(written, bl.blob.digest,
                             f"layers/{cache_mod.bp_dirname(bl.buildpack)}/{bl.name}/"))
            for bl in built.layers
        }
        return BuildRun(None, tuple(collector.lines), out.getvalue(), detected, built, dest,
                        written.config, layers, image_files(written), timings)

    # -- internals ------------------------------------------------------------------------

    def _detect_run(self, app: Path, buildpacks: Sequence[str], env: Mapping[str, str] | None,
                    log: logging.Logger, collector: _Collector, out: io.StringIO) -> DetectRun:
        try:
            outcome = self._detect(app, buildpacks, env, log)
        except LifecycleError as exc:
            return DetectRun(exc, tuple(collector.lines), out.getvalue(),
                             trials=tuple(getattr(exc, "trials", ())))
        return DetectRun(None, tuple(collector.lines), out.getvalue(), outcome, outcome.trials)

    def _detect(self, app: Path, buildpacks: Sequence[str], env: Mapping[str, str] | None,
                log: logging.Logger) -> DetectOutcome:
        from lifecycle import plugins
        from lifecycle.phases.detect import detect

        desc = self._descriptor(app)
        registry = plugins.load(self._plugins, env=self.env, entry_points=self.entry_points)
        # Installed plugins are not the test's business (the engine logs their problems), but
        # a buildpack the test registered itself must load, or the test would pass vacuously.
        if registry.problems and not self.entry_points:
            raise AssertionError("registering buildpacks failed:\n" + "\n".join(
                f"  {problem}" for problem in registry.problems))
        return detect(app.resolve(), desc, registry, requested=buildpacks,
                      platform_env={**desc.build_env, **self.env, **(env or {})}, log=log)

    def _descriptor(self, app: Path) -> Any:
        from lifecycle import descriptor

        return descriptor.load(descriptor.find(app.resolve()))

    def _logger(self) -> tuple[_Collector, logging.Logger]:
        self._count += 1
        log = logging.getLogger(f"hybridless.testing.run{id(self)}-{self._count}")
        log.setLevel(logging.DEBUG)
        collector = _Collector(log.name)
        log.handlers[:] = [collector]
        return collector, log


@contextlib.contextmanager
def _stdout() -> Iterator[io.StringIO]:
    """Capture what a buildpack prints, so :meth:`_RunBase.assert_passed` can refuse it."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


# --------------------------------------------------------------------------------- images


def minimal_run_image(directory: Path) -> str:
    """Write a one-empty-layer image to ``oci:<directory>`` and return its reference.

    Export needs a run image to stack layers on; this one needs no tool and no registry. It
    has no shell, so images built on it can be inspected but not run.
    """
    from lifecycle.image import image, reference, tarball, transports

    blobs = directory / "scratch-blobs"
    written = tarball.write_layer([], blobs)
    layer = image.Layer(written.digest, written.diff_id, written.size,
                        source=image.DirectorySource(blobs))
    base = image.append_layers(image.empty(), [layer], history=["hybridless.testing: empty"])
    base = image.with_config(base, env=["PATH=/usr/local/bin:/usr/bin:/bin"], user="1000:1000")
    ref = f"oci:{directory / 'layout'}:{RUN_IMAGE_TAG}"
    transports.write_image(base, reference.parse(ref))
    return ref


def image_files(img: Any) -> ImageFiles:
    """Merge the layers of an image value (from :func:`lifecycle.image.transports.read_image`)."""
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    for layer in img.layers:
        for info, data in _read_layer(layer):
            members[_norm(info.name)] = (info, data)
    return ImageFiles(members)


def _layer_files(img: Any, digest: str, prefix: str) -> dict[str, bytes]:
    for layer in img.layers:
        if layer.digest == digest:
            return {info.name[len(prefix):]: data for info, data in _read_layer(layer)
                    if data is not None and info.name.startswith(prefix)}
    raise KeyError(f"layer {digest} is not in the image")


def _read_layer(layer: Any) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    with layer.open() as blob, tarfile.open(fileobj=blob, mode="r:*") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isfile() else None
            yield info, (handle.read() if handle is not None else None)


def _norm(path: str) -> str:
    return "/" + path.strip("/").removeprefix("./")


def _kind(info: tarfile.TarInfo) -> str:
    return "directory" if info.isdir() else "symlink" if info.issym() else "special file"


# --------------------------------------------------------------------------------- pytest


def pytest_configure(config: pytest.Config) -> None:
    """Say where the fixtures come from in ``pytest --fixtures``."""
    config.addinivalue_line("markers", "hybridless: a test of a hybridless buildpack")


@pytest.fixture(scope="session")
def hybridless_run_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The minimal run image, made once per session (override it to build on a real base)."""
    return minimal_run_image(tmp_path_factory.mktemp("hybridless-run-image"))


@pytest.fixture
def hybridless(tmp_path: Path, hybridless_run_image: str) -> Kit:
    """A :class:`Kit` rooted in ``tmp_path``, using only buildpacks the test registers."""
    return Kit(tmp_path / "hybridless", run_image=hybridless_run_image)


@pytest.fixture
def make_app(hybridless: Kit) -> Callable[..., Path]:
    """``make_app({"path": "content"}, descriptor=None)`` writes a fixture app (Kit.app)."""
    return hybridless.app


@pytest.fixture
def register_buildpack(hybridless: Kit) -> Callable[..., None]:
    """``register_buildpack(bp, ...)`` makes buildpacks or plugins available (Kit.register)."""
    return hybridless.register


@pytest.fixture
def detect_app(hybridless: Kit) -> Callable[..., DetectRun]:
    """``detect_app(app, buildpacks=(), env=None)`` runs detect in-process (Kit.detect)."""
    return hybridless.detect


@pytest.fixture
def build_app(hybridless: Kit) -> Callable[..., BuildRun]:
    """``build_app(app, buildpacks=(), env=None)`` builds and exports in-process (Kit.build)."""
    return hybridless.build
