"""Recipe images: the user hook, the mmdebstrap command, and the keys that name images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stacks import catalog
from stacks.builder import recipe_images
from stacks.model import Recipe, User
from stacks.recipe import RecipeImage, argv
from stacks.rootfs import finish

STACKS = catalog.load({"XDG_CONFIG_HOME": "/nonexistent"})


def test_finish_adds_the_user_without_dates_and_keeps_other_entries(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nsvc:x:5:5::/:/bin/false\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nsvc:old\n")
    (tmp_path / "var" / "task").mkdir(parents=True)
    finish(tmp_path, "svc", 2000, 2001)
    assert (etc / "passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/sh", "svc:x:2000:2001::/home/svc:/bin/sh"]
    assert (etc / "group").read_text().splitlines() == ["root:x:0:", "svc:x:2001:"]
    assert (etc / "shadow").read_text().splitlines()[-1] == "svc:!::0:99999:7:::"
    assert not (tmp_path / "var" / "task").exists()
    assert (tmp_path / "tmp").stat().st_mode & 0o7777 == 0o1777
    if os.geteuid() == 0:
        assert (tmp_path / "home" / "svc").stat().st_uid == 2000


def test_the_hook_runs_as_mmdebstrap_calls_it(tmp_path: Path) -> None:
    image = RecipeImage(Recipe("bookworm", ("tzdata",)), User("app", 1000, 1000), "run",
                        "linux/amd64", "s")
    hook = next(a for a in argv(image, tmp_path / "out.tar")
                if a.startswith("--customize-hook="))
    # mmdebstrap runs the hook with sh -c and the tree as $1; do exactly that, from elsewhere.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(["sh", "-c", hook.split("=", 1)[1], "hook", str(tmp_path)], check=True,
                   cwd="/", env=env)
    assert "app:x:1000:1000" in (tmp_path / "etc" / "passwd").read_text()
    assert sys.executable in hook


def test_mmdebstrap_gets_the_three_sources_packages_and_platform(tmp_path: Path) -> None:
    image = RecipeImage(Recipe("trixie", ("ca-certificates", "python3")),
                        User("app", 1000, 1000), "run", "linux/arm64", "s")
    command = argv(image, tmp_path / "out.tar")
    assert command[0] == "mmdebstrap"
    assert "--include=ca-certificates,python3" in command
    assert "--architectures=arm64" in command and "--variant=essential" in command
    assert command[-4:] == [
        str(tmp_path / "out.tar"),
        "deb http://deb.debian.org/debian trixie main",
        "deb http://deb.debian.org/debian trixie-updates main",
        "deb http://deb.debian.org/debian-security trixie-security main",
    ]


def test_one_build_image_per_suite_and_one_run_image_per_stack() -> None:
    builds, runs = set(), set()
    for stack_id in ("debian-bookworm-nodejs", "debian-bookworm-python",
                     "debian-trixie-nodejs", "debian-trixie-python"):
        build, run = recipe_images(STACKS.get(stack_id))
        assert build is not None and run is not None
        builds.add(build.store_name)
        runs.add(run.store_name)
        assert run.stack_id == stack_id and build.stack_id is None
    assert len(builds) == 2 and len(runs) == 4
    assert {name.split(":")[0] for name in builds} == {
        "hybridless-stacks/bookworm-build", "hybridless-stacks/trixie-build"}
    assert recipe_images(STACKS.get("node-22-bookworm-slim")) == (None, None)


def test_the_key_changes_with_every_input() -> None:
    base = RecipeImage(Recipe("bookworm", ("tzdata",)), User("app", 1000, 1000), "run",
                       "linux/amd64", "s")
    variants = [
        RecipeImage(Recipe("trixie", ("tzdata",)), base.user, "run", base.platform, "s"),
        RecipeImage(Recipe("bookworm", ("tzdata", "git")), base.user, "run", base.platform, "s"),
        RecipeImage(base.recipe, User("app", 1001, 1000), "run", base.platform, "s"),
        RecipeImage(base.recipe, base.user, "build", base.platform, "s"),
        RecipeImage(base.recipe, base.user, "run", "linux/arm64", "s"),
        RecipeImage(base.recipe, base.user, "run", base.platform, "t"),
        RecipeImage(Recipe("bookworm", ("tzdata",), "http://m.example/debian"), base.user,
                    "run", base.platform, "s"),
    ]
    assert len({base.key, *(v.key for v in variants)}) == len(variants) + 1
    assert base.key == RecipeImage(Recipe("bookworm", ("tzdata",)), User("app", 1000, 1000),
                                   "run", "linux/amd64", "s").key
