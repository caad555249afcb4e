"""A poisoned store or cache: corrupt blobs are found by their stamps, never reused or linked,
and the next build (or ``verify --repair``) recovers without hand work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_json
from tests.infra import oci_images
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage


def private_base(busybox_base: BaseImage, tmp_path: Path) -> BaseImage:
    """A copy of the session's base, so that no attack here can reach other tests' inodes."""
    base = BaseImage(tmp_path / "base", busybox_base.tag)
    shutil.copytree(busybox_base.layout_dir, base.layout_dir)
    return base


def build(cli: CliRunner, app: Path, base: BaseImage, *extra: str, image: str = "hello:1",
          expect: int = 0) -> Any:
    return run_json(cli, "build", app, "--image", image, "--run-image", base.ref, *extra,
                    expect=expect)


def blob_path(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def store_blob(cli: CliRunner, digest: str) -> Path:
    return blob_path(cli.home / "store", digest)


def cache_blob(cli: CliRunner, digest: str) -> Path:
    return blob_path(cli.cache / "hybridless", digest)


def app_digest(document: Any) -> str:
    return next(layer["digest"] for layer in document["layers"] if layer["name"] == "app")


def flip(path: Path, offset: int = 100) -> None:
    """Flip one bit in place and put the mtime back, the way silent corruption looks."""
    oci_images.flip(path, offset, mask=0x01)


def assert_sound(cli: CliRunner) -> None:
    report = run_json(cli, "verify")
    assert report["ok"] is True, report["problems"]
    assert report["cache"]["corrupt"] == []


@pytest.mark.parametrize("next_step", ["rebuild", "full", "new-tag", "rm-gc"])
def test_a_flipped_byte_in_a_linked_blob_never_survives_the_next_build(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path,
        next_step: str) -> None:
    base = private_base(busybox_base, tmp_path)
    first = build(cli, hello_app, base)
    digest = app_digest(first)
    stored, cached = store_blob(cli, digest), cache_blob(cli, digest)
    assert stored.stat().st_ino == cached.stat().st_ino  # store and cache share it
    flip(stored)
    report = run_json(cli, "verify", expect=60)
    assert digest in report["corrupt"] and digest in report["cache"]["corrupt"]
    if next_step == "rebuild":
        again = build(cli, hello_app, base)
    elif next_step == "full":
        again = build(cli, hello_app, base, "--full")
    elif next_step == "new-tag":
        again = build(cli, hello_app, base, image="other:2")
    else:
        run_json(cli, "rm", "hello:1")
        run_json(cli, "gc")
        again = build(cli, hello_app, base)
    assert again["unchanged"] is False  # the receipt saw the moved stamp
    assert again["digest"] == first["digest"]
    assert_sound(cli)
    # The rewritten blob is trusted again: the next rebuild is answered from the receipt.
    assert build(cli, hello_app, base, image=again["image"])["unchanged"] is True


@pytest.mark.parametrize("attack", ["truncate", "swap-inode-other-content",
                                    "swap-inode-same-content"])
def test_truncated_and_swapped_store_blobs(cli: CliRunner, busybox_base: BaseImage,
                                           hello_app: Path, tmp_path: Path,
                                           attack: str) -> None:
    base = private_base(busybox_base, tmp_path)
    first = build(cli, hello_app, base)
    digest = app_digest(first)
    stored = store_blob(cli, digest)
    before = stored.stat()
    if attack == "truncate":
        stored.chmod(0o644)
        os.truncate(stored, before.st_size // 2)
    else:
        content = stored.read_bytes()
        if attack == "swap-inode-other-content":
            content = bytes(len(content))
        swapped = stored.with_name("swapped")
        swapped.write_bytes(content)
        os.utime(swapped, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(swapped, stored)
    again = build(cli, hello_app, base)
    # An honest copy is hashed once and trusted; a bad one means a full build that repairs it.
    assert again["unchanged"] is (attack == "swap-inode-same-content")
    assert again["digest"] == first["digest"]
    assert_sound(cli)


def test_corruption_in_the_cache_only_is_rebuilt_not_linked(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    base = private_base(busybox_base, tmp_path)
    first = build(cli, hello_app, base)
    digest = app_digest(first)
    cached = cache_blob(cli, digest)
    # Give the cache its own inode (as a copy across filesystems would), then poison it.
    copy = cached.with_name("copy")
    shutil.copyfile(cached, copy)
    os.replace(copy, cached)
    flip(cached)
    run_json(cli, "rm", "hello:1")
    run_json(cli, "gc")  # the store's good copy goes; the cache's poisoned one is all left
    again = build(cli, hello_app, base, image="fresh:1")
    assert again["digest"] == first["digest"]
    assert_sound(cli)


def test_verify_repair_recovers_without_hand_work(cli: CliRunner, busybox_base: BaseImage,
                                                  hello_app: Path, tmp_path: Path) -> None:
    base = private_base(busybox_base, tmp_path)
    first = build(cli, hello_app, base)
    build(cli, hello_app, base, image="kept:1")
    digest = app_digest(first)
    # One store blob gets its own inode and is poisoned: the cache holds a good copy.
    stored = store_blob(cli, digest)
    copy = stored.with_name("copy")
    shutil.copyfile(stored, copy)
    os.replace(copy, stored)
    flip(stored)
    repaired = run_json(cli, "verify", "--repair")
    assert repaired["ok"] is True
    assert any("replaced from" in line for line in repaired["repaired"])
    assert {row["reference"] for row in run_json(cli, "images")} == {"hello:1", "kept:1"}
    assert_sound(cli)
    # Now poison the shared inode: no good copy is left, so the references go, and the next
    # build writes everything again.
    flip(store_blob(cli, digest))
    repaired = run_json(cli, "verify", "--repair")
    assert repaired["ok"] is True
    assert any("hello:1 was incomplete" in line for line in repaired["repaired"])
    assert run_json(cli, "images") == []
    again = build(cli, hello_app, base)
    assert again["digest"] == first["digest"] and again["unchanged"] is False
    assert_sound(cli)
