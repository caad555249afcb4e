"""Helpers shared by ``rebuild.py`` and ``scale.py``: running our CLI and ``docker build``,
alternating contenders, medians and tables.

Every timing here is the wall time of whole commands, as a user at a terminal sees it: the
interpreter's start, the imports, the build and the write. Our CLI runs with
``PYTHONDONTWRITEBYTECODE`` removed from its environment, because an installed copy has its
``.pyc`` files and a checkout run with that variable set would pay for compiling every module on
every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

BYTECODE_NOTE = ("our CLI runs as a user installs it: `pip install .` into a fresh venv, "
                 "bytecode compiled by pip, PYTHONDONTWRITEBYTECODE unset")


class BenchError(RuntimeError):
    """A command the benchmark depends on failed; the message carries its output."""


@dataclass(frozen=True)
class Contender:
    """One side of a comparison: untimed preparation, then the timed command(s)."""

    name: str
    run: Callable[[], None]
    before: Callable[[], None] | None = None


@dataclass(frozen=True)
class Timings:
    """One contender's measured runs: wall seconds, and CPU seconds of the processes it started.

    The CPU figure counts our CLI (and what it starts) whole; for ``docker build`` it counts
    only the client, since the daemon does the work. On a shared machine the wall time of a
    short command is mostly waiting for a CPU, so the CPU time tells what a quiet machine would
    show.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def alternate(contenders: Sequence[Contender], pairs: int, warmup: int = 1,
              progress: Callable[[str], None] | None = None) -> dict[str, Timings]:
    """Run the contenders in turn (A B A B …); the first ``warmup`` rounds are not recorded."""
    times = {c.name: Timings() for c in contenders}
    for round_no in range(warmup + pairs):
        for contender in contenders:
            if contender.before is not None:
                contender.before()
            cpu_before = _children_cpu()
            started = time.perf_counter()
            contender.run()
            elapsed = time.perf_counter() - started
            cpu = _children_cpu() - cpu_before
            if round_no >= warmup:
                times[contender.name].wall.append(elapsed)
                times[contender.name].cpu.append(cpu)
            if progress is not None:
                tag = "warm-up" if round_no < warmup else f"pair {round_no - warmup + 1}"
                progress(f"    {tag}: {contender.name} {elapsed:.3f}s (CPU {cpu:.3f}s)")
    return times


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def seconds(values: Sequence[float]) -> str:
    """Every run, as ``0.123 0.130 …``."""
    return " ".join(f"{v:.3f}" for v in values)


def ratio(ours: float, peer: float) -> str:
    """``ours / peer`` with two decimals, or a dash when it is undefined."""
    if peer != peer or ours != ours or peer <= 0:  # NaN compares unequal to itself
        return "-"
    return f"{ours / peer:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with padded columns, readable as text and pasteable as is."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def machine() -> str:
    """CPU count and model, memory and load average, for the record."""
    model = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}); load average {load}"


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 900) -> str:
    """Run a command to completion and return its stdout; raise ``BenchError`` on failure."""
    done = subprocess.run(list(argv), env=None if env is None else dict(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-25:])
        raise BenchError(f"{' '.join(argv)} exited with {done.returncode}:\n{tail}")
    return done.stdout


_INSTALLED: dict[str, Path] = {}
"""The console script :func:`install_ours` made, once per benchmark process."""


def add_ours_option(parser: argparse.ArgumentParser) -> None:
    """``--ours venv|checkout``: how :func:`install_ours` provides our CLI."""
    parser.add_argument("--ours", choices=("venv", "checkout"), default="venv",
                        help="run our CLI from a fresh venv install (default) or the checkout")


def install_ours(scratch: Path, how: str = "venv") -> None:
    """Install our CLI the way a user does (``venv``), or use the checkout's (``checkout``).

    A venv install is what users run; it also leaves out the development install's import
    hook and whatever ``.pth`` files the host interpreter carries, which cost start-up time
    that no user pays.
    """
    if how == "checkout":
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "lifecycle"),
             str(REPO_ROOT / "buildpacks")], env=env)
        return
    venv = scratch / "ours-venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         str(REPO_ROOT)], timeout=900)
    _INSTALLED["script"] = venv / "bin" / "hybridless-lifecycle"


def ours_command() -> list[str]:
    """Our CLI: the venv's console script once installed, else the checkout's."""
    if "script" in _INSTALLED:
        return [str(_INSTALLED["script"])]
    script = Path(sys.executable).parent / "hybridless-lifecycle"
    # A version manager's shim (pyenv) is another process in front of the real script.
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "lifecycle"]


def ours_env(home: Path) -> dict[str, str]:
    """The environment for our CLI: the store under ``home``, bytecode caching on."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["HYBRIDLESS_HOME"] = str(home)
    return env


@dataclass(frozen=True)
class Ours:
    """Our ``build`` of one app onto one base, with its own cache and store."""

    app: Path
    base_ref: str
    work: Path
    image: str
    env: tuple[tuple[str, str], ...] = ()
    """Variables added to our CLI's environment (e.g. the build image to build in)."""

    @property
    def cache_dir(self) -> Path:
        """This contender's ``--cache-dir``."""
        return self.work / "cache"

    @property
    def home(self) -> Path:
        """This contender's ``HYBRIDLESS_HOME``."""
        return self.work / "home"

    def build(self, image: str | None = None, extra: Sequence[str] = ()) -> None:
        """One build, into the local store (or ``image`` when given)."""
        run([*ours_command(), "-q", "build", str(self.app), "--image", image or self.image,
             "--run-image", self.base_ref, "--cache-dir", str(self.cache_dir), *extra],
            env={**ours_env(self.home), **dict(self.env)})

    def build_and_load(self, archive: Path, name: str) -> None:
        """Into the daemon the only way there is yet: a ``docker-archive:`` then ``docker load``."""
        archive.unlink(missing_ok=True)
        self.build(f"docker-archive:{archive}:{name}")
        run(["docker", "load", "-q", "-i", str(archive)])

    def forget(self) -> None:
        """Drop the cache and the store: the next build is cold."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class DockerBuild:
    """``docker build`` of one context with the classic builder (the engine here has no other)."""

    context: Path
    dockerfile: Path
    tag: str
    build_args: Mapping[str, str]
    network_host: bool = False
    _superseded: list[str] = field(default_factory=list)

    def build(self, *, no_cache: bool = False) -> None:
        """One build; ``no_cache`` makes it cold."""
        previous = image_id(self.tag)
        argv = ["docker", "build", "-q", "-t", self.tag, "-f", str(self.dockerfile)]
        argv += [f"--build-arg={k}={v}" for k, v in self.build_args.items()]
        if self.network_host:
            argv.append("--network=host")
        if no_cache:
            argv.append("--no-cache")
        built = run([*argv, str(self.context)], env={**os.environ, "DOCKER_BUILDKIT": "0"})
        if previous and previous != built.strip():
            self._superseded.append(previous)

    def clean(self) -> None:
        """Remove the images earlier builds superseded (untimed, between runs).

        The classic builder reuses any image whose parent, instruction and files match, so
        going back to an earlier state would be a cache hit; removing a superseded image also
        removes its untagged parents that nothing else uses, and nobody else's images.
        """
        while self._superseded:
            subprocess.run(["docker", "rmi", self._superseded.pop()], capture_output=True,
                           check=False)


def image_id(name: str) -> str | None:
    """The engine's id for an image name, or None when it has none."""
    done = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", name],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def docker_ready() -> bool:
    """Whether a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def remove_docker_image(name: str) -> None:
    """Remove an image by name when present (a cold build must not find it)."""
    subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)
