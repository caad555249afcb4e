"""Layer throughput: the exporter's writer against tarfile + gzip -6 on the same seeded trees.

Builds two trees whose bytes are half incompressible (random) and half text-like: a few large
files, and many small ones. Then, for each, runs the peer (``tarfile`` into ``gzip`` level 6,
sha256 of the tar and of the gzip stream) and ours (``tree.scan`` + ``tarball.write_layer``)
alternately, after one warm-up of each. Both outputs are fsynced, checked with ``gzip -t`` and
listed with ``tar -tvf``; the listings must agree on names, types and sizes.

Usage: python bench/layer_throughput.py [--mb 500] [--files 20000] [--pairs 5] [--dir DIR]
                                        [--only large|small] [--components]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle.image import tarball, tree

MIB = 1 << 20
PREFIX = "data"


def main(argv: list[str]) -> int:
    """Build the trees, run peer and ours alternately, verify, and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="total size of the large-file tree")
    parser.add_argument("--files", type=int, default=20000, help="file count of the small tree")
    parser.add_argument("--pairs", type=int, default=5, help="measured peer/ours pairs")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--only", choices=("large", "small"), help="run one shape only")
    parser.add_argument("--components", action="store_true",
                        help="also print the CPU cost per MiB of each step of ours, one at a "
                             "time on one thread, on the large tree's bytes")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="layer-bench-", dir=args.dir))
    try:
        rng = random.Random(args.seed)
        text = [_text_block(rng) for _ in range(8)]
        shapes = {}
        if args.only != "small":
            shapes["large files"] = _large_tree(scratch / "large", args.mb, rng, text)
        if args.only != "large":
            shapes["small files"] = _small_tree(scratch / "small", args.files, rng, text)
        os.sync()
        print(f"compressor: {tarball.COMPRESSOR}; {os.cpu_count()} CPUs; pairs: {args.pairs}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for shape, (root, nbytes) in shapes.items():
            _bench(shape, root, nbytes, scratch / "out", args.pairs)
        if args.components and "large files" in shapes:
            _components(shapes["large files"][0])
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _bench(shape: str, root: Path, nbytes: int, out: Path, pairs: int) -> None:
    runs: dict[str, list[float]] = {"peer": [], "ours": []}
    cpu: dict[str, list[float]] = {"peer": [], "ours": []}
    blobs: dict[str, Path] = {}
    for index in range(pairs + 1):
        for name, run in (("peer", _peer), ("ours", _ours)):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            os.sync()  # start each run with no one else's dirty pages for its fsync to wait on
            _warm(root)
            started, cpu_started = time.perf_counter(), time.process_time()
            blob = run(root, out)
            elapsed = time.perf_counter() - started
            if index:  # the first pair only warms caches
                runs[name].append(elapsed)
                cpu[name].append(time.process_time() - cpu_started)
            kept = out.parent / f"{name}.tar.gz"
            os.replace(blob, kept)
            blobs[name] = kept
    for blob in blobs.values():
        subprocess.run(["gzip", "-t", str(blob)], check=True)
    if _listing(blobs["peer"]) != _listing(blobs["ours"]):
        raise SystemExit(f"{shape}: the two tars list different entries")
    peer, ours = (nbytes / statistics.median(runs[k]) / 1e6 for k in ("peer", "ours"))
    ratio = blobs["ours"].stat().st_size / nbytes
    print(
        f"{shape}: {nbytes / 1e6:.0f} MB; peer {peer:.1f} MB/s, ours {ours:.1f} MB/s, "
        f"ours/peer {ours / peer:.1f}x (ours compresses to {ratio:.2f}); listings agree"
    )
    for name in ("peer", "ours"):
        per_mib = statistics.median(cpu[name]) * 1000 / (nbytes / MIB)
        print(f"  {name}: wall s {_fmt(runs[name])}; CPU {per_mib:.2f} ms per MiB")


def _components(root: Path) -> None:
    """CPU per MiB of each step ``tarball.write_layer`` takes, measured alone on one thread.

    Their sum is what both cores share; the wall-clock figures above show how much of two
    cores the writer gets.
    """
    import struct

    from isal import igzip_lib, isal_zlib

    blocks: list[bytes] = []
    with open(sorted(root.iterdir())[0], "rb", buffering=0) as f:
        while len(blocks) < 32 and (block := f.read(MIB)):
            blocks.append(block)
    buffer = bytearray(MIB)
    path = str(sorted(root.iterdir())[0])

    def read(_: bytes) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.readv(fd, [buffer])
        finally:
            os.close(fd)

    steps: dict[str, Callable[[bytes], object]] = {
        "deflate (isal one-shot, level 2)":
            lambda b: igzip_lib.compress(b, tarball.LEVEL, igzip_lib.COMP_DEFLATE),
        "crc32 (isal)": lambda b: struct.pack("<I", isal_zlib.crc32(b)),
        "sha256 of 1 MiB (the tar's hash; the blob's costs 0.72 of it)":
            lambda b: hashlib.sha256(b).digest(),
        "read 1 MiB from the page cache (open, readv, close)": read,
        "copy 1 MiB (the block handed to a worker)": lambda b: bytes(bytearray(b)),
    }
    print(f"components, CPU ms per MiB (median of 5 passes over {len(blocks)} MiB):")
    for name, step in steps.items():
        costs = []
        for _ in range(5):
            started = time.process_time()
            for block in blocks:
                step(block)
            costs.append((time.process_time() - started) * 1000 / len(blocks))
        print(f"  {name}: {statistics.median(costs):.2f}")


def _ours(root: Path, out: Path) -> Path:
    entries = tree.scan(root, prefix=PREFIX, confine=False)
    return tarball.write_layer(entries, out).path


def _peer(root: Path, out: Path) -> Path:
    """tarfile into gzip level 6, hashing the tar and the gzip stream on the way."""
    path = out / "peer.tar.gz"
    tar_hash, gz_hash = hashlib.sha256(), hashlib.sha256()
    with open(path, "wb") as raw:
        gz_sink = cast(IO[bytes], _Hashing(raw.write, gz_hash))
        with gzip.GzipFile(fileobj=gz_sink, mode="wb", compresslevel=6, mtime=0) as gz:
            tar_sink = cast(IO[bytes], _Hashing(gz.write, tar_hash))
            with tarfile.open(fileobj=tar_sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.add(root, arcname=PREFIX)
        raw.flush()
        os.fsync(raw.fileno())
    return path


class _Hashing:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, write: Callable[[bytes], object], digest: hashlib._Hash) -> None:
        self._write = write
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self._write(data)
        return len(data)

    def flush(self) -> None:
        return None


def _listing(blob: Path) -> list[tuple[str, str, str]]:
    """(type, size, name) per entry of ``tar -tvf``; owners and times differ by design."""
    listing = subprocess.run(
        ["tar", "-tvzf", str(blob)], check=True, capture_output=True, text=True
    ).stdout
    rows = []
    for line in listing.splitlines():
        perms, _owner, size, _date, _time, name = line.split(maxsplit=5)
        rows.append((perms[0], size, name.rstrip("/")))
    return sorted(rows)


def _warm(root: Path) -> None:
    """Read the tree so both contenders find it in the page cache.

    Some hosts reclaim idle page cache proactively (DAMON pageout after about a minute here),
    so data written once at the start is not reliably cached by the time a run reads it.
    """
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb", buffering=0) as f:
                while f.read(MIB):
                    pass


def _text_block(rng: random.Random) -> bytes:
    """One MiB of word-like text (deflate gets it to about 40%)."""
    letters = b"abcdefghijklmnopqrstuvwxyz"
    words = [bytes(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(3000)]
    out = bytearray()
    while len(out) < MIB:
        out += b" ".join(rng.choices(words, k=16)) + b"\n"
    return bytes(out[:MIB])


def _large_tree(root: Path, mb: int, rng: random.Random, text: list[bytes]) -> tuple[Path, int]:
    """Eight files, alternating one MiB of random bytes and one MiB of text."""
    root.mkdir(parents=True)
    per_file = max(1, mb * 1_000_000 // 8 // MIB)
    for index in range(8):
        with open(root / f"blob-{index}.bin", "wb") as f:
            for block in range(per_file):
                f.write(rng.randbytes(MIB) if block % 2 else text[block % len(text)])
    return root, 8 * per_file * MIB


def _small_tree(root: Path, count: int, rng: random.Random, text: list[bytes]) -> tuple[Path, int]:
    """``count`` files of 256 B to 16 KiB in 100 directories, every other one random bytes."""
    total = 0
    for index in range(count):
        folder = root / f"pkg-{index % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(256, 16384)
        if index % 2:
            data = rng.randbytes(size)
        else:
            start = rng.randrange(MIB - size)
            data = text[index % len(text)][start : start + size]
        (folder / f"module-{index}.js").write_bytes(data)
        total += size
    return root, total


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
