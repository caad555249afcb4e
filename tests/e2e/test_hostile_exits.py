"""Hostile stores, run images, labels and environments end in one documented line, never a
traceback (docs/reference.md §1 exit codes)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_json
from tests.infra.cli import LIFECYCLE_COMMAND, REPO_ROOT, CliRunner
from tests.infra.images import BaseImage

Doc = dict[str, Any]


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Assert the exit code, no traceback, and one ``error:`` line holding every needle."""
    assert result.returncode == code, f"exit {result.returncode} != {code}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def mutated(src: Path, dst: Path, *, manifest: Callable[[Doc], None] | None = None,
            config: Callable[[Doc], None] | None = None) -> str:
    """A copy of the layout ``src`` whose first image has its manifest or config edited."""
    shutil.copytree(src, dst)
    blobs = dst / "blobs" / "sha256"

    def put(document: Doc) -> tuple[str, int]:
        raw = json.dumps(document).encode()
        digest = hashlib.sha256(raw).hexdigest()
        (blobs / digest).write_bytes(raw)
        return f"sha256:{digest}", len(raw)

    index = json.loads((dst / "index.json").read_text())
    entry = index["manifests"][0]
    doc = json.loads((blobs / entry["digest"][7:]).read_bytes())
    cfg = json.loads((blobs / doc["config"]["digest"][7:]).read_bytes())
    if config is not None:
        config(cfg)
    doc["config"]["digest"], doc["config"]["size"] = put(cfg)
    if manifest is not None:
        manifest(doc)
    entry["digest"], entry["size"] = put(doc)
    (dst / "index.json").write_text(json.dumps(index))
    return f"oci:{dst}:{entry['annotations']['org.opencontainers.image.ref.name']}"


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``where`` (CI runs as root; elsewhere the test is skipped)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(where)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def unprivileged(home: Path, cache: Path) -> CliRunner:
    """A CLI runner without the power to read files it has no permission for.

    As ``setpriv --reuid=65534`` when that user can run this interpreter and checkout; when
    they live under a private home (pyenv under /root), as root without the two
    capabilities that bypass file permissions, which denies the same reads.
    """
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    probe = subprocess.run([*nobody, sys.executable, "-c", "import lifecycle.phases.pipeline, "
                            "lifecycle.descriptor, jsonschema, tomli, buildpacks.procfile"],
                           capture_output=True, check=False,
                           env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd="/")
    if probe.returncode == 0:
        prefix: tuple[str, ...] = nobody
    elif os.geteuid() == 0:
        prefix = ("setpriv", "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search")
    else:
        prefix = ()
    for path in (home, cache):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
    return CliRunner(home, cache, command=(*prefix, *LIFECYCLE_COMMAND))


# ------------------------------------------------------------------------------ the store

BAD_INDEXES = {
    "empty": "",
    "truncated": '{"schemaVersion": 2, "manifests": [',
    "a list": "[]",
    "manifests not a list": '{"manifests": 5}',
    "an entry not an object": '{"manifests": [5]}',
    "a digest that is a path": json.dumps({"manifests": [{
        "digest": "sha256:../../../etc", "annotations": {
            "org.opencontainers.image.ref.name": "app:latest"}}]}),
    "deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.fixture
def built_store(cli: CliRunner, busybox_base: BaseImage, hello_app: Path) -> Path:
    run_json(cli, "build", hello_app, "--image", "app", "--run-image", busybox_base.ref)
    return cli.home / "store" / "index.json"


@pytest.mark.parametrize("content", list(BAD_INDEXES.values()), ids=list(BAD_INDEXES))
def test_a_damaged_store_index_is_one_line_exit_60_for_every_command(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, built_store: Path,
        content: str) -> None:
    for argv in (["images"], ["verify"], ["inspect", "app"], ["rm", "app"], ["gc"],
                 ["build", hello_app, "--image", "app", "--run-image", busybox_base.ref],
                 ["build", hello_app, "--image", "app", "--run-image", busybox_base.ref,
                  "--full"]):
        built_store.write_text(content)
        result = cli(*argv)
        # gc keeps its own code for a store it cannot walk (31) until it learns 60.
        code = 31 if argv == ["gc"] and result.returncode == 31 else 60
        one_line_error(result, code, "index.json")


# -------------------------------------------------------------------------- run images

HOSTILE_RUN_IMAGES: dict[str, dict[str, Callable[[Doc], None]]] = {
    "Env a number": {"config": lambda c: c["config"].__setitem__("Env", 5)},
    "Env of numbers": {"config": lambda c: c["config"].__setitem__("Env", [1])},
    "Labels a list": {"config": lambda c: c["config"].__setitem__("Labels", ["a"])},
    "Labels of numbers": {"config": lambda c: c["config"].__setitem__("Labels", {"a": 1})},
    "config a list": {"config": lambda c: c.__setitem__("config", [])},
    "User a number": {"config": lambda c: c["config"].__setitem__("User", 1000)},
    "Entrypoint a string": {"config": lambda c: c["config"].__setitem__("Entrypoint", "sh")},
    "rootfs a string": {"config": lambda c: c.__setitem__("rootfs", "x")},
    "diff_ids of numbers": {"config": lambda c: c["rootfs"].__setitem__("diff_ids", [5])},
    "history a number": {"config": lambda c: c.__setitem__("history", 5)},
    "layer digest a path": {"manifest": lambda m: m["layers"][0].__setitem__(
        "digest", "sha256:../../../../etc/passwd")},
    "layer size a string": {"manifest": lambda m: m["layers"][0].__setitem__("size", "12")},
    "layers an object": {"manifest": lambda m: m.__setitem__("layers", {})},
    "layer a number": {"manifest": lambda m: m.__setitem__("layers", [5])},
    "config digest a path": {"manifest": lambda m: m["config"].__setitem__("digest",
                                                                          "sha256:../x")},
}


def test_run_images_with_wrongly_typed_fields_are_exit_31(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    source = Path(busybox_base.ref.split(":")[1])
    for number, (name, changes) in enumerate(HOSTILE_RUN_IMAGES.items()):
        ref = mutated(source, tmp_path / f"bad{number}", **changes)
        result = cli("build", hello_app, "--image", "app", "--run-image", ref, "--full")
        assert result.returncode == 31, (name, result.stderr)
        one_line_error(result, 31, "failed to read image")
        assert "etc/passwd" not in result.stderr.replace("'sha256:../../../../etc/passwd'", "")


def test_a_malformed_build_label_is_one_line_exit_2_for_inspect_and_rebase(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_json(cli, "build", hello_app, "--image", f"oci:{out}:app", "--run-image",
             busybox_base.ref)
    run_image = {"layers": 1, "reference": "x", "digest": "y"}
    labels = {
        "not json": "{not json",
        "a list": "[]",
        "run-image missing": "{}",
        "layers a string": json.dumps({"run-image": {**run_image, "layers": "3"}}),
        "layers negative": json.dumps({"run-image": {**run_image, "layers": -1}}),
        "buildpacks of numbers": json.dumps({"run-image": run_image, "buildpacks": [1]}),
        "deep": "[" * 100_000 + "]" * 100_000,
    }
    for number, text in enumerate(labels.values()):
        ref = mutated(out, tmp_path / f"label{number}", config=lambda c, text=text:
                      c["config"]["Labels"].__setitem__("io.hybridless.build", text))
        for argv in (["inspect", ref], ["inspect", ref, "--json"],
                     ["rebase", ref, "--run-image", busybox_base.ref]):
            one_line_error(cli(*argv), 2, "io.hybridless.build label")


# ------------------------------------------------------------------------ environments

def test_cache_and_store_homes_that_are_files(cli: CliRunner, busybox_base: BaseImage,
                                              hello_app: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    build = ["build", hello_app, "--image", "app", "--run-image", busybox_base.ref]
    one_line_error(cli(*build, "--cache-dir", a_file), 51, "build cache", "Not a directory")
    one_line_error(cli(*build, env={"XDG_CACHE_HOME": str(a_file)}), 51, "Not a directory")
    for argv in (build, ["images"], ["gc"], ["verify"], ["rm", "app"]):
        one_line_error(cli(*argv, env={"HYBRIDLESS_HOME": str(a_file)}), 60,
                       "Not a directory", str(a_file))


def test_read_only_cache_and_store(cli: CliRunner, busybox_base: BaseImage, hello_app: Path,
                                   tmp_path: Path) -> None:
    build = ["build", hello_app, "--image", "app", "--run-image", busybox_base.ref]
    run_json(cli, *build)
    with tmpfs(tmp_path / "ro", "16m") as ro:
        shutil.copytree(cli.cache, ro / "cache")
        shutil.copytree(cli.home, ro / "home")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        cache = ro / "cache" / "hybridless"
        one_line_error(cli(*build, "--full", "--cache-dir", cache), 51,
                       "Read-only file system")
        store = {"HYBRIDLESS_HOME": str(ro / "home")}
        one_line_error(cli(*build, "--full", env=store), 60, "Read-only file system")
        one_line_error(cli("rm", "app", env=store), 60, "Read-only file system")
        assert "Traceback" not in cli("gc", env=store).stderr
        assert cli("images", env=store).returncode == 0


def test_a_full_disk_while_writing_a_layer(cli: CliRunner, busybox_base: BaseImage,
                                           hello_app: Path, tmp_path: Path) -> None:
    (hello_app / "public" / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    with tmpfs(tmp_path / "small", "2m") as small:
        result = cli("build", hello_app, "--image", "app", "--run-image", busybox_base.ref,
                     "--cache-dir", small)
        one_line_error(result, 60, "failed to export", "No space left on device")
        assert "free space" in result.stderr
        left = [p for p in small.rglob(".tmp-*")]
        assert left == [], left


def test_unreadable_app_files_as_an_unprivileged_user(busybox_base: BaseImage,
                                                      hello_app: Path, tmp_path: Path) -> None:
    cli = unprivileged(tmp_path / "home", tmp_path / "cache")
    tree = tmp_path / "src"
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    base = tmp_path / "base"
    shutil.copytree(Path(busybox_base.ref.split(":")[1]), base)
    subprocess.run(["chmod", "-R", "a+rwX", str(base)], check=True)
    build = ["build", hello_app, "--image", "app", "--run-image", f"oci:{base}:busybox"]
    secret = hello_app / "public" / "private.txt"
    secret.write_text("x")
    secret.chmod(0)
    one_line_error(cli(*build), 60, "Permission denied", "private.txt")
    secret.chmod(0o644)
    (hello_app / "closed").mkdir()
    (hello_app / "closed").chmod(0)
    one_line_error(cli(*build), 51, "cannot read closed", "Permission denied")
    (hello_app / "closed").chmod(0o755)
    (hello_app / "Procfile").chmod(0)
    one_line_error(cli(*build), 21, "Procfile", "Permission denied")
    (hello_app / "Procfile").chmod(0o644)
    (hello_app / "project.toml").chmod(0)
    one_line_error(cli(*build), 10, "project.toml", "Permission denied")
    (hello_app / "project.toml").chmod(0o644)
    run_json(cli, *build)


def test_nesting_past_the_stack_and_paths_past_path_max(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    build = ["build", hello_app, "--image", "app", "--run-image", busybox_base.ref]
    deep = os.open(hello_app, os.O_RDONLY)
    try:
        for _ in range(1500):  # 1500 levels: past Python's recursion limit, short of PATH_MAX
            os.mkdir("d", dir_fd=deep)
            inner = os.open("d", os.O_RDONLY, dir_fd=deep)
            os.close(deep)
            deep = inner
    finally:
        os.close(deep)
    one_line_error(cli(*build), 51, "nested deeper than")
    subprocess.run(["rm", "-rf", str(hello_app / "d")], check=True)  # rmtree recurses
    far = os.open(hello_app, os.O_RDONLY)
    try:
        for _ in range(30):  # 30 x 200 characters: past PATH_MAX (4096)
            os.mkdir("x" * 200, dir_fd=far)
            inner = os.open("x" * 200, os.O_RDONLY, dir_fd=far)
            os.close(far)
            far = inner
        with os.fdopen(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=far), "w") as handle:
            handle.write("x")
    finally:
        os.close(far)
    result = cli(*build)
    assert result.returncode in (51, 60)
    line = one_line_error(result, result.returncode, "File name too long")
    assert len(line) < 600
    subprocess.run(["rm", "-rf", str(hello_app / ("x" * 200))], check=True)


# -------------------------------------------------------------------- descriptor & output

@pytest.mark.parametrize(("text", "code", "needle"), [
    ('[io.buildpacks]\ninclude = ["[z-a]"]\n', 11, "io.buildpacks.include[0]"),
    (f'[_]\nid = "{"a" * 5000}"\n', 11, "_.id"),
    ("[_]\nmetadata = { a = " + "[" * 2000 + "]" * 2000 + " }\n", 10, "nested"),
    ('[[io.hybridless.functions]]\nname = "web"\ncommand = "x"\nport = 8080.0\n', 11,
     "io.hybridless.functions[0].port = 8080.0 must be of type integer"),
    ('[[io.hybridless.functions]]\nname = "web"\nhandler = "../../x.h"\n', 11,
     "io.hybridless.functions[0].handler"),
])
def test_descriptor_inputs_that_used_to_crash(cli: CliRunner, busybox_base: BaseImage,
                                              hello_app: Path, text: str, code: int,
                                              needle: str) -> None:
    (hello_app / "project.toml").write_text(text)
    result = cli("build", hello_app, "--image", "app", "--run-image", busybox_base.ref)
    one_line_error(result, code, needle)


def test_json_into_a_closed_pipe(cli: CliRunner, built_store: Path) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([*LIFECYCLE_COMMAND, "images", "--json"], stdout=write,
                                stderr=subprocess.PIPE, text=True, env=cli.environment(),
                                check=False, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert "the --json document was not delivered" in result.stderr
