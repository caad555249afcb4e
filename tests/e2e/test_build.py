"""``build`` end to end: the CLI in a subprocess, images checked by skopeo, umoci and Docker."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import copy_example, run_json, tool
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage


def test_build_into_oci_layout_passes_skopeo_and_umoci(cli: CliRunner, busybox_base: BaseImage,
                                                       hello_app: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = run_json(cli, "build", hello_app, "--image", f"oci:{out}:hello",
                   "--run-image", busybox_base.ref)
    assert doc["digest"].startswith("sha256:") and doc["image"] == f"oci:{out}:hello"
    names = [layer["name"] for layer in doc["layers"]]
    assert names[-2:] == ["app", "launcher"] and names[0] == "base"
    assert {p["name"]: p["default"] for p in doc["processes"]} == {"web": True, "hello": False}
    assert set(doc["timings"]) == {"detect", "build", "export"}

    inspected = json.loads(tool("skopeo", "inspect", f"oci:{out}:hello").stdout)
    assert inspected["Digest"] == doc["digest"]
    raw = json.loads(tool("skopeo", "inspect", "--config", f"oci:{out}:hello").stdout)
    config = raw["config"]
    assert config["Entrypoint"] == ["/hybridless/launcher"] and not config.get("Cmd")
    assert config["WorkingDir"] == "/var/task" and config["User"] == "1000:1000"
    assert raw["created"] == "1980-01-01T00:00:01Z"
    label = json.loads(config["Labels"]["io.hybridless.build"])
    assert label["run-image"]["digest"] == busybox_base.digest
    assert [b["id"] for b in label["buildpacks"]] == ["hybridless/procfile"]
    assert label["compressor"]

    bundle = tmp_path / "bundle"
    flags = [] if os.geteuid() == 0 else ["--rootless"]
    tool("umoci", "unpack", *flags, "--image", f"{out}:hello", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "var/task/public/index.html").read_text() == \
        (hello_app / "public/index.html").read_text()
    assert not (rootfs / "var/task/README.md").exists()  # excluded by the descriptor
    assert (rootfs / "hybridless/launcher").stat().st_mode & 0o777 == 0o755
    assert (rootfs / "bin/busybox").exists()


def test_two_builds_from_different_dirs_and_times_have_one_digest(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    first = copy_example("procfile-hello", tmp_path / "one")
    time.sleep(1.1)
    second = copy_example("procfile-hello", tmp_path / "two" / "deeper")
    os.utime(second / "Procfile", (1e9, 1e9))
    digests = []
    for index, app in enumerate((first, second)):
        other = CliRunner(tmp_path / f"home{index}", tmp_path / f"cache{index}")
        doc = run_json(other, "build", app, "--image", f"oci:{tmp_path}/layout{index}:x",
                       "--run-image", busybox_base.ref)
        digests.append(doc["digest"])
    assert digests[0] == digests[1]
    doc = run_json(cli, "build", first, "--image", f"oci:{tmp_path}/epoch:x",
                   "--run-image", busybox_base.ref, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert doc["digest"] != digests[0]
    raw = json.loads(tool("skopeo", "inspect", "--config", f"oci:{tmp_path}/epoch:x").stdout)
    assert raw["created"] == "2023-11-14T22:13:20Z"


@pytest.mark.docker
def test_docker_archive_loads_and_runs_every_process(cli: CliRunner, busybox_base: BaseImage,
                                                      hello_app: Path, tmp_path: Path,
                                                      docker_client: object) -> None:
    import urllib.request

    from tests.infra.net import free_port, wait_for_http

    archive = tmp_path / "hello.tar"
    run_json(cli, "build", hello_app, "--image", f"docker-archive:{archive}:hybridless-e2e/hello:1",
             "--run-image", busybox_base.ref)
    client = docker_client
    with archive.open("rb") as handle:
        client.images.load(handle.read())  # type: ignore[attr-defined]
    try:
        out = client.containers.run(  # type: ignore[attr-defined]
            "hybridless-e2e/hello:1", ["a b", "c"], environment={"HYBRIDLESS_PROCESS": "hello"},
            remove=True)
        assert out.decode().strip() == "hello from hello on stage demo: a b c"
        out = client.containers.run(  # type: ignore[attr-defined]
            "hybridless-e2e/hello:1", [], remove=True, entrypoint=["id", "-u"])
        assert out.decode().strip() == "1000"
        port = free_port()
        container = client.containers.run(  # type: ignore[attr-defined]
            "hybridless-e2e/hello:1", detach=True, ports={"8080/tcp": ("127.0.0.1", port)})
        try:
            wait_for_http(f"http://127.0.0.1:{port}/index.html", timeout=30)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html") as resp:
                assert b"built without a Dockerfile" in resp.read()
        finally:
            container.remove(force=True)
    finally:
        client.images.remove("hybridless-e2e/hello:1", force=True)  # type: ignore[attr-defined]


def test_store_images_inspect_rm_gc_verify(cli: CliRunner, busybox_base: BaseImage,
                                           hello_app: Path) -> None:
    doc = run_json(cli, "build", hello_app, "--image", "hello", "--tag", "hello:v1",
                   "--run-image", busybox_base.ref)
    rows = {row["reference"]: row for row in run_json(cli, "images")}
    assert set(rows) >= {"hello:latest", "hello:v1"}
    assert rows["hello:latest"]["digest"] == doc["digest"]
    info = run_json(cli, "inspect", "hello:v1")
    assert info["digest"] == doc["digest"]
    assert [p["name"] for p in info["build"]["processes"]] == ["web", "hello"]
    text = cli("inspect", "hello")
    assert text.returncode == 0 and "web: process (default)" in text.stdout
    assert run_json(cli, "verify")["ok"] is True
    run_json(cli, "rm", "hello:latest")
    run_json(cli, "gc")
    assert [r["reference"] for r in run_json(cli, "images")] == ["hello:v1"]
    run_json(cli, "rm", "hello:v1")
    gc = run_json(cli, "gc")
    assert gc["freed"] > 0
    assert run_json(cli, "images") == []
    assert run_json(cli, "verify")["ok"] is True


def test_oci_archive_round_trip(cli: CliRunner, busybox_base: BaseImage, hello_app: Path,
                                tmp_path: Path) -> None:
    archive = tmp_path / "hello.oci.tar"
    doc = run_json(cli, "build", hello_app, "--image", f"oci-archive:{archive}:v1",
                   "--run-image", busybox_base.ref)
    inspected = json.loads(tool("skopeo", "inspect", f"oci-archive:{archive}").stdout)
    assert inspected["Digest"] == doc["digest"]
    # An archive works as a run image too: every transport is a source.
    again = run_json(cli, "inspect", f"oci-archive:{archive}:v1")
    assert again["digest"] == doc["digest"]


def test_detect_failure_exit_20_says_why(cli: CliRunner, tmp_path: Path) -> None:
    app = tmp_path / "empty"
    app.mkdir()
    result = cli("detect", app)
    assert result.returncode == 20
    assert "hybridless/procfile: no Procfile and no descriptor function with a command" in \
        result.stderr
    doc = run_json(cli, "detect", app, expect=20)
    assert doc["passed"] is False
    assert doc["trials"][-1]["results"][0]["id"] == "hybridless/procfile"


def test_detect_json_and_inference_is_printed(cli: CliRunner, hello_app: Path) -> None:
    (hello_app / "project.toml").unlink()
    result = cli("detect", hello_app, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["group"] == [{"id": "hybridless/procfile", "version": "0.1.0"}]
    assert "inferred function 'web'" in result.stderr


@pytest.mark.parametrize(("text", "code", "fragment"), [
    ("[_\n", 10, "line 1"),
    ('[io.hybridless]\nstage = 3\n', 11, "io.hybridless.stage = 3 must be of type string"),
])
def test_descriptor_errors_exit_with_their_codes(cli: CliRunner, hello_app: Path, text: str,
                                                 code: int, fragment: str) -> None:
    (hello_app / "project.toml").write_text(text)
    result = cli("build", hello_app, "--image", "x", "--run-image", "oci:/nonexistent:x")
    assert result.returncode == code, result.stderr
    assert fragment in result.stderr and "project.toml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("make_link", [
    lambda app, outside: (app / "leak").symlink_to(outside / "secret.txt"),
    lambda app, outside: (app / "leak").symlink_to("../outside/secret.txt"),
    lambda app, outside: (app / "dir").symlink_to(outside),
], ids=["absolute", "dotdot", "directory"])
def test_symlink_escape_is_an_error_naming_the_path(cli: CliRunner, busybox_base: BaseImage,
                                                    hello_app: Path, tmp_path: Path,
                                                    make_link: object) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s3cret")
    shutil.move(str(hello_app), str(tmp_path / "app"))
    app = tmp_path / "app"
    make_link(app, outside)  # type: ignore[operator]
    result = cli("build", app, "--image", f"oci:{tmp_path}/out:x",
                 "--run-image", busybox_base.ref)
    assert result.returncode == 51, result.stderr
    assert "symlink leak points outside" in result.stderr or \
        "symlink dir points outside" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_run_image_and_bad_reference_codes(cli: CliRunner, hello_app: Path,
                                                   tmp_path: Path) -> None:
    result = cli("build", hello_app, "--image", "x")
    assert result.returncode == 30 and "--run-image" in result.stderr
    result = cli("build", hello_app, "--image", "x", "--run-image", f"oci:{tmp_path}/none:x")
    assert result.returncode == 30, result.stderr
    result = cli("build", hello_app, "--image", "Bad Name!", "--run-image", "x")
    assert result.returncode == 61, result.stderr
    result = cli("build", hello_app, "--image", "nope://x", "--run-image", "x")
    assert result.returncode == 61, result.stderr
    result = cli("bogus")
    assert result.returncode == 2


def test_buildpack_options_are_checked_against_its_schema(cli: CliRunner, tmp_path: Path) -> None:
    app = tmp_path / "opt"
    app.mkdir()
    (app / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    (app / "handler.js").write_text("exports.handler = async () => ({statusCode: 200});\n")
    (app / "project.toml").write_text('[io.hybridless.buildpacks."hybridless/nodejs"]\n'
                                      "bundel = true\n")
    result = cli("detect", app)
    assert result.returncode == 11, result.stderr
    assert "'io.hybridless.buildpacks.\"hybridless/nodejs\".bundel'" in result.stderr
    assert "bundle" in result.stderr
