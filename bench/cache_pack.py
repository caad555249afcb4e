"""Writing a cache image's layers: packing every cache layer anew against the stat index.

A project cache gets one ``cache`` layer of ``--mb`` MB (half random, half text, in files of
1 MB and a thousand small ones), as a package manager's download cache looks. Then
``cacheimage.assemble`` runs alternately:

* pack: the layer's stat index is deleted first, so the layer is read and compressed again
  (what every build did before the index);
* index: the index from the previous run is kept, so an untouched layer reuses its blob.

It prints every run, the medians and index/pack.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import median, ratio, seconds, table

from lifecycle.cache import cacheimage
from lifecycle.cache.layers import LayerRecord, ProjectCache

BUILDPACK = "bench/cache"


def fill(directory: Path, total_mb: int) -> None:
    """Files of 1 MB (half incompressible) and a thousand small text files."""
    rng = random.Random(19)
    words = [b"package", b"tarball", b"integrity", b"sha512", b"version", b"resolved"]
    for index in range(total_mb):
        half = rng.randbytes(1 << 19)
        text = b" ".join(rng.choice(words) for _ in range(80_000))[: 1 << 19]
        (directory / f"blob-{index:04d}.tgz").write_bytes(half + text)
    small = directory / "index"
    small.mkdir()
    for index in range(1000):
        (small / f"{index:04d}.json").write_bytes(b'{"key": "%d"}' % index)


def main() -> int:
    """Fill a cache layer, then alternate packing it anew and reusing it through the index."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="layer size in MB (default 200)")
    parser.add_argument("--pairs", type=int, default=3, help="measured rounds (default 3)")
    args = parser.parse_args()
    log = logging.getLogger("bench.cache_pack")
    with tempfile.TemporaryDirectory(prefix="bench-cache-pack-") as text:
        cache = ProjectCache(Path(text) / "cache", "id-bench")
        layer = cache.layers_dir(BUILDPACK) / "downloads"
        layer.mkdir()
        fill(layer, args.mb)
        cache.write_record(LayerRecord(BUILDPACK, "downloads", False, False, True, {"v": 1}))
        index = cache.pack_index_path(BUILDPACK, "downloads")
        # Files younger than a second count as possibly still changing: let them age.
        time.sleep(1.5)
        runs: dict[str, list[float]] = {"pack": [], "index": []}
        for round_no in range(args.pairs + 1):
            for name in ("pack", "index"):
                if name == "pack":
                    index.unlink(missing_ok=True)
                started = time.perf_counter()
                cacheimage.assemble(cache, [BUILDPACK], None, "linux/amd64", 315532801, log)
                elapsed = time.perf_counter() - started
                if round_no > 0:
                    runs[name].append(elapsed)
                print(f"    {'warm-up' if round_no == 0 else f'pair {round_no}'}: {name} "
                      f"{elapsed:.3f}s", file=sys.stderr)
    size = args.mb
    rows = [[name, seconds(values), f"{median(values):.3f}"] for name, values in runs.items()]
    print(f"one cache layer of {size} MB; {os.cpu_count()} CPUs")
    print(table(["contender", "runs s", "median s"], rows))
    print(f"\nindex/pack (median): {ratio(median(runs['index']), median(runs['pack']))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
