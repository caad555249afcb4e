"""``rebase`` swaps the run image under the app layers by rewriting manifest and config only."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from tests.e2e.conftest import run_json, tool
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage, busybox_rootfs, find_static_busybox, layout_from_rootfs
from tests.infra.oci_images import AccessLog, docker_config
from tests.infra.services import Registry


@pytest.fixture(scope="module")
def patched_base(tmp_path_factory: pytest.TempPathFactory) -> BaseImage:
    """The busybox base plus an /etc/motd: a "security update" of the run image."""
    work = tmp_path_factory.mktemp("patched-base")
    busybox = find_static_busybox()

    def populate(rootfs: Path) -> None:
        busybox_rootfs(rootfs, busybox)
        (rootfs / "etc" / "motd").write_text("patched\n")

    return layout_from_rootfs(work / "layout", "patched", populate, work)


def test_rebase_keeps_app_layers_and_records_the_new_base(
        cli: CliRunner, busybox_base: BaseImage, patched_base: BaseImage, hello_app: Path,
        tmp_path: Path) -> None:
    built = run_json(cli, "build", hello_app, "--image", f"oci:{tmp_path}/img:app",
                     "--run-image", busybox_base.ref)
    rebased = run_json(cli, "rebase", f"oci:{tmp_path}/img:app", "--run-image", patched_base.ref)
    assert rebased["previous_digest"] == built["digest"] != rebased["digest"]

    info = run_json(cli, "inspect", f"oci:{tmp_path}/img:app")
    ours = [layer["digest"] for layer in built["layers"] if layer["name"] != "base"]
    assert [layer["digest"] for layer in info["layers"]][-len(ours):] == ours
    assert info["build"]["run-image"]["digest"] == patched_base.digest
    skopeo = json.loads(tool("skopeo", "inspect", f"oci:{tmp_path}/img:app").stdout)
    assert skopeo["Digest"] == rebased["digest"]

    bundle = tmp_path / "bundle"
    flags = [] if os.geteuid() == 0 else ["--rootless"]
    tool("umoci", "unpack", *flags, "--image", f"{tmp_path}/img:app", str(bundle))
    assert (bundle / "rootfs/etc/motd").read_text() == "patched\n"
    assert (bundle / "rootfs/var/task/public/index.html").exists()


def test_rebase_refuses_images_it_did_not_build(cli: CliRunner, busybox_base: BaseImage) -> None:
    result = cli("rebase", busybox_base.ref, "--run-image", busybox_base.ref)
    assert result.returncode == 2 and "io.hybridless.build" in result.stderr


def test_a_registry_image_is_rebased_without_downloading_its_layers(
        cli: CliRunner, registry: Registry, busybox_base: BaseImage, patched_base: BaseImage,
        hello_app: Path, tmp_path: Path) -> None:
    """Rebase of a ``docker://`` image reads manifests and configs only, as the registry's own
    access log shows: the app's layers never leave the registry, the new base's are mounted."""
    repo = f"{registry.host}/rebase-{secrets.token_hex(3)}"
    old_base, new_base = f"docker://{repo}/base:old", f"docker://{repo}/base:new"
    tool("skopeo", "copy", "--dest-tls-verify=false", busybox_base.ref, old_base)
    tool("skopeo", "copy", "--dest-tls-verify=false", patched_base.ref, new_base)
    env = docker_config(tmp_path / "docker-config", {})
    app = f"docker://{repo}/app:1"
    built = run_json(cli, "build", hello_app, "--image", app, "--run-image", old_base, env=env)
    ours = {layer["digest"] for layer in built["layers"] if layer["name"] != "base"}

    log = AccessLog(registry)
    rebased = run_json(cli, "rebase", app, "--run-image", new_base, env=env)
    requests = log.requests()
    fetched = [p for m, p, _ in requests if m == "GET" and "/blobs/" in p]
    assert not [p for p in fetched if any(d in p for d in ours)], fetched
    uploaded = [p.rsplit("digest=", 1)[-1].replace("%3A", ":") for m, p, _ in requests
                if m in ("PUT", "PATCH") and "/blobs/uploads/" in p]
    assert rebased["previous_digest"] == built["digest"] != rebased["digest"]
    manifest = json.loads(tool("skopeo", "inspect", "--raw", "--tls-verify=false", app).stdout)
    # Only the new config is uploaded; the new base's layers are mounted from its repository.
    assert uploaded == [manifest["config"]["digest"]], requests

    seen = json.loads(tool("skopeo", "inspect", "--tls-verify=false", app).stdout)
    assert seen["Digest"] == rebased["digest"]
    assert json.loads(seen["Labels"]["io.hybridless.build"])["run-image"]["digest"] == \
        patched_base.digest
    assert [d for d in seen["Layers"] if d in ours] == [
        layer["digest"] for layer in built["layers"] if layer["name"] != "base"]
