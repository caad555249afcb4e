"""Push and pull a ~200 MB three-layer image through a loopback registry: ours against skopeo.

Scenarios, each alternating skopeo and ours (A B A B …) after one warm-up round:

* push: ``push oci:LAYOUT docker://REG/…`` into a registry started empty for that run,
  against ``skopeo copy oci:LAYOUT docker://REG/…``;
* pull: ``push docker://REG/… NAME`` (into a fresh local store, which is an OCI layout)
  against ``skopeo copy docker://REG/… oci:OUT``;
* re-push: the same push again to a registry that already holds the image.

Not part of the test suite. Prints every run, then the medians and ours/skopeo ratios.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Contender,
    Timings,
    add_ours_option,
    alternate,
    install_ours,
    machine,
    median,
    ours_command,
    ours_env,
    ratio,
    run,
    table,
)

from tests.infra.oci_images import image_manifest, write_layout

# _common put the repository root on sys.path: the test fixtures start registries.
from tests.infra.services import Registry, running_registry

SKOPEO_TLS = ("--src-tls-verify=false", "--dest-tls-verify=false")


def make_image(layout: Path, total_mb: int) -> None:
    """Three gzip'd tar layers of incompressible bytes (50/35/15 %), about ``total_mb`` MB."""
    from isal import igzip

    layers = []
    for index, share in enumerate((50, 35, 15)):
        data = random.Random(index).randbytes(total_mb * 10_000 * share)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo(f"layer{index}/data.bin")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layers.append(igzip.compress(raw.getvalue(), compresslevel=1, mtime=0))
    manifest, _ = image_manifest(layout, layers)
    write_layout(layout, "v1", manifest)


class Registries:
    """One registry at a time, each started empty; the previous one is stopped."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.stack = ExitStack()
        self.current: Registry | None = None

    def fresh(self) -> None:
        """Stop the running registry and start an empty one."""
        self.stack.close()
        self.count += 1
        self.current = self.stack.enter_context(
            running_registry(self.scratch / f"registry-{self.count}"))

    @property
    def host(self) -> str:
        """The running registry's host:port."""
        assert self.current is not None
        return self.current.host


def main() -> int:
    """Run the three scenarios and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="image size in MB (default 200)")
    parser.add_argument("--pairs", type=int, default=3, help="measured rounds (default 3)")
    add_ours_option(parser)
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as scratch_text:
        scratch = Path(scratch_text)
        install_ours(scratch, args.ours)
        layout = scratch / "layout"
        make_image(layout, args.mb)
        size = sum(p.stat().st_size for p in (layout / "blobs").rglob("*") if p.is_file())
        print(f"image: {size / 1e6:.1f} MB in 3 layers; {machine()}", file=sys.stderr)
        registries = Registries(scratch)
        try:
            push, again, pull = _scenarios(scratch, f"oci:{layout}:v1", registries, args.pairs)
        finally:
            registries.stack.close()
    rows = []
    for label, timings in (("push 3 layers", push), ("pull 3 layers", pull),
                           ("re-push unchanged", again)):
        peer, ours = median(timings["skopeo"].wall), median(timings["ours"].wall)
        rows.append([label, f"{peer:.3f}", f"{ours:.3f}", ratio(ours, peer),
                     f"{median(timings['ours'].cpu):.3f}"])
    print(table(["scenario", "skopeo s", "ours s", "ours/skopeo", "ours CPU s"], rows))
    return 0


def _scenarios(scratch: Path, source: str, registries: Registries, pairs: int
               ) -> tuple[dict[str, Timings], dict[str, Timings], dict[str, Timings]]:
    home = scratch / "home"
    out = f"oci:{scratch / 'out'}:v1"

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    def ours(src: str, dest: str) -> Callable[[], None]:
        def once() -> None:
            run([*ours_command(), "-q", "push", src.format(host=registries.host),
                 dest.format(host=registries.host)], env=ours_env(home))
        return once

    def skopeo(src: str, dest: str) -> Callable[[], None]:
        def once() -> None:
            run(["skopeo", "copy", "-q", *SKOPEO_TLS, src.format(host=registries.host),
                 dest.format(host=registries.host)])
        return once

    def fresh() -> None:
        registries.fresh()
        shutil.rmtree(home, ignore_errors=True)

    ours_push = ours(source, "docker://{host}/ours/image:v1")
    peer_push = skopeo(source, "docker://{host}/peer/image:v1")
    say("push (an empty registry and store each run):")
    push = alternate([Contender("skopeo", peer_push, fresh), Contender("ours", ours_push, fresh)],
                     pairs, progress=say)

    ours_push()
    peer_push()
    say("re-push (the registry holds the image):")
    again = alternate([Contender("skopeo", peer_push), Contender("ours", ours_push)], pairs,
                      progress=say)

    def clean() -> None:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(scratch / "out", ignore_errors=True)

    say("pull (an empty store and layout each run):")
    pull = alternate([Contender("skopeo", skopeo("docker://{host}/peer/image:v1", out), clean),
                      Contender("ours", ours("docker://{host}/ours/image:v1", "pulled:v1"),
                                clean)],
                     pairs, progress=say)
    return push, again, pull


if __name__ == "__main__":
    raise SystemExit(main())
