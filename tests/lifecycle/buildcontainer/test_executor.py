"""The docker executor against the real engine, on the tiny busybox image."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lifecycle.buildcontainer.executor import CONTAINER_LABEL, HOME, ContainerExecutor
from lifecycle.buildcontainer.spec import container_spec
from lifecycle.errors import BuildError, BuildpackFailed
from tests.infra.images import DockerImage

if TYPE_CHECKING:
    import docker

BP = "example/bp"
PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


class Lines(logging.Handler):
    """Keeps the formatted records a command streamed."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    app, layers, secrets = tmp_path / "app", tmp_path / "cache" / "layers" / "example_bp", \
        tmp_path / "secrets"
    for path in (app, layers, secrets):
        path.mkdir(parents=True)
    (app / "hello.txt").write_text("from the app\n")
    (secrets / "token").write_text("s3cret\n")
    return app, layers, secrets


def _executor(client: docker.DockerClient, image: DockerImage, dirs: tuple[Path, Path, Path],
              *, user: tuple[int, int] | None = None, ca: Path | None = None,
              environ: dict[str, str] | None = None) -> ContainerExecutor:
    app, layers, secrets = dirs
    spec = container_spec(image.name, app_dir=app, layer_dirs={BP: layers},
                          secrets_dir=secrets, ca=ca, network="bridge", environ=environ or {})
    if user is not None:
        from dataclasses import replace

        spec = replace(spec, user=user)
    return ContainerExecutor(spec, client, logging.getLogger("test"))


def _ours(client: docker.DockerClient) -> list[object]:
    return client.containers.list(all=True, filters={"label": CONTAINER_LABEL})


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    # By id, not by count: other test runs may have build containers on the same engine.
    return any(c.id == container_id for c in _ours(client))  # type: ignore[attr-defined]


def _run(executor: ContainerExecutor, script: str, cwd: Path, *, check: bool = True,
         capture: bool = True, env: dict[str, str] | None = None,
         log: logging.Logger | None = None) -> tuple[int, str]:
    result = executor.run(["sh", "-c", script], env={**PATH, **(env or {})}, cwd=cwd,
                          log=log or logging.getLogger("test"), check=check, capture=capture,
                          buildpack=BP)
    return result.returncode, result.output


def test_no_command_starts_no_container(docker_client: docker.DockerClient,
                                        busybox_in_docker: DockerImage,
                                        dirs: tuple[Path, Path, Path]) -> None:
    with _executor(docker_client, busybox_in_docker, dirs) as executor:
        pass
    assert executor.started == 0 and executor._container is None


def test_commands_share_one_container_with_translated_paths(
        docker_client: docker.DockerClient, busybox_in_docker: DockerImage,
        dirs: tuple[Path, Path, Path]) -> None:
    app, layers, secrets = dirs
    with _executor(docker_client, busybox_in_docker, dirs) as executor:
        _run(executor, "mkdir -p $OUT && pwd > $OUT/pwd && cat hello.txt > $OUT/copy",
             app, env={"OUT": str(layers / "deps")})
        _, output = _run(executor, f"cat {secrets / 'token'}; echo $HOME; "
                            f"touch /var/task/x 2>&1 || echo read-only", layers / "deps")
        started = executor._container.id  # type: ignore[attr-defined]
        assert executor.started == 1 and _exists(docker_client, started)
    assert (layers / "deps" / "pwd").read_text() == "/var/task\n"
    assert (layers / "deps" / "copy").read_text() == "from the app\n"
    assert output.splitlines()[0] == "s3cret" and output.splitlines()[1] == HOME
    assert output.splitlines()[-1] == "read-only" and not (app / "x").exists()
    assert not _exists(docker_client, started)


def test_files_belong_to_the_invoking_user(docker_client: docker.DockerClient,
                                           busybox_in_docker: DockerImage,
                                           dirs: tuple[Path, Path, Path]) -> None:
    _, layers, _ = dirs
    os.chmod(layers, 0o777)
    with _executor(docker_client, busybox_in_docker, dirs, user=(4321, 4322)) as executor:
        _, output = _run(executor, "id -u; id -g; echo hi > $HOME/h; echo made > out",
                         layers)
    assert output.split() == ["4321", "4322"]
    made = layers / "out"
    assert (made.stat().st_uid, made.stat().st_gid) == (4321, 4322)


def test_output_streams_and_a_failure_shows_its_tail(docker_client: docker.DockerClient,
                                                     busybox_in_docker: DockerImage,
                                                     dirs: tuple[Path, Path, Path]) -> None:
    app = dirs[0]
    handler = Lines()
    log = logging.getLogger("test.stream")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    started: list[str] = []
    with pytest.raises(BuildpackFailed) as caught, \
            _executor(docker_client, busybox_in_docker, dirs) as executor:
        try:
            _run(executor, "for i in $(seq 1 60); do echo line $i; done; echo oops >&2; "
                 "exit 3", app, capture=False, log=log)
        finally:
            started.append(executor._container.id)  # type: ignore[attr-defined]
    assert caught.value.exit_code == 50
    message = str(caught.value)
    assert "exited with 3" in message and "line 60" in message and "oops" in message
    assert "line 1\n" not in message  # only the tail
    assert "  line 1" in handler.lines and "  oops" in handler.lines
    assert not _exists(docker_client, started[0])  # removed although the build failed


def test_unchecked_exit_codes_come_back(docker_client: docker.DockerClient,
                                        busybox_in_docker: DockerImage,
                                        dirs: tuple[Path, Path, Path]) -> None:
    with _executor(docker_client, busybox_in_docker, dirs) as executor:
        assert _run(executor, "echo é; exit 7", dirs[0], check=False) == (7, "é")


def test_a_missing_program_is_named(docker_client: docker.DockerClient,
                                    busybox_in_docker: DockerImage,
                                    dirs: tuple[Path, Path, Path]) -> None:
    with pytest.raises(BuildpackFailed, match=r"'no-such-tool'.*command not found in the build "
                                              r"image"), \
            _executor(docker_client, busybox_in_docker, dirs) as executor:
        executor.run(["no-such-tool", "--version"], env=PATH, cwd=dirs[0],
                     log=logging.getLogger("test"), check=False, capture=True, buildpack=BP)


def test_ca_bundle_and_proxies_reach_commands_only(docker_client: docker.DockerClient,
                                                   busybox_in_docker: DockerImage,
                                                   dirs: tuple[Path, Path, Path],
                                                   tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("# corporate CA\n")
    proxies = {"https_proxy": "http://proxy.example:3128", "NO_PROXY": "localhost",
               "UNRELATED": "stays out"}
    with _executor(docker_client, busybox_in_docker, dirs, ca=bundle,
                   environ=proxies) as executor:
        _, output = _run(executor, "cat $SSL_CERT_FILE; echo $NODE_EXTRA_CA_CERTS $PIP_CERT; "
                         "echo $https_proxy $NO_PROXY ${UNRELATED:-unset}", dirs[0])
    assert output.splitlines() == ["# corporate CA", f"{bundle} {bundle}",
                                   "http://proxy.example:3128 localhost unset"]


def test_a_missing_build_image_is_named(docker_client: docker.DockerClient,
                                        dirs: tuple[Path, Path, Path]) -> None:
    image = DockerImage("hybridless-tests/no-such-image:never", "")
    with pytest.raises(BuildError, match="no-such-image"), \
            _executor(docker_client, image, dirs) as executor:
        _run(executor, "true", dirs[0])


def test_a_container_killed_under_the_build_is_a_lifecycle_failure(
        docker_client: docker.DockerClient, busybox_in_docker: DockerImage,
        dirs: tuple[Path, Path, Path]) -> None:
    with _executor(docker_client, busybox_in_docker, dirs) as executor:
        _run(executor, "true", dirs[0])
        (container,) = [c for c in _ours(docker_client)
                        if c.id == executor._container.id]  # type: ignore[attr-defined]
        container.remove(force=True)  # type: ignore[attr-defined]
        with pytest.raises(BuildError, match="the Docker engine failed") as caught:
            _run(executor, "true", dirs[0])
    assert caught.value.exit_code == 51
