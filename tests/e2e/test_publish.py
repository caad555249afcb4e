"""Publishing to Amazon ECR and running images, end to end through the CLI with real services.

ECR is two services here, as in AWS: moto's server (its request recorder on) answers the
control plane (``AWS_ENDPOINT_URL_ECR``), and a loopback Distribution registry behind htpasswd
holds the data, reached through a ``registries.toml`` ``endpoint`` for the ECR host. moto's
authorization token decodes to ``AWS:<account>-auth-token``, which that registry accepts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from tests.conftest import MOTO_ACCOUNT
from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage
from tests.infra.moto_process import MotoProcess, moto_process
from tests.infra.net import free_port, get_when_up
from tests.infra.services import Registry

if TYPE_CHECKING:
    import docker

REGION = "eu-west-1"
HOST = f"{MOTO_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _aws_env(tmp_path: Path, moto: MotoProcess, data: Registry) -> dict[str, str]:
    """Test credentials, no profile files or instance metadata, ECR's two planes mapped."""
    config = tmp_path / "registries.toml"
    config.write_text(f'["{HOST}"]\nendpoint = "{data.host}"\n')
    return {
        "AWS_ENDPOINT_URL_ECR": moto.url,
        "AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST",
        "AWS_SECRET_ACCESS_KEY": "e2e-secret-never-shown",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HYBRIDLESS_REGISTRIES": str(config),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
    }


def _ecr(moto: MotoProcess):  # type: ignore[no-untyped-def]
    return boto3.client("ecr", region_name=REGION, endpoint_url=moto.url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _registry_get(data: Registry, path: str) -> object:
    """GET a registry API path with the ECR data plane's credentials."""
    secret = base64.b64encode(f"{data.username}:{data.password}".encode()).decode()
    request = urllib.request.Request(f"{data.url}{path}",
                                     headers={"Authorization": f"Basic {secret}"})
    with _DIRECT.open(request, timeout=20) as answer:
        return json.loads(answer.read())




@pytest.fixture
def ecr_app(tmp_path: Path) -> Path:
    """procfile-hello (processes web and hello, stage demo) with ECR settings of its own."""
    app = copy_example("procfile-hello", tmp_path / "src")
    with (app / "project.toml").open("a") as descriptor:
        descriptor.write('\n[io.hybridless.ecr]\nkeep-images = 9\ntags = { team = "orders" }\n')
    return app


def test_two_builds_to_one_ecr_reference_create_the_repository_once(
    cli: CliRunner, moto_recorder: MotoProcess, ecr_data_registry: Registry,
    busybox_base: BaseImage, ecr_app: Path, tmp_path: Path, docker_client: docker.DockerClient,
) -> None:
    env = _aws_env(tmp_path, moto_recorder, ecr_data_registry)
    repository = f"orders-{secrets.token_hex(3)}"
    target = f"docker://{HOST}/{repository}:v1"
    before = moto_recorder.calls()
    digests = []
    for _ in range(2):
        # The flag beats the descriptor's keep-images; its tags stay.
        doc = run_json(cli, "build", ecr_app, "--image", target, "--run-image", busybox_base.ref,
                       "--keep-images", "7", "--no-scan-on-push", env=env)
        assert doc["pushed"] == [f"{HOST}/{repository}@{doc['digest']}"]
        digests.append(doc["digest"])
    calls = moto_recorder.calls() - before
    assert (calls["CreateRepository"], calls["PutLifecyclePolicy"]) == (1, 1), calls
    assert digests[0] == digests[1]

    ecr = _ecr(moto_recorder)
    repo = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "orders"}
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName=repository)
                        ["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"]["countNumber"] == 7

    # The engine pulls what we pushed from the data plane (loopback: insecure by default).
    name = f"{ecr_data_registry.host}/{repository}"
    auth = {"username": ecr_data_registry.username, "password": ecr_data_registry.password}
    pulled = docker_client.images.pull(name, tag="v1", auth_config=auth)
    port = free_port()
    container = docker_client.containers.run(
        f"{name}:v1", detach=True, ports={"8080/tcp": ("127.0.0.1", port)})
    try:
        assert any(d.endswith(digests[0]) for d in pulled.attrs["RepoDigests"])
        assert b"<" in get_when_up(f"http://127.0.0.1:{port}/index.html")
    finally:
        container.remove(force=True)
        docker_client.images.remove(f"{name}:v1", force=True)


def test_hybridless_naming_pushes_one_image_per_function(
    cli: CliRunner, moto_recorder: MotoProcess, ecr_data_registry: Registry,
    busybox_base: BaseImage, ecr_app: Path, tmp_path: Path, docker_client: docker.DockerClient,
) -> None:
    env = _aws_env(tmp_path, moto_recorder, ecr_data_registry)
    service = f"orders-api_{secrets.token_hex(2)}"
    doc = run_json(cli, "build", ecr_app, "--image", f"docker://{HOST}/any",
                   "--run-image", busybox_base.ref, "--repository-naming", "hybridless",
                   "--service", service, "--tag", "latest", env=env)
    # Hybridless 0.1.46 (github.com/Hybridless/hybridless, src/resources/Image.ts
    # _getECRRepoName): lower(`${getNormalizedFunctionName(service without "-")}/`
    # `${getNormalizedFunctionName(function without "-")}.${eventIndex}-${stage}.v3`), where
    # Serverless's getNormalizedFunctionName spells "_" as "Underscore": orders-api_ab12 →
    # ordersapiunderscoreab12. The functions are the Procfile's web and hello; stage "demo".
    prefix = "ordersapiunderscore" + service.rpartition("_")[2]
    expected = {f"{prefix}/web.0-demo.v3", f"{prefix}/hello.0-demo.v3"}
    pushed = {ref.partition("@")[0].removeprefix(f"{HOST}/"): ref.partition("@")[2]
              for ref in doc["pushed"]}
    assert set(pushed) == expected
    assert pushed[f"{prefix}/web.0-demo.v3"] != pushed[f"{prefix}/hello.0-demo.v3"]
    for repository, digest in pushed.items():
        listed = _registry_get(ecr_data_registry, f"/v2/{repository}/tags/list")
        assert sorted(listed["tags"]) == sorted([digest[7:19], "latest"])  # type: ignore[index]

    # A rebuild on an empty machine reads the first function's image by the first --tag as
    # its previous image (every function's image has the same buildpack layers).
    again = run_json(CliRunner(home=tmp_path / "runner2" / "home",
                               cache=tmp_path / "runner2" / "cache"),
                     "build", ecr_app, "--image", f"docker://{HOST}/any",
                     "--run-image", busybox_base.ref, "--repository-naming", "hybridless",
                     "--service", service, "--tag", "latest", env=env)
    assert again["previous_image"]["image"] in {f"docker://{HOST}/{r}:latest" for r in expected}
    assert again["pushed"] == doc["pushed"]

    # The hello repository's image runs hello by default.
    repository = f"{prefix}/hello.0-demo.v3"
    name = f"{ecr_data_registry.host}/{repository}"
    auth = {"username": ecr_data_registry.username, "password": ecr_data_registry.password}
    docker_client.images.pull(name, tag="latest", auth_config=auth)
    try:
        out = docker_client.containers.run(f"{name}:latest", ["x"], remove=True)
        assert out.decode().startswith("hello from"), out
    finally:
        docker_client.images.remove(f"{name}:latest", force=True)


def test_ecr_failures_are_one_line_with_their_codes(
    cli: CliRunner, moto_recorder: MotoProcess, ecr_data_registry: Registry,
    busybox_base: BaseImage, tmp_path: Path,
) -> None:
    env = _aws_env(tmp_path, moto_recorder, ecr_data_registry)
    absent = f"docker://{HOST}/absent-{secrets.token_hex(3)}:1"
    # An ECR error: the repository is missing and we may not create it.
    result = cli("push", busybox_base.ref, absent, "--no-create-repository", env=env)
    assert result.returncode == 72, result.stderr
    assert "absent-" in result.stderr and "Traceback" not in result.stderr
    # No credentials at all.
    bare = {**env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = cli("push", busybox_base.ref, absent, env=bare)
    assert result.returncode == 71, result.stderr
    assert "credentials" in result.stderr and "Traceback" not in result.stderr
    # Credentials AWS refuses: a moto that checks them against its IAM users.
    with moto_process(tmp_path / "strict", require_auth=True) as strict:
        refused = {**env, "AWS_ENDPOINT_URL_ECR": strict.url}
        result = cli("push", busybox_base.ref, absent, env=refused)
    assert result.returncode == 71, result.stderr
    assert "e2e-secret-never-shown" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 2  # the message and its hint
    # A bad flag is a usage error before any work.
    result = cli("push", busybox_base.ref, absent, "--keep-images", "0", env=env)
    assert result.returncode == 2 and "keep-images" in result.stderr
    result = cli("push", busybox_base.ref, absent, "--repository-naming", "hybridless", env=env)
    assert result.returncode == 2 and "per function" in result.stderr


def test_a_bad_ecr_table_is_exit_11(cli: CliRunner, ecr_app: Path, tmp_path: Path) -> None:
    with (ecr_app / "project.toml").open("a") as descriptor:
        descriptor.write('tag-mutability = "SOMETIMES"\n')
    result = cli("build", ecr_app, "--image", "x:1", "--run-image", "oci:/nonexistent")
    assert result.returncode == 11, result.stderr
    assert "tag-mutability" in result.stderr and "project.toml" in result.stderr


# --- run ---------------------------------------------------------------------------------


@pytest.fixture
def stored_hello(cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> Iterator[str]:
    """procfile-hello built into the CLI's own store, so run must load it into the engine."""
    app = copy_example("procfile-hello", tmp_path / "src")
    tag = f"hello-run:{os.getpid()}-{secrets.token_hex(2)}"
    run_json(cli, "build", app, "--image", tag, "--run-image", busybox_base.ref)
    yield tag


def test_run_loads_serves_and_stops_on_ctrl_c(
    cli: CliRunner, stored_hello: str, docker_client: docker.DockerClient,
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*cli.command, "run", stored_hello, "-p", f"127.0.0.1:{port}:8080"],
        env=cli.environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert b"<" in get_when_up(f"http://127.0.0.1:{port}/index.html")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert b"response:200" in stdout + stderr  # httpd -v logs the request: logs stream
    assert b"loading" in stderr  # the store image was not in the engine
    assert not docker_client.containers.list(all=True, filters={"ancestor": stored_hello})
    # A second run finds it there and exits with the process's own code.
    result = cli("run", stored_hello, "--process", "hello", "-e", "STAGE=e2e")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from hello on stage e2e:"
    assert "loading" not in result.stderr
    docker_client.images.remove(stored_hello, force=True)


def test_engine_not_running_is_125_for_run_and_invoke(
    cli: CliRunner, tmp_path: Path, busybox_base: BaseImage,
) -> None:
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    for command in ("run", "invoke"):
        result = cli(command, "docker-daemon:hello:1", env=dead)
        assert result.returncode == 125, result.stderr
        assert "failed to reach the Docker engine" in result.stderr
        assert "Traceback" not in result.stderr
    result = cli("push", busybox_base.ref, "docker-daemon:hello:1", env=dead)
    assert result.returncode == 60, result.stderr
    assert "Traceback" not in result.stderr
