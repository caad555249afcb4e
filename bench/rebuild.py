"""Rebuild times: our ``build`` against ``docker build`` of a careful user's Dockerfile.

Two apps on the same locally built Debian base (bookworm with Node.js and npm): a copy of
``examples/nodejs-express`` (Express behind serverless-http, 72 npm packages) and a copy of
``examples/procfile-hello`` with 300 more static files. The peer is the classic builder
running ``bench/peers/Dockerfile.node`` (lockfile, ``npm ci --omit=dev``, then the source) or
``bench/peers/Dockerfile.procfile``, from the same base loaded into the engine.

For each app it measures a cold build (no cache at all), a one-file change, no change (ours
answers that from the last build's receipt, see ``lifecycle/cache/receipt.py``), no change through
every phase (``build --full``: what ours costs when no receipt applies) and, for the Node app,
a dependency change; for ours into the local store (``name:tag``) and into the Docker
daemon. For the Node app, ``cold-container`` is the cold build with ``--executor docker``:
npm runs in a build container of the same Debian image the peer builds on (the app asks for
the image's Node.js, ``node = "image"``, as the peer uses it), against the peer's cold
``docker build``; after it, a no-change ``build --full`` is run once and the containers the
engine created meanwhile are counted (``docker events``), which must be none. The daemon
sink does not exist yet, so that column is a ``docker-archive:`` build
followed by ``docker load``, which reads the whole archive, base layers included.
Contenders run in turn (docker, ours → store, ours → daemon), one warm-up round and then
``--pairs`` measured rounds, and the medians are printed with the
ratio ours/docker.

Usage: python bench/rebuild.py [--pairs 5] [--apps node,procfile]
                               [--scenarios cold,one-file,no-change,no-change-full,deps,
                                            cold-container] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BYTECODE_NOTE,
    REPO_ROOT,
    BenchError,
    Contender,
    DockerBuild,
    Ours,
    Timings,
    add_ours_option,
    alternate,
    docker_ready,
    install_ours,
    machine,
    median,
    ratio,
    remove_docker_image,
    run,
    seconds,
    table,
)

PEERS = Path(__file__).resolve().parent / "peers"
SCENARIOS = ("cold", "one-file", "no-change", "no-change-full", "deps", "cold-container")
APPS = ("node", "procfile")
# The extra dependency of the "deps" scenario: small, with no dependencies of its own, and
# not already in the example's tree, so that installing it downloads something.
EXTRA_DEPENDENCY = "is-number@7.0.0"
CA_FILE = "build-ca.pem"


@dataclass
class App:
    """One app under test: its tree, how to change it, and the three contenders' builders."""

    name: str
    tree: Path
    edit_path: str
    peer: DockerBuild
    store: Ours
    daemon: Ours
    archive: Path
    deps: tuple[dict[str, bytes], dict[str, bytes]] | None = None
    edits: int = 0
    container: Ours | None = None
    """Ours with ``--executor docker`` on a copy of the app that uses the image's Node.js."""

    def edit_one_file(self) -> None:
        """Change one source file's content, never back to an earlier content."""
        self.edits += 1
        path = self.tree / self.edit_path
        lines = path.read_text().splitlines()
        if lines and lines[-1].startswith(("// bench edit", "<!-- bench edit")):
            lines.pop()
        mark = f"// bench edit {self.edits}" if path.suffix == ".js" else \
            f"<!-- bench edit {self.edits} -->"
        path.write_text("\n".join([*lines, mark]) + "\n")

    def set_deps(self, variant: int) -> None:
        """Write the manifest and lockfile of dependency set 0 or 1."""
        assert self.deps is not None
        for name, data in self.deps[variant].items():
            (self.tree / name).write_bytes(data)


def main(argv: list[str]) -> int:
    """Prepare the base and the apps, run every scenario, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="measured rounds per scenario")
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    add_ours_option(parser)
    args = parser.parse_args(argv)
    apps = [a for a in args.apps.split(",") if a]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(apps) - set(APPS)) + sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown app or scenario: {', '.join(unknown)}")
    if not docker_ready():
        print("no Docker engine answers: the peer cannot run", file=sys.stderr)
        return 2

    scratch = Path(tempfile.mkdtemp(prefix="rebuild-bench-", dir=args.dir))
    try:
        base_ref, docker_base = _base(scratch)
        install_ours(scratch, args.ours)
        print(f"machine: {machine()}")
        print(f"base: {base_ref} (in Docker as {docker_base})")
        print(f"note: {BYTECODE_NOTE}; 'daemon' is docker-archive: + docker load")
        print(f"rounds: 1 warm-up + {args.pairs} measured, contenders in turn\n")
        progress = print if args.verbose else None
        for name in apps:
            app = _make_node(scratch, base_ref, docker_base) if name == "node" else \
                _make_procfile(scratch, base_ref, docker_base)
            rows = []
            for scenario in scenarios:
                if (scenario == "deps" and app.deps is None) or (
                        scenario == "cold-container" and app.container is None):
                    continue
                print(f"{app.name}: {scenario} …", flush=True)
                if scenario == "cold-container":
                    ours = app.container
                    assert ours is not None
                    times = alternate(_container_contenders(app, ours), args.pairs,
                                      progress=progress)
                    rows.append(_container_row(times))
                    _details(times)
                    created = _containers_created(
                        partial(ours.build, extra=("--executor", "docker", "--full")))
                    print(f"  containers the engine created during a no-change build --full "
                          f"with --executor docker: {created}")
                    if created:
                        raise BenchError(f"a no-change rebuild started {created} container(s)")
                    continue
                times = alternate(_contenders(app, scenario), args.pairs, progress=progress)
                rows.append(_row(scenario, times))
                _details(times)
            print()
            print(f"{app.name} (medians, seconds of wall time)")
            print(table(["scenario", "docker build", "ours → store", "ratio",
                         "ours → daemon", "ratio", "ours → store CPU"], rows))
            print()
            app.peer.clean()
            for image in (app.peer.tag, app.store.image):
                remove_docker_image(image)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _contenders(app: App, scenario: str) -> list[Contender]:
    """The three contenders of one scenario, each with its untimed preparation."""
    name = f"bench-{app.name}:"
    state = {"peer": 0, "store": 0, "daemon": 0}

    def prepare(who: str, forget: Callable[[], None]) -> Callable[[], None]:
        def before() -> None:
            app.peer.clean()
            if scenario == "cold":
                forget()
            elif scenario == "one-file":
                app.edit_one_file()
            elif scenario == "deps":
                # Each contender flips its own state, so every run sees a different lockfile
                # from the one its previous build saw.
                state[who] = 1 - state[who]
                app.set_deps(state[who])
        return before

    if scenario.startswith("no-change"):
        # The stat index distrusts files changed within a second of the previous build's
        # start (appindex's rule); a user's no-change rebuild comes later than that.
        time.sleep(1.1)
    cold = scenario == "cold"
    # "no-change-full" is the no-change rebuild through every phase (`build --full`): what
    # a rebuild costs when the receipt cannot answer, e.g. with a non-hermetic buildpack.
    extra = ("--full",) if scenario == "no-change-full" else ()
    return [
        Contender("docker build", lambda: app.peer.build(no_cache=cold),
                  prepare("peer", lambda: None)),
        Contender("ours → store", lambda: app.store.build(extra=extra),
                  prepare("store", app.store.forget)),
        Contender("ours → daemon", lambda: app.daemon.build_and_load(app.archive, name + "ours"),
                  prepare("daemon", app.daemon.forget)),
    ]


def _container_contenders(app: App, ours: Ours) -> list[Contender]:
    """Both cold: the peer without its build cache, ours without cache or store."""
    def before_peer() -> None:
        app.peer.clean()

    return [
        Contender("docker build", lambda: app.peer.build(no_cache=True), before_peer),
        Contender("ours, --executor docker",
                  lambda: ours.build(extra=("--executor", "docker")), ours.forget),
    ]


def _container_row(times: dict[str, Timings]) -> list[str]:
    peer = median(times["docker build"].wall)
    ours = median(times["ours, --executor docker"].wall)
    return ["cold-container", f"{peer:.3f}", f"{ours:.3f}", ratio(ours, peer), "-", "-",
            f"{median(times['ours, --executor docker'].cpu):.3f}"]


def _containers_created(action: Callable[[], None]) -> int:
    """How many containers the engine created while ``action`` ran (from ``docker events``)."""
    since = time.time()
    action()
    until = time.time() + 0.5
    time.sleep(0.6)
    events = run(["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                  "--filter", "type=container", "--filter", "event=create",
                  "--format", "{{.ID}}"])
    return len([line for line in events.splitlines() if line.strip()])


def _row(scenario: str, times: dict[str, Timings]) -> list[str]:
    peer = median(times["docker build"].wall)
    store = median(times["ours → store"].wall)
    daemon = median(times["ours → daemon"].wall)
    return [scenario, f"{peer:.3f}", f"{store:.3f}", ratio(store, peer), f"{daemon:.3f}",
            ratio(daemon, peer), f"{median(times['ours → store'].cpu):.3f}"]


def _details(times: dict[str, Timings]) -> None:
    for who, timing in times.items():
        print(f"  {who}: wall {seconds(timing.wall)}; CPU {seconds(timing.cpu)}")


def _base(scratch: Path) -> tuple[str, str]:
    """The Debian test base as an OCI layout, and its name once loaded into Docker."""
    import docker

    from tests.infra.images import build_debian_base, cache_root, load_into_docker

    base = build_debian_base(cache_root())
    loaded, _ = load_into_docker(docker.from_env(), base, "hybridless-tests/debian", scratch)
    return base.ref, loaded.name


def _ca_bundle() -> bytes:
    """The CA bundle the build host trusts, for npm inside the peer's build container."""
    for var in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"):
        path = os.environ.get(var)
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    return b""


def _make_node(scratch: Path, base_ref: str, docker_base: str) -> App:
    root = scratch / "node"
    tree = root / "app"
    shutil.copytree(REPO_ROOT / "examples" / "nodejs-express", tree,
                    ignore=shutil.ignore_patterns("node_modules"))
    (tree / CA_FILE).write_bytes(_ca_bundle())
    with (tree / "project.toml").open("a") as descriptor:
        descriptor.write(f'\n[io.buildpacks]\nexclude = ["{CA_FILE}"]\n')
    deps = _dependency_variants(tree, root / "variant")
    peer = DockerBuild(tree, PEERS / "Dockerfile.node", "bench-node:peer",
                       {"BASE": docker_base}, network_host=True)
    # The container row's app: the same, asking for the image's Node.js as the peer uses it.
    image_node = root / "app-image-node"
    shutil.copytree(tree, image_node)
    with (image_node / "project.toml").open("a") as descriptor:
        descriptor.write('\n[io.hybridless.buildpacks."hybridless/nodejs"]\nnode = "image"\n')
    container = Ours(image_node, base_ref, root / "container", "bench-node:container",
                     env=(("HYBRIDLESS_BUILD_IMAGE", docker_base),))
    return App("node", tree, "src/app.js", peer,
               Ours(tree, base_ref, root / "store", "bench-node:ours"),
               Ours(tree, base_ref, root / "daemon", "bench-node:ours"),
               root / "ours.tar", deps, container=container)


def _dependency_variants(tree: Path, work: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The app's manifest and lockfile, and the same with one more dependency added."""
    names = ("package.json", "package-lock.json")
    before = {name: (tree / name).read_bytes() for name in names}
    work.mkdir(parents=True)
    for name in names:
        shutil.copyfile(tree / name, work / name)
    run(["npm", "install", "--package-lock-only", "--no-audit", "--no-fund",
         "--save-exact", EXTRA_DEPENDENCY], cwd=work)
    after = {name: (work / name).read_bytes() for name in names}
    if json.loads(after["package.json"]) == json.loads(before["package.json"]):
        raise BenchError(f"npm did not add {EXTRA_DEPENDENCY} to package.json")
    return before, after


def _make_procfile(scratch: Path, base_ref: str, docker_base: str) -> App:
    root = scratch / "procfile"
    tree = root / "app"
    shutil.copytree(REPO_ROOT / "examples" / "procfile-hello", tree)
    assets = tree / "public" / "assets"
    for index in range(300):
        folder = assets / f"set-{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        body = f"/* asset {index} */\n" + "".join(
            f".rule-{index}-{n} {{ margin: {n}px; padding: {index % 7}px; }}\n"
            for n in range(40 + index % 200))
        (folder / f"style-{index}.css").write_text(body)
    peer = DockerBuild(tree, PEERS / "Dockerfile.procfile", "bench-procfile:peer",
                       {"BASE": docker_base})
    return App("procfile", tree, "public/index.html", peer,
               Ours(tree, base_ref, root / "store", "bench-procfile:ours"),
               Ours(tree, base_ref, root / "daemon", "bench-procfile:ours"),
               root / "ours.tar")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
