"""An empty CI runner building an unchanged Node.js app: cold, against registry reuse.

Both contenders start every run with an empty store and build cache (a fresh runner), build
``examples/nodejs-express`` (Express and serverless-http from the npm registry, Node.js from
the build host) on a busybox base in a loopback registry, and push the result there:

* cold: to a repository that is new for each run, with no cache image: every dependency is
  installed and every layer sent, as a CI job without reuse does;
* reuse: to the repository the last build pushed, with ``--cache-image`` beside it, so that
  ``--previous-image`` (the default, ``--image`` itself) and the cache image bring the layers
  back: no ``npm``, no upload.

It prints each run, then the median seconds of each, the ratio reuse/cold, and the blobs each
push sent (from the CLI's own summary line).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _common import (
    REPO_ROOT,
    BenchError,
    Contender,
    add_ours_option,
    alternate,
    install_ours,
    machine,
    median,
    ours_command,
    ours_env,
    ratio,
    seconds,
    table,
)

from tests.infra.images import build_busybox_base
from tests.infra.services import running_registry

_SENT = re.compile(r"pushed .*?: (\d+) blob\(s\) sent, (\d+) mounted, (\d+) already there")


def main() -> int:
    """Prepare the registry, the base and the app; alternate the contenders; print tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="measured rounds (default 3)")
    add_ours_option(parser)
    args = parser.parse_args()
    for needed in ("skopeo", "npm", "node"):
        if shutil.which(needed) is None:
            print(f"{needed} is not installed", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-ephemeral-") as text, ExitStack() as stack:
        scratch = Path(text)
        install_ours(scratch, args.ours)
        registry = stack.enter_context(running_registry(scratch / "registry"))
        base_layout = build_busybox_base(scratch / "busybox")
        base = f"docker://{registry.host}/base/busybox:1"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", base_layout.ref,
                        base], check=True)
        app = scratch / "app"
        shutil.copytree(REPO_ROOT / "examples" / "nodejs-express", app)
        with (app / "project.toml").open("a") as descriptor:
            descriptor.write('\n[io.hybridless.buildpacks."hybridless/nodejs"]\n'
                             'node = "image"\n')
        print(f"app: examples/nodejs-express; {machine()}", file=sys.stderr)
        results, sent = _measure(scratch, app, base, registry.host, args.pairs)
    cold, reuse = results["cold"], results["reuse"]
    rows = [[name, seconds(results[name].wall), f"{median(results[name].wall):.3f}",
             f"{median(results[name].cpu):.3f}", sent[name]] for name in ("cold", "reuse")]
    print(table(["contender", "runs s", "median s", "median CPU s", "last push"], rows))
    print(f"\nreuse/cold (median wall): {ratio(median(reuse.wall), median(cold.wall))}")
    return 0


def _measure(scratch: Path, app: Path, base: str, host: str, pairs: int
             ) -> tuple[dict[str, object], dict[str, str]]:
    counter = itertools.count()
    sent = {"cold": "", "reuse": ""}
    runner = scratch / "runner"

    def empty_runner() -> None:
        shutil.rmtree(runner, ignore_errors=True)

    def build(name: str, image: str, extra: list[str]) -> None:
        done = subprocess.run(
            [*ours_command(), "--json", "build", str(app), "--image", image, "--run-image",
             base, "--executor", "local", "--cache-dir", str(runner / "cache"), *extra],
            env={**ours_env(runner / "home"), "XDG_CACHE_HOME": str(runner / "xdg")},
            capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise BenchError(f"build exited {done.returncode}:\n{done.stderr[-3000:]}")
        json.loads(done.stdout)
        found = _SENT.search(done.stderr)
        summary = "nothing (the registry holds the image)"
        if found:
            summary = f"{found[1]} sent, {found[2]} mounted, {found[3]} there"
        sent[name] = summary

    def cold() -> None:
        build("cold", f"docker://{host}/cold-{next(counter)}/app:1", [])

    warm = f"docker://{host}/warm/app:1"
    cache = f"docker://{host}/warm/app-cache:build"

    def reuse() -> None:
        build("reuse", warm, ["--cache-image", cache])

    # The previous image and the cache image the reuse runs start from.
    empty_runner()
    reuse()

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    say("an empty runner each run:")
    results = alternate([Contender("cold", cold, empty_runner),
                         Contender("reuse", reuse, empty_runner)], pairs, progress=say)
    return dict(results), sent


if __name__ == "__main__":
    raise SystemExit(main())
