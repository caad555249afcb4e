"""The shared fixtures do what the end-to-end tests rely on, checked against the real services."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.infra import services
from tests.infra.cli import CliRunner
from tests.infra.images import (
    APP_UID,
    BaseImage,
    DebianRecipe,
    DockerImage,
    build_debian_base,
    cache_root,
    run_tool,
)
from tests.infra.net import free_port, wait_for_http
from tests.infra.services import Registry, htpasswd_entry, in_ci

if TYPE_CHECKING:
    import docker

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """GET ``url`` without a proxy; return the status and headers, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with DIRECT.open(request, timeout=10) as response:
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run skopeo and return the finished process."""
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def status_server() -> Iterator[str]:
    """A throwaway HTTP server that answers every GET with 401, as an auth registry does."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_free_port_can_be_bound() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def test_wait_for_http_returns_the_status_of_a_server_that_answers(status_server: str) -> None:
    assert wait_for_http(status_server, 5) == 401
    with pytest.raises(TimeoutError, match="HTTP 401"):
        wait_for_http(status_server, 0.3, statuses={200})


def test_wait_for_http_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError, match=r"within 0\.3s"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", 0.3)


def test_wait_for_http_stops_at_once_when_the_server_process_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match="exited with code 3"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", 30, process=process)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False),
                                                  ("false", False)])  # fmt: skip
def test_missing_services_fail_in_ci_and_skip_elsewhere(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected
    outcome = pytest.fail.Exception if expected else pytest.skip.Exception
    with pytest.raises(outcome, match="the thing is not available: gone"):
        services.unavailable("the thing", "gone")


# --- the cli fixture --------------------------------------------------------------------------


def test_cli_runner_isolates_home_cache_and_inherited_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDLESS_PROCESS", "leaked")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1")
    probe = (
        "import json, os, sys; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(),"
        " 'args': sys.argv[1:], 'stdin': sys.stdin.read()}))"
    )
    runner = CliRunner(tmp_path / "home", tmp_path / "cache", [sys.executable, "-c", probe])
    work = tmp_path / "work"
    work.mkdir()
    done = runner("a b", Path("c"), cwd=work, env={"EXTRA": "1"}, input="event")
    seen = json.loads(done.stdout)
    assert seen["args"] == ["a b", "c"]
    assert seen["cwd"] == str(work)
    assert seen["stdin"] == "event"
    env = seen["env"]
    assert env["HYBRIDLESS_HOME"] == str(runner.home)
    assert env["XDG_CACHE_HOME"] == str(runner.cache)
    assert env["EXTRA"] == "1"
    assert "HYBRIDLESS_PROCESS" not in env and "SOURCE_DATE_EPOCH" not in env
    # With no input, the child sees an empty stdin instead of waiting on a terminal.
    assert json.loads(runner().stdout)["stdin"] == ""


def test_cli_fixture_runs_the_lifecycle_module(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.home == tmp_path / "hybridless-home"
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    assert "build" in done.stdout


# --- registry ---------------------------------------------------------------------------------


def test_registry_answers_v2_and_serves_back_a_pushed_image(
    registry: Registry, busybox_base: BaseImage
) -> None:
    status, headers = get(f"{registry.url}/v2/")
    assert status == 200
    assert headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    dest = f"docker://{registry.host}/busybox:1"
    pushed = skopeo("copy", "--dest-tls-verify=false", busybox_base.ref, dest)
    assert pushed.returncode == 0, pushed.stderr
    seen = skopeo("inspect", "--tls-verify=false", dest)
    assert seen.returncode == 0, seen.stderr
    # The registry keeps the OCI manifest byte for byte, so its digest is the layout's.
    assert json.loads(seen.stdout)["Digest"] == busybox_base.digest
    oci_manifest = "application/vnd.oci.image.manifest.v1+json"
    status, headers = get(f"{registry.url}/v2/busybox/manifests/1", {"Accept": oci_manifest})
    assert (status, headers["Content-Type"]) == (200, oci_manifest)
    assert headers["Docker-Content-Digest"] == busybox_base.digest


def test_auth_registry_rejects_anonymous_and_accepts_its_credentials(
    registry_auth: Registry, busybox_base: BaseImage
) -> None:
    assert registry_auth.username and registry_auth.password
    assert get(f"{registry_auth.url}/v2/")[0] == 401
    token = base64.b64encode(f"{registry_auth.username}:{registry_auth.password}".encode())
    assert get(f"{registry_auth.url}/v2/", {"Authorization": f"Basic {token.decode()}"})[0] == 200
    dest = f"docker://{registry_auth.host}/busybox:auth"
    anonymous = skopeo("copy", "--dest-tls-verify=false", busybox_base.ref, dest)
    assert anonymous.returncode != 0
    creds = f"{registry_auth.username}:{registry_auth.password}"
    pushed = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", creds, busybox_base.ref, dest
    )
    assert pushed.returncode == 0, pushed.stderr


def test_htpasswd_entry_is_bcrypt() -> None:
    line = htpasswd_entry("user", "secret")
    name, digest = line.split(":", 1)
    assert name == "user"
    assert digest.startswith(("$2y$", "$2b$", "$2a$"))


# --- moto -------------------------------------------------------------------------------------


def test_moto_server_creates_an_ecr_repository(moto_server: str) -> None:
    import boto3

    ecr = boto3.client(
        "ecr",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    created = ecr.create_repository(repositoryName="hybridless/orders")
    assert created["repository"]["repositoryName"] == "hybridless/orders"
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert "hybridless/orders" in names
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert base64.b64decode(token).decode().startswith("AWS:")
    # Nothing global was set: the endpoint only reaches boto3 through endpoint_url.
    assert "AWS_ENDPOINT_URL" not in os.environ


# --- busybox base -----------------------------------------------------------------------------


def test_busybox_base_passes_skopeo_inspect(busybox_base: BaseImage) -> None:
    done = skopeo("inspect", "--config", busybox_base.ref)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["config"]["User"] == f"{APP_UID}:{APP_UID}"
    assert config["config"]["WorkingDir"] == "/"
    assert any(item.startswith("PATH=") for item in config["config"]["Env"])
    machine = os.uname().machine
    assert config["os"] == "linux"
    assert config["architecture"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    assert len(config["rootfs"]["diff_ids"]) == 1


def test_busybox_base_unpacks_with_umoci(busybox_base: BaseImage, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    run_tool(["umoci", "unpack", "--image", f"{busybox_base.layout_dir}:{busybox_base.tag}",
              str(bundle)])  # fmt: skip
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin" / "busybox").stat().st_mode & 0o111
    assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert not (rootfs / "var" / "task").exists()
    passwd = (rootfs / "etc" / "passwd").read_text().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert any(line.startswith("app:x:1000:1000:") for line in passwd)
    assert "app:x:1000:" in (rootfs / "etc" / "group").read_text().splitlines()


def test_busybox_runs_in_docker_as_the_non_root_user(
    docker_client: docker.DockerClient, busybox_in_docker: DockerImage
) -> None:
    output = docker_client.containers.run(busybox_in_docker.name, ["id", "-u"], remove=True)
    assert output.decode().strip() == "1000"
    # The docker CLI too: the end-to-end tests use both, and it may be newer than the engine.
    done = subprocess.run(
        ["docker", "run", "--rm", busybox_in_docker.name, "sh", "-c", "echo hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr


# --- Debian base ------------------------------------------------------------------------------


def test_debian_recipe_key_follows_the_recipe() -> None:
    assert DebianRecipe().key() == DebianRecipe().key()
    assert DebianRecipe(packages=("nodejs",)).key() != DebianRecipe().key()


def test_debian_base_runs_node_and_python_as_the_non_root_user(
    docker_client: docker.DockerClient, debian_base: BaseImage, debian_in_docker: DockerImage
) -> None:
    script = "id -u; node --version; python3 --version; touch /tmp/w && echo writable"
    output = docker_client.containers.run(debian_in_docker.name, ["sh", "-c", script], remove=True)
    uid, node, python, writable = output.decode().split("\n")[:4]
    assert uid == "1000"
    assert node.startswith("v18.")  # bookworm's nodejs
    assert python.startswith("Python 3.11.")
    assert writable == "writable"
    # A second request is served from the cache, not rebuilt.
    assert build_debian_base(cache_root()) == debian_base
