"""The command line (docs/reference.md §1). ``main(argv) -> int``; only :func:`entry` exits.

Every command takes ``--json`` (one JSON document on stdout, nothing else there), ``-v`` and
``-q``. Progress and logs go to stderr. Errors of the :mod:`lifecycle.errors` hierarchy print
their message and exit with their code; anything else is a bug and prints a traceback (exit 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lifecycle import __version__
from lifecycle.errors import (
    BaseImageFetchError,
    BuildError,
    ExportError,
    Interrupted,
    LifecycleError,
    UsageError,
    os_failure,
)

if TYPE_CHECKING:  # imported lazily below: a no-change rebuild must not load plugins
    from lifecycle.plugins import LoadProblem

log = logging.getLogger("hybridless")


# NamedTuple, not a frozen dataclass: the CLI runs on the no-change rebuild path, and
# importing dataclasses (with inspect, ast and dis) costs about 25 ms there.
class Result(NamedTuple):
    """What every command returns: its ``--json`` document, its text for stdout, its exit code."""

    document: Any
    """A JSON value: produced by the ``to_json`` of the command's own result type."""
    text: str | None = None
    """Printed on stdout when ``--json`` is not given."""
    exit_code: int = 0


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main() keeps control."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more output (debug)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only warnings and errors")
    return common


def parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common = _common()
    top = _Parser(prog="hybridless-lifecycle", parents=[common],
                  description="Build Lambda-faithful container images from a function's "
                              "source, without a Docker daemon.",
                  epilog="Exit codes: 0 ok, 1 bug, 2 usage, 10/11 descriptor, 20/21 detect, "
                         "30/31 base image, 50/51 build, 60/61 export/reference, 70/71/72 "
                         "registry, 125 container did not start, 130 interrupted.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_text, description=help_text)

    def app_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("app", nargs="?", default=".", metavar="APP",
                       help="the app directory (default: .)")
        p.add_argument("--descriptor", type=Path, help="project.toml to use")
        p.add_argument("--buildpack", action="append", default=[], metavar="ID",
                       help="use exactly these buildpacks, in order (repeatable)")

    def registry_args(p: argparse.ArgumentParser, *, platform: bool = True) -> None:
        if platform:
            p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                           help="the platform to take from a multi-platform base "
                                "(default: this machine's)")
        p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                       help="talk to HOST over plain HTTP or unverified TLS (repeatable)")
        p.add_argument("--ca-bundle", type=Path, metavar="FILE",
                       help="also trust the CA certificates in FILE for registries; build "
                            "containers trust it instead of this host's bundle")

    def ecr_args(p: argparse.ArgumentParser) -> None:
        ecr = p.add_argument_group("Amazon ECR (override [io.hybridless.ecr], docs §5)")
        ecr.add_argument("--repository-naming", choices=["plain", "hybridless"],
                         help="plain: the repository as given; hybridless: one repository "
                              "per function, named as Hybridless 0.1.46 names them")
        ecr.add_argument("--service", metavar="NAME",
                         help="the service name hybridless naming uses (default: [_].name)")
        ecr.add_argument("--create-repository", action=argparse.BooleanOptionalAction,
                         default=None, help="create a missing repository (default: yes)")
        ecr.add_argument("--tag-mutability", choices=["MUTABLE", "IMMUTABLE"],
                         type=str.upper, help="for a repository created here")
        ecr.add_argument("--scan-on-push", action=argparse.BooleanOptionalAction,
                         default=None, help="for a repository created here (default: yes)")
        ecr.add_argument("--keep-images", type=int, metavar="N",
                         help="lifecycle policy of a repository created here: keep the "
                              "newest N images (default: 100)")
        ecr.add_argument("--resource-tag", action="append", default=[], metavar="KEY=VALUE",
                         help="AWS tag of a repository created here (repeatable)")

    def engine_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("ref", metavar="REF",
                       help="the image (any reference form; loaded into the engine if missing)")
        p.add_argument("--process", metavar="NAME", help="the process (default: the image's)")
        registry_args(p)

    p = add("detect", "Find the buildpack group that applies to an app.")
    app_args(p)

    p = add("build", "Build an app into an image.")
    app_args(p)
    p.add_argument("--image", required=True, metavar="REF", help="where to write the image")
    p.add_argument("--run-image", metavar="REF", help="the base image to build on")
    p.add_argument("--stack", metavar="ID", help="the stack to build on")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="build-time environment (never stored in the image)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="build cache directory")
    p.add_argument("--executor", default="auto", choices=["auto", "docker", "local"],
                   help="where buildpack commands run: the stack's build image in Docker, or "
                        "this host (auto: docker when an engine answers and there is a build "
                        "image)")
    p.add_argument("--network", default="host", choices=["host", "bridge"],
                   help="the build container's network (default host: it reaches proxies on "
                        "this host's loopback)")
    p.add_argument("--secret", action="append", default=[], metavar="id=NAME,src=FILE",
                   help="a credential for the build only (or id=NAME,env=VAR); buildpacks "
                        "read it at /run/secrets/NAME (repeatable)")
    p.add_argument("--default-process", metavar="NAME")
    p.add_argument("--tag", action="append", default=[], metavar="REF",
                   help="also write the image here (repeatable)")
    p.add_argument("--full", action="store_true",
                   help="run every phase even when the last build's receipt shows that "
                        "nothing changed")
    p.add_argument("--previous-image", metavar="REF",
                   help="reuse this image's unchanged layers by digest (default: --image when "
                        "it is a docker:// reference)")
    p.add_argument("--cache-image", metavar="REF",
                   help="read the build's cache layers from this image at the start and write "
                        "them back at the end (for runners with an empty disk)")
    registry_args(p)
    ecr_args(p)

    p = add("inspect", "Show an image's digest, config and build label.")
    p.add_argument("ref", metavar="REF")
    registry_args(p)

    p = add("rebase", "Swap an image's base layers for a new run image (no rebuild).")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--run-image", required=True, metavar="REF")
    p.add_argument("--force", action="store_true", help="skip compatibility checks")
    registry_args(p)

    p = add("push", "Copy an image from any source to any sink (a registry, most often).")
    p.add_argument("src", metavar="SRC", help="the image to copy (any reference form)")
    p.add_argument("dest", metavar="DEST", help="where to write it (any reference form)")
    p.add_argument("--tag", action="append", default=[], metavar="REF",
                   help="also write the image here (repeatable)")
    registry_args(p)
    ecr_args(p)

    p = add("run", "Run an image in the local Docker engine; Ctrl-C stops it (exit 130).")
    engine_args(p)
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:]HOST:CONTAINER[/PROTO]",
                   help="publish a port (a lambdaContainer gets 127.0.0.1:9000:8080 "
                        "without any)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K[=V]",
                   help="set a variable in the container (K alone: its value here)")
    p.add_argument("--env-file", action="append", default=[], type=Path, metavar="FILE",
                   help="read K=V lines (# comments) as docker run does (repeatable)")

    p = add("invoke", "Invoke a lambdaContainer or task process once; its result on stdout.")
    engine_args(p)
    p.add_argument("--event", metavar="FILE|-",
                   help="the event JSON, from a file or stdin (default: {})")

    p = add("buildpacks", "List the available buildpacks, or write a new one's skeleton.")
    actions = p.add_subparsers(dest="buildpacks_action", metavar="[new]",
                               parser_class=_Parser)
    new = actions.add_parser("new", parents=[common],
                             help="write a buildpack package skeleton that installs with pip",
                             description="Write a buildpack package skeleton (pyproject with "
                                         "the entry point, module, README, a passing test).")
    new.add_argument("name", metavar="NAME", help="the buildpack id, e.g. acme/ruby")
    new.add_argument("--dir", type=Path, metavar="D",
                     help="the package directory to create (default: ./<name with / as ->)")
    p = add("stacks", "List, build or pull the stacks builds run on (docs/stacks.md).")
    actions = p.add_subparsers(dest="stacks_action", metavar="list|build|pull",
                               parser_class=_Parser)
    actions.add_parser("list", parents=[common], help="the known stacks and what is stored",
                       description="List the built-in and user stacks.")
    sp = actions.add_parser("build", parents=[common], help="build a recipe stack's images",
                            description="Build a recipe stack's images into the local store "
                                        "with mmdebstrap (nothing to do when stored).")
    sp.add_argument("id", metavar="ID")
    sp.add_argument("--refresh", action="store_true",
                    help="rebuild when the Debian sources changed since the stored build")
    sp = actions.add_parser("pull", parents=[common], help="pull a reference stack's images",
                            description="Copy a reference stack's images into the local store "
                                        "through the registry client (registries.toml mirrors "
                                        "apply); the platform is the stack's.")
    sp.add_argument("id", metavar="ID")
    # No --platform: a stack names its platform, and its builds refuse any other.
    registry_args(sp, platform=False)
    add("images", "List images in the local store.")
    p = add("rm", "Remove an image reference from the local store.")
    p.add_argument("ref", metavar="REF")
    p = add("gc", "Delete local-store blobs no image references, cache blobs no project's "
                  "latest build uses, and dead writers' temporary files.")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="the build cache to collect too (default: the default cache)")
    p = add("verify", "Check the local store's and the build cache's integrity.")
    p.add_argument("--repair", action="store_true",
                   help="replace corrupt store blobs from the cache, remove what cannot be "
                        "replaced (the next build writes it again)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="the build cache to check too (default: the default cache)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        return _fail(exc, as_json)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    as_json = bool(getattr(args, "json", False))
    _configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    if not args.command:
        parser().print_help(sys.stderr)
        return 2
    try:
        result = COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return _fail(Interrupted("interrupted"), as_json)
    except OSError as exc:  # the environment (a full disk, a read-only store), not a bug
        return _fail(_environment_failure(args.command, exc), as_json)
    except LifecycleError as exc:
        if getattr(args, "verbose", 0) and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        return _fail(exc, as_json)
    except Exception:
        traceback.print_exc()
        print("error: an unexpected internal error happened (a bug); please report it with "
              "the traceback above", file=sys.stderr)
        return 1
    if as_json and result.document is not None:
        _print_document(json.dumps(result.document, indent=2, sort_keys=False))
    elif result.text is not None:
        print(result.text)
    return result.exit_code


def _print_document(text: str) -> None:
    """Print the ``--json`` document; a reader that closed the pipe is told about once."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit; point it elsewhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        print("warning: the --json document was not delivered: the reader closed stdout "
              "(the command itself finished; its exit code stands)", file=sys.stderr)


# Who fails when the environment does: the exit code of the phase each command is in.
_ENVIRONMENT_CODES: dict[str | None, type[LifecycleError]] = {
    "detect": BuildError, "build": BuildError, "inspect": BaseImageFetchError,
    "rebase": ExportError, "images": ExportError, "rm": ExportError, "gc": ExportError,
    "verify": ExportError,
}


def _environment_failure(command: str | None, exc: OSError) -> LifecycleError:
    cls = _ENVIRONMENT_CODES.get(command, BuildError)
    return os_failure(cls, command or "run", exc)


def entry() -> None:
    """The console script."""
    sys.exit(main())


def _fail(exc: LifecycleError, as_json: bool) -> int:
    print(f"error: {exc}", file=sys.stderr)
    if as_json:
        doc: dict[str, Any] = {"error": exc.message, "exit_code": exc.exit_code}
        if exc.hint:
            doc["hint"] = exc.hint
        trials = getattr(exc, "trials", None)
        if trials is not None:
            from lifecycle.phases.detect import trials_json

            doc.update({"passed": False, "group": [], "plan": [],
                        "trials": trials_json(trials)})
        _print_document(json.dumps(doc, indent=2))
    return exc.exit_code


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("hybridless")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


# ------------------------------------------------------------------------------ commands


def _inputs(args: argparse.Namespace) -> Any:
    from lifecycle.phases.pipeline import Inputs, parse_env

    return Inputs(app_dir=Path(args.app), descriptor_path=args.descriptor,
                  buildpacks=tuple(args.buildpack),
                  env=parse_env(getattr(args, "env", ())),
                  cache_dir=getattr(args, "cache_dir", None))


def cmd_detect(args: argparse.Namespace) -> Result:
    """``detect``."""
    from lifecycle.phases.pipeline import run_detect

    _, _, _, outcome = run_detect(_inputs(args), log)
    return Result(outcome.to_json())


def cmd_build(args: argparse.Namespace) -> Result:
    """``build``; a rebuild that observes no change is answered from the last receipt."""
    import os
    import time

    from lifecycle import secrets
    from lifecycle.cache import receipt
    from lifecycle.phases.report import BuildReport

    started = time.monotonic()
    secret_specs = secrets.parse_all(args.secret)
    app = os.path.realpath(args.app)
    descriptor = os.path.realpath(args.descriptor) if args.descriptor else None
    cache_dir = os.path.realpath(args.cache_dir) if args.cache_dir else None
    request = {"app": app, "descriptor": descriptor, "buildpacks": args.buildpack,
               "image": args.image, "run_image": args.run_image, "stack": args.stack,
               "env": args.env, "cache_dir": cache_dir, "executor": args.executor,
               "network": args.network, "secrets": args.secret,
               "build_image": os.environ.get("HYBRIDLESS_BUILD_IMAGE"),
               "default_process": args.default_process, "tags": args.tag,
               "platform": args.platform, "ecr": _ecr_flags(args),
               "previous_image": args.previous_image, "cache_image": args.cache_image}
    observed = receipt.observe(request, app, cache_dir, descriptor) \
        if os.path.isdir(app) else None
    if observed is not None and not args.full:
        recorded = receipt.lookup(observed, log, BuildReport.from_json)
        if recorded is not None:
            log.info("unchanged since the last build: %s (%s)", recorded.image,
                     recorded.digest)
            return Result(recorded.answered_from_receipt(time.monotonic() - started).to_json())

    from lifecycle.phases.pipeline import BuildInputs, run_build

    options = BuildInputs(image=args.image, run_image=args.run_image, stack=args.stack,
                          tags=tuple(args.tag), executor=args.executor,
                          default_process=args.default_process, platform=args.platform,
                          registry=_registry_options(args), network=args.network,
                          ca_bundle=str(args.ca_bundle) if args.ca_bundle else None,
                          secrets=secret_specs, ecr=_ecr_overrides(args),
                          previous_image=args.previous_image, cache_image=args.cache_image)
    report = run_build(_inputs(args), options, log, observed=observed)
    log.info("built %s (%s)", report.image, report.digest)
    return Result(report.to_json(), "\n".join(report.pushed) if report.pushed else None)


def cmd_inspect(args: argparse.Namespace) -> Result:
    """``inspect``."""
    from lifecycle.phases import inspect

    inspected = inspect.inspect(args.ref, platform=args.platform,
                                registry=_registry_options(args))
    return Result(inspected.to_json(), inspect.render(inspected))


def cmd_rebase(args: argparse.Namespace) -> Result:
    """``rebase``."""
    from lifecycle.phases import rebase

    rebased = rebase.rebase(args.ref, args.run_image, force=args.force, log=log,
                            platform=args.platform, registry=_registry_options(args))
    log.info("rebased %s onto %s (%s)", rebased.image, rebased.run_image, rebased.digest)
    return Result(rebased.to_json(), "\n".join(rebased.pushed) if rebased.pushed else None)


def cmd_push(args: argparse.Namespace) -> Result:
    """``push``: read SRC through its transport, write it to DEST and each ``--tag``."""
    import dataclasses

    from lifecycle.image import reference, transports
    from lifecycle.image.transports import registry
    from lifecycle.phases.report import PushReport

    src = reference.parse(args.src)
    dest = reference.parse(args.dest)
    tags = [reference.parse(tag) for tag in args.tag]
    options = dataclasses.replace(_registry_options(args), store_copy=False)
    overrides = _ecr_overrides(args)
    if overrides is not None:
        from lifecycle.ecr import EcrSettings, merge

        if overrides.repository_naming == "hybridless":
            raise UsageError("failed to push with --repository-naming hybridless: push copies "
                             "one image to the reference given",
                             hint="build with --repository-naming hybridless pushes one image "
                                  "per function")
        options = dataclasses.replace(options, ecr=merge(EcrSettings(), overrides))
    image = transports.read_image(src, platform=args.platform, registry=options)
    digest = transports.write_image(image, dest, tags=tags, progress=log.info, registry=options)
    remote = [ref for ref in (dest, *tags) if ref.transport == "docker"]
    report = PushReport(source=str(src), image=str(dest), tags=tuple(str(t) for t in tags),
                        digest=digest, pushed=tuple(registry.pinned(remote, digest)))
    return Result(report.to_json(), "\n".join(report.pushed or (f"{dest}@{digest}",)))


def _registry_options(args: argparse.Namespace) -> Any:
    from lifecycle.image.transports.registry import RegistryOptions

    quiet = bool(getattr(args, "quiet", False) or getattr(args, "json", False))
    return RegistryOptions(insecure=tuple(getattr(args, "insecure_registry", ())),
                           ca_bundle=getattr(args, "ca_bundle", None), quiet=quiet)


def _ecr_flags(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ECR flags as given (for the build receipt's request); None when none was."""
    given = {name: getattr(args, name) for name in _ECR_FLAGS
             if getattr(args, name, None) not in (None, [])}
    return given or None


_ECR_FLAGS = ("repository_naming", "service", "create_repository", "tag_mutability",
              "scan_on_push", "keep_images", "resource_tag")


def _ecr_overrides(args: argparse.Namespace) -> Any:
    """``EcrOverrides`` from the flags; None when no ECR flag was given."""
    if _ecr_flags(args) is None:
        return None
    from lifecycle.ecr import EcrOverrides, merge, parse_tag_flag
    from lifecycle.ecr.settings import EcrSettings

    overrides = EcrOverrides(
        create_repository=args.create_repository, tag_mutability=args.tag_mutability,
        scan_on_push=args.scan_on_push, keep_images=args.keep_images,
        tags=tuple(parse_tag_flag(text) for text in args.resource_tag),
        repository_naming=args.repository_naming, service=args.service)
    merge(EcrSettings(), overrides)  # refuse a bad flag (exit 2) before any work
    return overrides


def cmd_run(args: argparse.Namespace) -> Result:
    """``run``: the container's exit code is ours; 125 when it could not start."""
    from lifecycle.run import runner
    from lifecycle.run.load import engine_reference

    # Later wins, as in docker run: the files in order, then each -e.
    env = [pair for path in args.env_file for pair in runner.read_env_file(path)]
    env += [runner.parse_env(text) for text in args.env]
    ports = tuple(runner.parse_port(text) for text in args.publish)
    client = runner.connect()
    image = engine_reference(client, args.ref, platform=args.platform,
                             registry=_registry_options(args))
    options = runner.RunOptions(image=image, process=args.process, ports=ports,
                                env=tuple(env))
    out, err = runner.stdio()
    if getattr(args, "json", False):
        out = err  # stdout carries the one JSON document; the container's output is a log
    code = runner.run(client, options, out=out, err=err)
    return Result({"image": image, "exit_code": code}, exit_code=code)


def cmd_invoke(args: argparse.Namespace) -> Result:
    """``invoke``: the result document is printed as it arrives; the exit code follows §4."""
    from lifecycle.run import runner
    from lifecycle.run.invoke import InvokeOptions, invoke
    from lifecycle.run.load import engine_reference

    event = _read_event(args.event)
    client = runner.connect()
    image = engine_reference(client, args.ref, platform=args.platform,
                             registry=_registry_options(args))
    out, err = runner.stdio()
    code = invoke(client, InvokeOptions(image=image, process=args.process, event=event),
                  out=out, err=err)
    # The result is already on stdout (it is the JSON document): print nothing more.
    return Result(None, exit_code=code)


def _read_event(source: str | None) -> bytes | None:
    if source is None:
        return None
    try:
        if source == "-":
            return sys.stdin.buffer.read()
        return Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(f"failed to read --event {source}: {exc.strerror or exc}",
                         hint="give a JSON file, or - for stdin") from exc


def cmd_buildpacks(args: argparse.Namespace) -> Result:
    """``buildpacks`` (list; broken plugins are rows with an ``error``) and ``buildpacks new``."""
    from lifecycle import plugins

    if getattr(args, "buildpacks_action", None) == "new":
        return _buildpacks_new(args)
    registry = plugins.load()
    loaded = registry.ordered()
    rows: list[dict[str, Any]] = [
        {"id": lp.id, "version": lp.buildpack.version, "api": lp.buildpack.api,
         "source": lp.source, "distribution": lp.distribution,
         "distribution_version": lp.distribution_version, "description": lp.description}
        for lp in loaded]
    broken = [_problem_row(problem) for problem in registry.problems]
    lines = [f"{lp.id:<28} {lp.buildpack.version:<10} api {lp.buildpack.api:<5} "
             + (f"{lp.distribution} {lp.distribution_version}" if lp.distribution
                else lp.source)
             for lp in loaded]
    lines += [f"broken: {problem.message}" for problem in registry.problems]
    return Result(rows + broken, "\n".join(lines) if lines else None)


def _problem_row(problem: LoadProblem) -> dict[str, Any]:
    """The ``buildpacks --json`` row of a plugin or buildpack that failed to load."""
    return {"id": problem.name if problem.kind == "buildpack" else None, "version": None,
            "api": None, "plugin": problem.name if problem.kind == "plugin" else None,
            "source": problem.source, "distribution": problem.distribution,
            "distribution_version": problem.version, "error": problem.message}


def _buildpacks_new(args: argparse.Namespace) -> Result:
    from lifecycle import scaffold

    created = scaffold.write(args.name, args.dir)
    document = created.to_json()
    lines = [f"created {created.names.distribution} in {created.directory}:",
             *(f"  {name}" for name in created.files), scaffold.next_steps(created)]
    return Result(document, "\n".join(lines))


def cmd_stacks(args: argparse.Namespace) -> Result:
    """``stacks list``, ``stacks build ID [--refresh]``, ``stacks pull ID``."""
    from stacks import catalog, provide

    known = catalog.load()
    store = _open_store()
    action = getattr(args, "stacks_action", None) or "list"
    if action == "build":
        stack = known.get(args.id)
        outcomes = provide.ensure(stack, store, refresh=args.refresh)
        for outcome in outcomes:
            if not outcome.built:
                log.info("%s: %s is stored (%s)", stack.id, outcome.ref, outcome.digest[:19])
        return Result({"id": stack.id, "images": [
            {"ref": o.ref, "digest": o.digest, "built": o.built,
             "seconds": round(o.seconds, 1), "source_date_epoch": o.epoch} for o in outcomes]})
    if action == "pull":
        stack = known.get(args.id)
        pulled = provide.pull(stack, store, registry=_registry_options(args))
        for name in pulled:
            log.info("%s: pulled into %s", stack.id, name)
        return Result({"id": stack.id, "pulled": pulled})
    rows: list[dict[str, Any]] = []
    for stack in known.stacks:
        build, run = provide.images_of(stack)
        rows.append({"id": stack.id, "description": stack.description,
                     "platform": stack.platform,
                     "runtimes": [str(entry) for entry in stack.runtimes],
                     "build_image": build.store_name, "run_image": run.store_name,
                     "build_source": build.source, "run_source": run.source,
                     "present": provide.present(stack, store),
                     "source": str(stack.source)})
    lines = [f"{row['id']:<28} {','.join(row['runtimes']):<16} "
             f"{'stored' if row['present']['run'] else '-':<7} {row['run_source']}"
             for row in rows]
    return Result(rows, "\n".join(lines))


def _open_store() -> Any:
    """The local store, refusing a ``HYBRIDLESS_HOME`` that is a file (gc would "succeed")."""
    import errno

    from lifecycle.image.transports import store

    opened = store.open_store()
    existing = next((p for p in (opened.root, *opened.root.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        raise os_failure(ExportError, "use the local store",
                         NotADirectoryError(errno.ENOTDIR, "Not a directory", str(existing)))
    return opened


def cmd_images(args: argparse.Namespace) -> Result:
    """``images``."""
    from lifecycle.image.blobs import Digest

    images = _open_store().images()
    lines = [f"{row.reference:<40} {Digest(row.digest).short}  {row.size:>12}" for row in images]
    return Result([row.to_json() for row in images], "\n".join(lines) if lines else None)


def cmd_rm(args: argparse.Namespace) -> Result:
    """``rm``."""
    from lifecycle.image import reference

    ref = reference.parse(args.ref)
    if ref.transport != "store":
        raise UsageError(f"rm works on the local store; {args.ref!r} is a {ref.transport} "
                         "reference")
    _open_store().remove(ref)
    log.info("removed %s", ref)
    return Result({"removed": str(ref)})


def _cache_root(args: argparse.Namespace) -> Path:
    from lifecycle.cache import layers

    cache_dir: Path | None = getattr(args, "cache_dir", None)
    return cache_dir if cache_dir is not None else layers.default_root()


def cmd_gc(args: argparse.Namespace) -> Result:
    """``gc``: the store, the build cache, and temps wherever the lifecycle writes them."""
    from lifecycle.cache import layers

    cache = layers.collect(_cache_root(args))
    report = _open_store().gc()
    freed = report.freed + cache.freed
    log.info("removed %d store blob(s) and %d cache blob(s), freed %d bytes",
             len(report.removed), len(cache.removed), freed)
    for path in (*report.recovered, *cache.recovered):
        log.info("recovered: removed a dead writer's temporary file %s", path)
    return Result({**report.to_json(), "freed": freed, "store_freed": report.freed,
                   "cache": cache.to_json()})


def cmd_verify(args: argparse.Namespace) -> Result:
    """``verify`` (``--repair`` fixes what it can: the next build writes the rest again)."""
    from lifecycle.cache import layers

    root = _cache_root(args)
    cache = layers.verify(root, repair=args.repair)
    report = _open_store().verify(repair=args.repair, spares=[layers.cache_blobs(root)])
    problems = (*report.problems, *cache.problems)
    for line in problems:
        log.error("%s", line)
    for line in (*cache.repaired, *report.repaired):
        log.warning("repaired: %s", line)
    for path in report.recovered:
        log.info("recovered: removed a dead writer's temporary file %s", path)
    if not problems:
        log.info("store is consistent: %d image(s), %d blob(s); cache: %d blob(s)",
                 report.images, report.blobs, cache.blobs)
    document = {**report.to_json(), "ok": not problems, "cache": cache.to_json()}
    return Result(document, exit_code=0 if not problems else 60)


COMMANDS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "detect": cmd_detect,
    "build": cmd_build,
    "inspect": cmd_inspect,
    "rebase": cmd_rebase,
    "push": cmd_push,
    "run": cmd_run,
    "invoke": cmd_invoke,
    "buildpacks": cmd_buildpacks,
    "stacks": cmd_stacks,
    "images": cmd_images,
    "rm": cmd_rm,
    "gc": cmd_gc,
    "verify": cmd_verify,
}
