"""``gc`` gives disk back: cache blobs no project's latest build uses, honest freed bytes with
hard links between store and cache, dead writers' temps in the cache, and no harm to a build
running meanwhile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage


def disk_bytes(cli: CliRunner) -> int:
    """Bytes the blobs of store and cache hold on disk: each inode once, and only when no
    name outside them (the run image's layout) keeps it alive."""
    links: dict[tuple[int, int], int] = {}
    sizes: dict[tuple[int, int], tuple[int, int]] = {}
    for root in (cli.cache / "hybridless", cli.home / "store"):
        directory = root / "blobs" / "sha256"
        for path in directory.iterdir() if directory.is_dir() else ():
            st = path.lstat()
            key = (st.st_dev, st.st_ino)
            links[key] = links.get(key, 0) + 1
            sizes[key] = (st.st_size, st.st_nlink)
    return sum(size for key, (size, nlink) in sizes.items() if links[key] == nlink)


def blob_count(root: Path) -> int:
    directory = root / "blobs" / "sha256"
    return len(list(directory.iterdir())) if directory.is_dir() else 0


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_repeated_builds_give_their_disk_back(cli: CliRunner, busybox_base: BaseImage,
                                              hello_app: Path) -> None:
    cache = cli.cache / "hybridless"
    big = hello_app / "data.bin"
    digests: list[str] = []
    last: dict[str, Any] = {}
    for round_ in range(5):
        big.write_bytes(os.urandom(2 << 20) + bytes([round_]))  # a new app layer each time
        last = run_json(cli, "build", hello_app, "--image", "hello:1",
                        "--run-image", busybox_base.ref)
        digests.append(last["digest"])
    assert len(set(digests)) == 5
    before = disk_bytes(cli)
    assert blob_count(cache) >= 5  # every old app layer is still in the cache
    report = run_json(cli, "gc")
    after = disk_bytes(cli)
    # What gc says it freed is what the disk got back, hard links and all.
    assert report["freed"] == before - after
    assert report["freed"] >= 4 * (2 << 20)
    assert report["freed"] == report["store_freed"] + report["cache"]["freed"]
    assert len(report["cache"]["removed"]) >= 4
    # What the latest build uses stays: the next rebuild is still answered without work,
    # and a second gc finds nothing more to give back.
    again = run_json(cli, "build", hello_app, "--image", "hello:1", "--run-image",
                     busybox_base.ref)
    assert again["unchanged"] is True and again["digest"] == digests[-1]
    assert run_json(cli, "gc")["freed"] == 0
    app = next(layer["digest"] for layer in last["layers"] if layer["name"] == "app")
    assert (cache / "blobs" / "sha256" / app.removeprefix("sha256:")).is_file()
    full = run_json(cli, "build", hello_app, "--image", "hello:1", "--run-image",
                    busybox_base.ref, "--full")
    assert full["digest"] == digests[-1]
    assert run_json(cli, "verify")["ok"] is True


def test_a_blob_still_linked_from_the_cache_frees_nothing(cli: CliRunner,
                                                          busybox_base: BaseImage,
                                                          hello_app: Path) -> None:
    run_json(cli, "build", hello_app, "--image", "hello:1", "--run-image", busybox_base.ref)
    run_json(cli, "rm", "hello:1")
    stored = cli.home / "store" / "blobs" / "sha256"
    stored_sizes = sum(path.stat().st_size for path in stored.iterdir())
    before = disk_bytes(cli)
    report = run_json(cli, "gc")
    assert report["removed"]  # the store let go of the image's blobs ...
    # ... but the cache still holds its layers: only what the cache lacks was freed.
    assert report["freed"] == before - disk_bytes(cli)
    cached = cli.cache / "hybridless" / "blobs" / "sha256"
    kept = [d for d in report["removed"] if (cached / d.removeprefix("sha256:")).exists()]
    assert kept  # the app layer, among others, lives on in the cache
    assert report["store_freed"] + sum((cached / d[7:]).stat().st_size for d in kept) <= \
        stored_sizes


def test_gc_removes_dead_writers_temps_in_the_cache_but_never_inside_a_layer(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path) -> None:
    run_json(cli, "build", hello_app, "--image", "hello:1", "--run-image", busybox_base.ref)
    cache = cli.cache / "hybridless"
    pid = dead_pid()
    projects = [p for p in (cache / "projects").iterdir() if p.is_dir()]
    (cache / "ecr-tokens").mkdir()
    places = [cache, cache / "blobs" / "sha256", cache / "receipts", cache / "ecr-tokens",
              projects[0],
              *[d for d in (projects[0] / "layers").iterdir() if d.is_dir()]]
    dead = [place / f".tmp-{pid}-0badc0de" for place in places]
    alive = cache / f".tmp-{os.getpid()}-12345678"
    for path in [*dead, alive]:
        path.write_bytes(b"half a file")
    buildpack_dir = next(d for d in (projects[0] / "layers").iterdir() if d.is_dir())
    inside = buildpack_dir / "some-layer" / "deep"
    inside.mkdir(parents=True)
    (inside / f".tmp-{pid}-0badc0de").write_bytes(b"a buildpack's own file")
    report = run_json(cli, "gc")
    assert set(report["cache"]["recovered"]) >= {str(p) for p in dead}
    assert not any(p.exists() for p in dead)
    assert alive.exists() and (inside / f".tmp-{pid}-0badc0de").exists()


def test_gc_while_builds_run_never_breaks_them(cli: CliRunner, busybox_base: BaseImage,
                                               hello_app: Path) -> None:
    env = cli.environment()
    for round_ in range(3):
        (hello_app / "data.bin").write_bytes(os.urandom(4 << 20) + bytes([round_]))
        builder = subprocess.Popen(
            [*cli.command, "build", str(hello_app), "--image", "hello:1", "--run-image",
             busybox_base.ref, "--full"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        collectors = [subprocess.run([*cli.command, "gc"], env=env, capture_output=True,
                                     text=True, timeout=120) for _ in range(3)]
        _, errors = builder.communicate(timeout=300)
        assert builder.returncode == 0, errors
        assert all(c.returncode == 0 for c in collectors), [c.stderr for c in collectors]
        assert run_json(cli, "verify")["ok"] is True
