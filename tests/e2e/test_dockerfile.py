"""Custom Dockerfiles end to end (docs/reference.md §7): the real CLI, the real Docker engine.

The busybox tests cover both modes, the renormalised layers (owners, hard links, whiteouts),
the history without build-arg values, reproducibility and every refusal. The Debian test
installs a ``.deb`` on top of a Node.js httpd image, as the issue asks.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import textwrap
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner
from tests.infra.containers import load_archive, run_to_exit, running
from tests.infra.images import BaseImage, DockerImage
from tests.infra.services import Registry

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.docker

SECRET_LOOKING = "greeting-value-4f1d9"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

EXTEND_DOCKERFILE = """\
ARG HYBRIDLESS_IMAGE
FROM ${HYBRIDLESS_IMAGE}
ARG GREETING
USER root
COPY note.txt /opt/note.txt
RUN echo "$GREETING" > /var/task/public/greeting.txt \\
 && echo owned > /opt/owned && chown 1000:1000 /opt/owned \\
 && ln /opt/owned /opt/a-hard-link \\
 && rm -f /bin/vi
USER 1000
"""


def _extend_app(root: Path) -> Path:
    app = copy_example("procfile-hello", root)
    with (app / "project.toml").open("a") as descriptor:
        descriptor.write(textwrap.dedent(f"""
            [[io.hybridless.functions]]
            name = "web"
            command = "exec httpd -f -v -p \\"${{PORT}}\\" -h /var/task/public"
            dockerfile = "Dockerfile"
            docker-build-args = {{ GREETING = "{SECRET_LOOKING}" }}
            additional-docker-files = [{{ from = "extra/note.txt", to = "note.txt" }}]
        """))
    (app / "extra").mkdir()
    (app / "extra" / "note.txt").write_text("a note from the additional files\n")
    (app / "Dockerfile").write_text(EXTEND_DOCKERFILE)
    return app


def _layout_image(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())
    return manifest, json.loads(_blob(layout, manifest["config"]["digest"]).read_text())


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(_blob(layout, digest)) as layer:
        return {member.name: member for member in layer.getmembers()}


@pytest.fixture(scope="module")
def extend_builds(tmp_path_factory: pytest.TempPathFactory, busybox_base: BaseImage,
                  docker_client: docker.DockerClient) -> list[tuple[Path, dict[str, Any], str]]:
    """The extend-mode app built twice, from different directories and empty stores."""
    builds = []
    for run in ("one", "two"):
        root = tmp_path_factory.mktemp(f"dockerfile-extend-{run}")
        cli = CliRunner(home=root / "home", cache=root / "cache")
        app = _extend_app(root / "src")
        layout = root / "out"
        result = cli("build", app, "--image", f"oci:{layout}:web", "--run-image",
                     busybox_base.ref, "--json")
        assert result.returncode == 0, result.stderr
        builds.append((layout, json.loads(result.stdout), result.stderr))
    return builds


def test_extend_mode_is_reproducible_and_says_its_mode(
        extend_builds: list[tuple[Path, dict[str, Any], str]]) -> None:
    (_, first, stderr), (_, second, _) = extend_builds
    assert first["digest"] == second["digest"]
    assert "extend mode" in stderr
    assert first["dockerfile"] == {"mode": "extend", "path": "Dockerfile"}
    names = [layer["name"] for layer in first["layers"]]
    assert names[-2:] == ["dockerfile", "dockerfile"] and "launcher" in names


def test_extend_mode_keeps_owner_hard_link_whiteout_and_clamps_times(
        extend_builds: list[tuple[Path, dict[str, Any], str]]) -> None:
    layout, _, _ = extend_builds[0]
    manifest, config = _layout_image(layout)
    top = _members(layout, manifest["layers"][-1]["digest"])
    owned, link = top["opt/owned"], top["opt/a-hard-link"]
    # Sorting put the link's name first, so it now carries the content and the other links.
    assert (link.type, link.uid, link.gid, link.size) == (tarfile.REGTYPE, 1000, 1000, 6)
    assert owned.islnk() and owned.linkname == "opt/a-hard-link" and owned.uid == 1000
    assert "bin/.wh.vi" in top
    assert {m.mtime for m in top.values()} == {315532801}
    assert list(top) == sorted(top, key=lambda n: n.rstrip("/").encode())
    label = json.loads(config["config"]["Labels"]["io.hybridless.build"])
    assert label["dockerfile"] == {"mode": "extend", "path": "Dockerfile"}
    assert label["processes"][0]["name"] == "web"
    assert config["config"]["Entrypoint"] == ["/hybridless/launcher"]
    assert config["config"]["User"] == "1000"
    history = json.dumps(config["history"])
    assert SECRET_LOOKING not in history and "|1 GREETING /bin/sh" in history
    assert "container_config" not in config and "docker_version" not in config


def test_extend_mode_image_serves_and_rebase_needs_force(
        extend_builds: list[tuple[Path, dict[str, Any], str]], cli: CliRunner,
        docker_client: docker.DockerClient, busybox_base: BaseImage, tmp_path: Path) -> None:
    layout, _, _ = extend_builds[0]
    archive = tmp_path / "web.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:web",
                    f"docker-archive:{archive}:hybridless-e2e/dockerfile-web:test"], check=True)
    (tag,) = load_archive(docker_client, archive)
    try:
        with running(docker_client, tag, env={"PORT": "8080"}, wait_path="/") as server:
            with _DIRECT.open(server.url("/greeting.txt"), timeout=5) as response:
                assert response.read().decode().strip() == SECRET_LOOKING
        note = run_to_exit(docker_client, tag, ["/opt/note.txt"], entrypoint=["cat"])
        assert note.stdout == "a note from the additional files\n"
    finally:
        docker_client.images.remove(tag, force=True)

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(layout), str(copy)], check=True)
    refused = cli("rebase", f"oci:{copy}:web", "--run-image", busybox_base.ref)
    assert refused.returncode == 51, refused.stderr
    assert "Dockerfile" in refused.stderr and "--force" in refused.stderr
    forced = cli("rebase", f"oci:{copy}:web", "--run-image", busybox_base.ref, "--force")
    assert forced.returncode == 0, forced.stderr


def _container_app(root: Path, base: DockerImage) -> Path:
    app = root / "site"
    (app / "conf").mkdir(parents=True)
    (app / "www").mkdir()
    (app / "www" / "hello.txt").write_text("hello from the app\n")
    (app / "conf" / "index.html").write_text("<p>from an additional file</p>\n")
    (app / ".dockerignore").write_text("secret.env\n")
    (app / "secret.env").write_text("TOKEN=do-not-send\n")
    (app / "project.toml").write_text(textwrap.dedent(f"""
        [_]
        schema-version = "0.2"
        id = "dev.hybridless.tests.container-site"

        [[io.hybridless.functions]]
        name = "site"
        runtime = "container"
        handler = "www/index.handler"
        dockerfile = "docker/Dockerfile.site"
        docker-build-args = {{ BASE = "{base.name}", GREETING = "{SECRET_LOOKING}" }}
        additional-docker-files = [{{ from = "conf/index.html", to = "www/index.html" }}]
    """))
    (app / "docker").mkdir()
    (app / "docker" / "Dockerfile.site").write_text(textwrap.dedent("""\
        ARG BASE
        FROM ${BASE}
        ARG GREETING
        USER root
        COPY www/ /www/
        RUN echo "$GREETING" > /www/greeting.txt && ls /secret.env 2>/dev/null; \\
            test ! -e /www/secret.env
        COPY . /context/
        USER 1000
        EXPOSE 8080
        ENTRYPOINT ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    """))
    return app


def test_container_mode_runs_its_own_server_with_build_args(
        cli: CliRunner, busybox_in_docker: DockerImage, docker_client: docker.DockerClient,
        tmp_path: Path) -> None:
    app = _container_app(tmp_path, busybox_in_docker)
    archive = tmp_path / "site.tar"
    result = cli("build", app, "--image",
                 f"docker-archive:{archive}:hybridless-e2e/dockerfile-site:test",
                 "--tag", "site:1", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dockerfile"] == {"mode": "container", "path": "docker/Dockerfile.site"}
    assert "container mode (runtime = \"container\")" in result.stderr
    assert "runs as root" not in result.stderr
    stored = run_json(cli, "inspect", "site:1")
    assert stored["digest"] == doc["digest"]
    assert stored["build"]["dockerfile"]["mode"] == "container"
    (tag,) = load_archive(docker_client, archive)
    try:
        with running(docker_client, tag, wait_path="/index.html") as server:
            for path, body in (("/index.html", "<p>from an additional file</p>"),
                               ("/greeting.txt", SECRET_LOOKING),
                               ("/hello.txt", "hello from the app")):
                with _DIRECT.open(server.url(path), timeout=5) as response:
                    assert response.read().decode().strip() == body
        listing = run_to_exit(docker_client, tag, ["-c", "ls -a /context"],
                              entrypoint=["/bin/sh"])
        assert "secret.env" not in listing.stdout and "www" in listing.stdout
        assert "project.toml" not in listing.stdout  # the engine's secrets list
        history = json.dumps(docker_client.api.history(tag))
        inspected = docker_client.api.inspect_image(tag)
    finally:
        docker_client.images.remove(tag, force=True)
    assert SECRET_LOOKING not in history and busybox_in_docker.name not in history
    label = json.loads(inspected["Config"]["Labels"]["io.hybridless.build"])
    assert label["dockerfile"]["mode"] == "container"
    assert label["run-image"]["reference"] == busybox_in_docker.name
    assert label["run-image"]["layers"] == 1
    env = inspected["Config"]["Env"]
    assert "ENTRYPOINT=www/index" in env and "ENTRYPOINT_FUNC=handler" in env


def _write(app: Path, dockerfile: str, extra: str = "") -> None:
    (app / "Dockerfile").write_text(dockerfile)
    with (app / "project.toml").open("a") as descriptor:
        descriptor.write(textwrap.dedent(f"""
            [[io.hybridless.functions]]
            name = "web"
            command = "true"
            dockerfile = "Dockerfile"
            {extra}
        """))


_EXTEND = "ARG HYBRIDLESS_IMAGE\nFROM ${HYBRIDLESS_IMAGE}\n"


@pytest.mark.parametrize(("dockerfile", "extra", "code", "needle"), [
    (None, "", 90, "failed to find the Dockerfile 'Dockerfile'"),
    (_EXTEND, 'additional-docker-files = [{ from = "../outside", to = "x" }]', 11,
     "leaves the app directory"),
    (_EXTEND, 'additional-docker-files = [{ from = "escape", to = "x" }]', 90,
     "leads outside the app directory"),
    (_EXTEND + "RUN --mount=type=cache,target=/c true\n", "", 90, "BuildKit-only"),
    ("# syntax=docker/dockerfile:1.7\n" + _EXTEND, "", 90, "BuildKit frontend"),
    (_EXTEND + "RUN echo last-words-of-the-step && false\n", "", 90,
     "Step 3/3 : RUN echo last-words-of-the-step && false"),
    ("FROM {registry}/not-there:1\n", "", 72, "not-there"),
    ("FROM not-there@sha256:" + "0" * 64 + "\n", "", 30, "name it by tag"),
])
def test_dockerfile_refusals_name_the_cause(
        cli: CliRunner, busybox_base: BaseImage, registry: Registry, tmp_path: Path,
        dockerfile: str | None, extra: str, code: int, needle: str) -> None:
    app = copy_example("procfile-hello", tmp_path / "src")
    _write(app, (dockerfile or "").replace("{registry}", registry.host), extra)
    if dockerfile is None:
        (app / "Dockerfile").unlink()
    if "escape" in extra:
        (tmp_path / "secret").write_text("outside\n")
        (app / "escape").symlink_to(tmp_path / "secret")
    result = cli("build", app, "--image", f"oci:{tmp_path / 'out'}:x", "--run-image",
                 busybox_base.ref)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr
    if "last-words" in needle:
        assert "last-words-of-the-step" in result.stderr.split(needle)[1]


DEB_DOCKERFILE = """\
ARG HYBRIDLESS_IMAGE
FROM ${HYBRIDLESS_IMAGE}
USER root
COPY hello-tool.deb /tmp/hello-tool.deb
RUN dpkg -i /tmp/hello-tool.deb && rm /tmp/hello-tool.deb \\
 && cp /bin/true /usr/local/bin/capable \\
 && python3 -c "import os; os.setxattr('/usr/local/bin/capable', 'security.capability', \\
bytes.fromhex('$CAPABILITY'))"
USER 1000
""".replace("$CAPABILITY", "0100000200040000000000000000000000000000")


def _tiny_deb(workdir: Path) -> Path:
    """A one-script Debian package, built reproducibly with dpkg-deb."""
    root = workdir / "hello-tool"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: hello-tool\nVersion: 1.0\nArchitecture: all\nMaintainer: Tests <t@example.com>\n"
        "Description: prints a greeting\n")
    script = root / "usr" / "bin" / "hello-tool"
    script.write_text("#!/bin/sh\necho hello from a deb\n")
    script.chmod(0o755)
    deb = workdir / "hello-tool.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True, env={"SOURCE_DATE_EPOCH": "315532801",
                                                         "PATH": "/usr/bin:/bin"})
    return deb


def test_extend_mode_installs_a_deb_on_a_nodejs_httpd_image(
        tmp_path_factory: pytest.TempPathFactory, debian_base: BaseImage,
        docker_client: docker.DockerClient) -> None:
    deb = _tiny_deb(tmp_path_factory.mktemp("deb"))
    built = []
    for run in ("one", "two"):
        root = tmp_path_factory.mktemp(f"dockerfile-deb-{run}")
        app = copy_example("nodejs-handler", root / "src")
        (app / "pkg").mkdir()
        (app / "pkg" / "hello-tool.deb").write_bytes(deb.read_bytes())
        (app / "Dockerfile").write_text(DEB_DOCKERFILE)
        (app / "project.toml").write_text(textwrap.dedent("""
            [_]
            schema-version = "0.2"
            id = "dev.hybridless.tests.deb"
            [[io.hybridless.functions]]
            name = "main"
            handler = "handler.handler"
            dockerfile = "Dockerfile"
            additional-docker-files = [{ from = "pkg/hello-tool.deb", to = "hello-tool.deb" }]
        """))
        cli = CliRunner(home=root / "home", cache=root / "cache")
        doc = run_json(cli, "build", app, "--image", f"oci:{root / 'out'}:main", "--run-image",
                       debian_base.ref)
        built.append((root / "out", doc))
    (layout, first), (_, second) = built
    assert first["digest"] == second["digest"]
    manifest, _ = _layout_image(layout)
    top = _members(layout, manifest["layers"][-1]["digest"])
    capable = top["usr/local/bin/capable"]
    assert capable.pax_headers.get("SCHILY.xattr.security.capability", "").encode(
        "utf-8", "surrogateescape") == bytes.fromhex("0100000200040000000000000000000000000000")
    assert "usr/bin/hello-tool" in top and "var/log/dpkg.log" not in top
    assert "var/lib/dpkg/info/hello-tool.list" in top

    archive = tmp_path_factory.mktemp("deb-archive") / "deb.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:main",
                    f"docker-archive:{archive}:hybridless-e2e/dockerfile-deb:test"], check=True)
    (tag,) = load_archive(docker_client, archive)
    try:
        with running(docker_client, tag, wait_path="/") as server:
            with _DIRECT.open(server.url("/?name=deb"), timeout=5) as response:
                assert json.loads(response.read())["message"] == "hello, deb"
        tool = run_to_exit(docker_client, tag, [], entrypoint=["hello-tool"])
        assert tool.stdout == "hello from a deb\n"
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_root_result_warns_and_a_foreign_last_stage_is_container_mode(
        cli: CliRunner, busybox_base: BaseImage, busybox_in_docker: DockerImage,
        tmp_path: Path) -> None:
    app = copy_example("procfile-hello", tmp_path / "src")
    _write(app, f"ARG HYBRIDLESS_IMAGE\nFROM ${{HYBRIDLESS_IMAGE}} AS ours\n"
                f"FROM {busybox_in_docker.name}\nCOPY --from=ours /var/task /var/task\n"
                "USER root\n")
    result = cli("build", app, "--image", f"oci:{tmp_path / 'out'}:x", "--run-image",
                 busybox_base.ref, "--json")
    assert result.returncode == 0, result.stderr
    assert "container mode: its last stage starts FROM" in result.stderr
    assert "runs as root (USER root)" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["dockerfile"]["mode"] == "container"
    manifest, config = _layout_image(tmp_path / "out")
    assert len(manifest["layers"]) == 2  # busybox, then the copied app
    label = json.loads(config["config"]["Labels"]["io.hybridless.build"])
    assert label["dockerfile"] == {"mode": "container", "path": "Dockerfile"}
    assert "hybridless-dockerfile" not in json.dumps(config)


def test_an_unreadable_dockerignore_is_refused(cli: CliRunner, busybox_base: BaseImage,
                                                tmp_path: Path) -> None:
    app = copy_example("procfile-hello", tmp_path / "src")
    _write(app, _EXTEND)
    (app / ".dockerignore").write_bytes(b"\xff\xfe not utf-8\n")
    result = cli("build", app, "--image", f"oci:{tmp_path / 'out'}:x", "--run-image",
                 busybox_base.ref)
    assert result.returncode == 90, result.stderr
    assert ".dockerignore" in result.stderr and "UTF-8" in result.stderr


def test_from_images_are_pulled_by_our_client_and_the_result_pushed(
        cli: CliRunner, busybox_base: BaseImage, registry: Registry,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """A FROM image only a registry has is pulled by our client; the result goes to a registry."""
    source = f"{registry.host}/dockerfile-tests/busybox:from"
    run_json(cli, "push", busybox_base.ref, f"docker://{source}")
    app = tmp_path / "pulled"
    app.mkdir()
    (app / "hello.txt").write_text("served after a pull\n")
    (app / "project.toml").write_text(textwrap.dedent("""
        [_]
        schema-version = "0.2"
        id = "dev.hybridless.tests.pulled"
        [[io.hybridless.functions]]
        name = "site"
        runtime = "container"
        dockerfile = "Dockerfile"
    """))
    (app / "Dockerfile").write_text(
        f"FROM {source}\nCOPY hello.txt /www/hello.txt\nUSER 1000\n"
        'ENTRYPOINT ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    target = f"{registry.host}/dockerfile-tests/site:pushed"
    try:
        result = cli("build", app, "--image", f"docker://{target}", "--json")
        assert result.returncode == 0, result.stderr
        assert "pulled the FROM image" in result.stderr
        doc = json.loads(result.stdout)
        assert doc["pushed"] == [f"{target.rsplit(':', 1)[0]}@{doc['digest']}"]
        pulled = docker_client.images.pull(target)
        with running(docker_client, str(pulled.id), wait_path="/hello.txt") as server:
            with _DIRECT.open(server.url("/hello.txt"), timeout=5) as response:
                assert response.read() == b"served after a pull\n"
    finally:
        for name in (source, target):
            try:
                docker_client.images.remove(name, force=True)
            except Exception:  # not loaded: the assertion above says why
                pass
