"""``docker://`` end to end: build on a registry base, push, inspect, copy, and the errors.

The registry's own access log says what really crossed the wire.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.e2e.conftest import pushed_base, run_json, tool
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage
from tests.infra.net import free_port
from tests.infra.oci_images import AccessLog, docker_config
from tests.infra.services import Registry


def _base(registry: Registry, busybox_base: BaseImage) -> str:
    """The busybox base pushed by skopeo (an independent client) to a fresh repository."""
    return pushed_base(registry.host, busybox_base.ref)


def _env(tmp_path: Path) -> dict[str, str]:
    return docker_config(tmp_path / "docker-config", {})


def test_build_on_a_registry_base_and_push_with_tags(
    cli: CliRunner, registry: Registry, busybox_base: BaseImage, hello_app: Path, tmp_path: Path,
    docker_client: object,
) -> None:
    base = _base(registry, busybox_base)
    app = f"{registry.host}/app-{secrets.token_hex(3)}"
    env = _env(tmp_path)
    doc = run_json(cli, "build", hello_app, "--image", f"docker://{app}:1",
                   "--tag", f"docker://{app}:latest", "--run-image", base, env=env)
    digest = doc["digest"]
    assert doc["pushed"] == [f"{app}@{digest}"]
    seen = json.loads(tool("skopeo", "inspect", "--tls-verify=false", f"docker://{app}:latest")
                      .stdout)
    assert seen["Digest"] == digest
    label = json.loads(seen["Labels"]["io.hybridless.build"])
    assert label["run-image"]["digest"] == busybox_base.digest

    # Docker pulls and runs what we pushed, and sees our digest.
    client = docker_client
    pulled = client.images.pull(f"{app}", tag="1")  # type: ignore[attr-defined]
    try:
        assert any(d.endswith(digest) for d in pulled.attrs["RepoDigests"])
        out = client.containers.run(  # type: ignore[attr-defined]
            f"{app}:1", ["x"], environment={"HYBRIDLESS_PROCESS": "hello"}, remove=True)
        assert out.decode().strip() == "hello from hello on stage demo: x"
    finally:
        client.images.remove(f"{app}:1", force=True)  # type: ignore[attr-defined]

    # A rebuild with no change: the base costs one HEAD; the previous image (the --image
    # itself) a HEAD, its manifest and its config; the push one HEAD per reference.
    log = AccessLog(registry)
    again = run_json(cli, "build", hello_app, "--image", f"docker://{app}:1",
                     "--run-image", base, env=env)
    assert again["digest"] == digest
    assert again["previous_image"] == {"image": f"docker://{app}:1", "restored": []}
    requests = log.requests()
    assert [(m, s) for m, p, s in requests if "/manifests/" in p] == [
        ("HEAD", 200), ("HEAD", 200), ("GET", 200), ("HEAD", 200)]
    assert not [r for r in requests if r[0] in ("PUT", "POST", "PATCH")]
    assert [p for m, p, _ in requests if "/blobs/" in p] == [
        f"/v2/{app.partition('/')[2]}/blobs/{again['config_digest']}"]


def test_inspect_reads_manifest_and_config_only(
    cli: CliRunner, registry: Registry, busybox_base: BaseImage, tmp_path: Path
) -> None:
    base = _base(registry, busybox_base)
    log = AccessLog(registry)
    doc = run_json(cli, "inspect", base, env=_env(tmp_path))
    assert doc["digest"] == busybox_base.digest
    blob_gets = [p for m, p, _ in log.requests() if m == "GET" and "/blobs/" in p]
    assert blob_gets == [p for p in blob_gets if doc["config_digest"] in p] and len(blob_gets) == 1


def test_push_between_repositories_mounts_and_pins(
    cli: CliRunner, registry: Registry, busybox_base: BaseImage, tmp_path: Path
) -> None:
    base = _base(registry, busybox_base)
    env = _env(tmp_path)
    run_json(cli, "push", busybox_base.ref, "stored:1", env=env)  # a local copy, no registry
    dest = f"{registry.host}/copy-{secrets.token_hex(3)}/busybox"
    log = AccessLog(registry)
    doc = run_json(cli, "push", base, f"docker://{dest}:1", "--tag", f"docker://{dest}:2",
                   env=env)
    assert doc["pushed"] == [f"{dest}@{busybox_base.digest}"]
    requests = log.requests()
    assert any(m == "POST" and "mount=" in p and s == 201 for m, p, s in requests)
    assert not [p for m, p, _ in requests if m in ("PUT", "PATCH") and "/blobs/uploads/" in p]
    # Text output: the pinned reference, one a line.
    result = cli("push", f"docker://{dest}:1", f"oci:{tmp_path / 'out'}:1", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "index.json").read_text())["manifests"][0][
        "digest"] == busybox_base.digest


def test_registry_failures_exit_70_71_72_without_traceback(
    cli: CliRunner, registry: Registry, registry_auth: Registry, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    cases = [
        (f"docker://127.0.0.1:{free_port()}/nothing:1", 70, "failed to reach registry"),
        (f"docker://{registry_auth.host}/private:1", 71, "no credentials"),
        (f"docker://{registry.host}/absent-{secrets.token_hex(3)}:1", 72, "MANIFEST_UNKNOWN"),
    ]
    for ref, code, said in cases:
        result = cli("inspect", ref, env=env)
        assert result.returncode == code, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr
    result = cli("inspect", f"docker://{registry.host}/x:1", "--json", "--platform", "nope",
                 env=env)
    assert result.returncode == 2 and "OS/ARCH" in json.loads(result.stdout)["error"]

    # Wrong credentials, with debug output: the secret shows nowhere.
    secret = "wrong-" + secrets.token_hex(8)
    wrong = docker_config(tmp_path / "wrong", {"auths": {registry_auth.host: {
        "username": "hybridless", "password": secret}}})
    result = cli("-v", "push", f"docker://{registry_auth.host}/private:1",
                 f"oci:{tmp_path / 'never'}:1", env=wrong)
    assert result.returncode == 71, result.stderr
    assert "as hybridless" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_registries_toml_endpoint_and_bad_file(
    cli: CliRunner, registry: Registry, busybox_base: BaseImage, tmp_path: Path
) -> None:
    base = _base(registry, busybox_base)
    path = base.removeprefix(f"docker://{registry.host}/")
    config = tmp_path / "registries.toml"
    config.write_text(f'["registry.example.test"]\nendpoint = "{registry.host}"\n')
    env = {**_env(tmp_path), "HYBRIDLESS_REGISTRIES": str(config)}
    doc = run_json(cli, "inspect", f"docker://registry.example.test/{path}", env=env)
    assert doc["digest"] == busybox_base.digest
    config.write_text('["registry.example.test"]\nendpiont = "x"\n')
    result = cli("inspect", f"docker://registry.example.test/{path}", env=env)
    assert result.returncode == 2
    assert "endpiont: unknown key" in result.stderr and str(config) in result.stderr


def test_push_to_ecr_logs_in_and_creates_the_repository(
    cli: CliRunner, moto_server: str, busybox_base: BaseImage, tmp_path: Path
) -> None:
    import boto3

    from tests.infra.services import running_registry

    account = "123456789012"
    host = f"{account}.dkr.ecr.eu-west-1.amazonaws.com"
    aws = {"AWS_ENDPOINT_URL_ECR": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
    repository = f"orders-{secrets.token_hex(3)}"
    # moto is ECR's control plane; its token decodes to AWS:<account>-auth-token, which the
    # data plane (a real registry behind htpasswd) accepts.
    with running_registry(tmp_path / "ecr", credentials=("AWS", f"{account}-auth-token")) as ecr:
        config = tmp_path / "registries.toml"
        config.write_text(f'["{host}"]\nendpoint = "{ecr.host}"\n')
        env = {**_env(tmp_path), **aws, "HYBRIDLESS_REGISTRIES": str(config)}
        doc = run_json(cli, "push", busybox_base.ref, f"docker://{host}/{repository}:v1", env=env)
    assert doc["pushed"] == [f"{host}/{repository}@{busybox_base.digest}"]
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_server,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    assert repository in names
