"""How rebuild times grow with the app's size: bytes against file count.

Each tree is a Procfile app (busybox ``httpd`` serving it) whose files look like installed
dependencies: ``vendor/<package>/`` directories of JavaScript, JSON and text files with
sizes spread around the mean, half of the bytes random and half text-like. For each tree it
measures a no-change rebuild and a one-file rebuild (one small file edited), ours into the
local store against ``docker build`` of ``bench/peers/Dockerfile.procfile`` on the same
busybox base, alternating the two after a warm-up.

``--quick`` (the default) uses 10 MB in 1,000 files, 100 MB in 1,000 files and 10 MB in
10,000 files, so that bytes and file count each change tenfold with the other held. Our
no-change rebuild reads no file (the stat index), so it should follow the file count and
not the bytes. A one-file rebuild re-tars the whole app layer, so it follows the bytes.
``--full`` adds 1 GB in 1,000 files and 100 MB in 100,000 files, after checking free disk.

Usage: python bench/scale.py [--quick | --full] [--pairs 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BYTECODE_NOTE,
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
    seconds,
    table,
)

PEERS = Path(__file__).resolve().parent / "peers"
MB = 1_000_000
MIB = 1 << 20
QUICK = ((1_000, 10 * MB), (1_000, 100 * MB), (10_000, 10 * MB))
FULL = (*QUICK, (1_000, 1000 * MB), (100_000, 100 * MB))
FILES_PER_PACKAGE = 20
PROCFILE = 'web: exec httpd -f -v -p "${PORT}" -h /var/task\n'
EDITED = "vendor/pkg-00000/index.js"


@dataclass(frozen=True)
class Shape:
    """One tree: how many files and how many bytes."""

    files: int
    size: int

    @property
    def label(self) -> str:
        """``10 MB / 1k files``."""
        size = f"{self.size / 1000 / MB:g} GB" if self.size >= 1000 * MB else \
            f"{self.size / MB:g} MB"
        return f"{size} / {self.files // 1000}k files"


def main(argv: list[str]) -> int:
    """Generate the trees one by one, measure each, print the growth table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="10 MB, 100 MB and 10k files")
    mode.add_argument("--full", action="store_true", help="adds 1 GB and 100k files")
    parser.add_argument("--pairs", type=int, default=5, help="measured pairs per measurement")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    add_ours_option(parser)
    args = parser.parse_args(argv)
    shapes = [Shape(*s) for s in (FULL if args.full else QUICK)]
    if not docker_ready():
        print("no Docker engine answers: the peer cannot run", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.dir))
    try:
        if args.full:
            _check_disk(scratch, shapes)
        base_ref, docker_base = _base(scratch)
        install_ours(scratch, args.ours)
        print(f"machine: {machine()}")
        print(f"base: {base_ref} (in Docker as {docker_base})")
        print(f"note: {BYTECODE_NOTE}")
        print(f"rounds: 1 warm-up + {args.pairs} measured pairs, docker build and ours in turn\n")
        pool = _Pool(random.Random(args.seed))
        results: dict[Shape, dict[str, dict[str, Timings]]] = {}
        for shape in shapes:
            print(f"{shape.label}: generating …", flush=True)
            work = scratch / f"{shape.files}-{shape.size}"
            app = work / "app"
            _generate(app, shape, pool)
            results[shape] = _measure(app, work, base_ref, docker_base, args.pairs,
                                      print if args.verbose else None)
            shutil.rmtree(work, ignore_errors=True)
        _report(results)
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _measure(app: Path, work: Path, base_ref: str, docker_base: str, pairs: int,
             progress: Callable[[str], None] | None) -> dict[str, dict[str, Timings]]:
    peer = DockerBuild(app, PEERS / "Dockerfile.procfile", "bench-scale:peer",
                       {"BASE": docker_base})
    ours = Ours(app, base_ref, work / "ours", "bench-scale:ours")
    edits = [0]

    def edit() -> None:
        # A new content every time: an old one would be a cache hit for docker build.
        peer.clean()
        edits[0] += 1
        path = app / EDITED
        path.write_bytes(path.read_bytes().split(b"\n// bench edit")[0] +
                         f"\n// bench edit {edits[0]}\n".encode())

    out: dict[str, dict[str, Timings]] = {}
    print("  one-file …", flush=True)
    out["one-file"] = alternate([Contender("docker build", peer.build, edit),
                                 Contender("ours", ours.build, edit)], pairs, progress=progress)
    # The stat index distrusts files changed within a second of the previous build's start.
    time.sleep(1.1)
    print("  no-change …", flush=True)
    out["no-change"] = alternate([Contender("docker build", peer.build, peer.clean),
                                  Contender("ours", ours.build)], pairs, progress=progress)
    for scenario, times in out.items():
        for who, timing in times.items():
            print(f"    {scenario} {who}: wall {seconds(timing.wall)}; CPU {seconds(timing.cpu)}")
    peer.clean()
    for image in (peer.tag, ours.image):
        remove_docker_image(image)
    return out


def _report(results: dict[Shape, dict[str, dict[str, Timings]]]) -> None:
    rows = []
    for shape, scenarios in results.items():
        row = [shape.label]
        for scenario in ("no-change", "one-file"):
            peer = median(scenarios[scenario]["docker build"].wall)
            ours = median(scenarios[scenario]["ours"].wall)
            cpu = median(scenarios[scenario]["ours"].cpu)
            row += [f"{peer:.3f}", f"{ours:.3f}", f"{cpu:.3f}", ratio(ours, peer)]
        rows.append(row)
    print("\nmedians, seconds (wall, and CPU of our process)")
    print(table(["tree", "no-change docker", "ours", "ours CPU", "ratio",
                 "one-file docker", "ours", "ours CPU", "ratio"], rows))
    _growth(results)


def _growth(results: dict[Shape, dict[str, dict[str, Timings]]]) -> None:
    """Say what a tenfold change of bytes, and of files, did to our no-change rebuild."""
    def cpu(shape: Shape) -> float:
        return median(results[shape]["no-change"]["ours"].cpu)

    shapes = list(results)
    small = Shape(1_000, 10 * MB)
    if small not in results:
        return
    print()
    for other in shapes:
        if other == small:
            continue
        grows = [f"{other.size / small.size:g}x bytes" if other.size != small.size else "",
                 f"{other.files / small.files:g}x files" if other.files != small.files else ""]
        what = ", ".join(g for g in grows if g)
        print(f"no-change, ours, CPU: {small.label} {cpu(small):.3f}s → {other.label} "
              f"{cpu(other):.3f}s ({what}: {cpu(other) - cpu(small):+.3f}s)")


class _Pool:
    """Seeded bytes to cut file contents from: one random half, one text-like half."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.randbytes(8 * MIB)
        words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
                 for _ in range(3000)]
        text = bytearray()
        while len(text) < 8 * MIB:
            text += b" ".join(rng.choices(words, k=12)) + b";\n"
        self.text = bytes(text[: 8 * MIB])

    def chunk(self, size: int, index: int) -> bytes:
        """``size`` bytes, random for odd ``index`` and text-like for even."""
        source = self.random if index % 2 else self.text
        out = bytearray()
        while len(out) < size:
            take = min(size - len(out), len(source))
            start = self.rng.randrange(len(source) - take + 1)
            out += source[start : start + take]
        return bytes(out)


def _generate(app: Path, shape: Shape, pool: _Pool) -> None:
    """Write the Procfile app whose ``vendor/`` holds ``shape.files`` files."""
    app.mkdir(parents=True)
    (app / "Procfile").write_text(PROCFILE)
    (app / "project.toml").write_text(
        '[_]\nschema-version = "0.2"\n'
        f'id = "dev.hybridless.bench.scale-{shape.files}-{shape.size}"\n')
    count = shape.files - 2
    # Log-normal sizes, as installed packages have: many small files, a few big ones.
    weights = [pool.rng.lognormvariate(0, 1.2) for _ in range(count)]
    scale = (shape.size - len(PROCFILE)) / sum(weights)
    names = ("index.js", "package.json", "README.md", "lib/util.js", "lib/core.js")
    for index, weight in enumerate(weights):
        package = app / "vendor" / f"pkg-{index // FILES_PER_PACKAGE:05d}"
        slot = index % FILES_PER_PACKAGE
        name = names[slot] if slot < len(names) else f"lib/part-{slot}.js"
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pool.chunk(max(1, int(weight * scale)), index))


def _check_disk(scratch: Path, shapes: list[Shape]) -> None:
    """Stop before filling the disk: the biggest tree, its blobs and docker's copies."""
    biggest = max(s.size for s in shapes)
    # The tree, our cache (a new app blob per one-file run until the tree is removed) and
    # docker's layers of the same bytes.
    need = biggest * 12
    free = shutil.disk_usage(scratch).free
    if free < need:
        raise BenchError(f"--full needs about {need / 1e9:.0f} GB free under {scratch}, "
                         f"{free / 1e9:.0f} GB is; pass --dir on a bigger disk")


def _base(scratch: Path) -> tuple[str, str]:
    """The busybox test base as an OCI layout, and its name once loaded into Docker.

    The layout is kept beside the tests' cached bases: umoci stamps the time into each new
    one, and every new digest would be one more image left in the engine.
    """
    import docker

    from tests.infra.images import BaseImage, build_busybox_base, cache_root, load_into_docker

    kept = cache_root() / "bench-busybox"
    if (kept / "layout" / "index.json").is_file():
        base = BaseImage(layout_dir=kept / "layout", tag="busybox")
    else:
        shutil.rmtree(kept, ignore_errors=True)
        base = build_busybox_base(kept)
    loaded, _ = load_into_docker(docker.from_env(), base, "hybridless-tests/busybox", scratch)
    return base.ref, loaded.name


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
