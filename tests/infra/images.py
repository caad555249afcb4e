"""Base images for the end-to-end tests, wrapped into OCI layouts by an independent tool (umoci).

None of this uses the project's own image code: the tests check that code against these
images, so a bug there must not be able to hide in here too. The Debian root filesystem comes
from the product's recipe code (:mod:`stacks.recipe`, mmdebstrap), which the stack tests check.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.errors import LifecycleError
from stacks.model import Recipe, User
from stacks.recipe import RecipeImage, build_rootfs
from stacks.release import fetch as fetch_release_dates
from stacks.rootfs import finish
from tests.infra.services import ServiceUnavailable

if TYPE_CHECKING:
    import docker

APP_UID = 1000
APP_USER = "app"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class BaseImage:
    """One tagged image in an OCI layout directory."""

    layout_dir: Path
    tag: str

    @property
    def ref(self) -> str:
        """The image as a transport reference: ``oci:DIR:TAG``."""
        return f"oci:{self.layout_dir}:{self.tag}"

    @property
    def digest(self) -> str:
        """The manifest digest the layout's index gives for ``tag``."""
        return manifest_digest(self.layout_dir, self.tag)


@dataclass(frozen=True)
class DockerImage:
    """A base image as loaded into the Docker engine: ``name`` is "REPO:TAG"."""

    name: str
    id: str


def require_tools(*names: str) -> None:
    """Raise ``ServiceUnavailable`` naming every tool in ``names`` that is not on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise ServiceUnavailable(f"missing tools: {', '.join(missing)}")


def run_tool(argv: Sequence[str], *, timeout: float = 300, log: Path | None = None) -> str:
    """Run a command, return its stdout, and raise ``RuntimeError`` with its stderr on failure.

    With ``log``, stdout and stderr go to that file instead (for chatty tools).
    """
    try:
        if log is None:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, check=False
            )
            returncode, output, errors = done.returncode, done.stdout, done.stderr
        else:
            with log.open("a") as sink:
                logged = subprocess.run(
                    list(argv), stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
                )
            returncode, output = logged.returncode, ""
            errors = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"failed to run {' '.join(argv)}: timed out after {timeout:g}s") from exc
    if returncode != 0:
        raise RuntimeError(f"failed to run {' '.join(argv)}: exit {returncode}\n{errors.strip()}")
    return output


def manifest_digest(layout_dir: Path, tag: str) -> str:
    """Return the digest of the manifest tagged ``tag`` in an OCI layout's index."""
    index = json.loads((layout_dir / "index.json").read_text())
    for entry in index.get("manifests", []):
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return str(entry["digest"])
    raise KeyError(f"tag {tag!r} is not in {layout_dir / 'index.json'}")


def _umoci_root_flags() -> list[str]:
    # Without root, umoci cannot set file owners and must record them instead.
    return [] if os.geteuid() == 0 else ["--rootless"]


def layout_from_rootfs(
    layout_dir: Path, tag: str, populate: Callable[[Path], None], workdir: Path
) -> BaseImage:
    """Make an OCI layout whose one image holds what ``populate`` writes into an empty rootfs.

    The image config runs as ``1000:1000`` in ``/`` with a standard PATH.
    """
    require_tools("umoci")
    image = f"{layout_dir}:{tag}"
    bundle = workdir / f"bundle-{tag}"
    run_tool(["umoci", "init", "--layout", str(layout_dir)])
    run_tool(["umoci", "new", "--image", image])
    run_tool(["umoci", "unpack", *_umoci_root_flags(), "--image", image, str(bundle)])
    populate(bundle / "rootfs")
    run_tool(["umoci", "repack", *_umoci_root_flags(), "--image", image, str(bundle)], timeout=600)
    _configure(layout_dir, tag)
    shutil.rmtree(bundle)
    return BaseImage(layout_dir=layout_dir, tag=tag)


def layout_from_tar(layout_dir: Path, tag: str, rootfs_tar: Path) -> BaseImage:
    """Make an OCI layout whose one image has ``rootfs_tar`` as its only layer.

    Configured as ``layout_from_rootfs`` does. For big trees this is several times faster:
    it skips the copy into a bundle and umoci's hashing walk over every file.
    """
    require_tools("umoci")
    image = f"{layout_dir}:{tag}"
    run_tool(["umoci", "init", "--layout", str(layout_dir)])
    run_tool(["umoci", "new", "--image", image])
    run_tool(["umoci", "raw", "add-layer", "--image", image, str(rootfs_tar)], timeout=600)
    _configure(layout_dir, tag)
    return BaseImage(layout_dir=layout_dir, tag=tag)


def _configure(layout_dir: Path, tag: str) -> None:
    """Set the config every test base shares, and drop the superseded blobs."""
    run_tool(
        [
            "umoci", "config", "--image", f"{layout_dir}:{tag}",
            "--config.user", f"{APP_UID}:{APP_UID}",
            "--config.env", f"PATH={PATH_ENV}",
            "--config.workingdir", "/",
        ]
    )  # fmt: skip
    # Each layer and config change leaves the previous manifest and config behind.
    run_tool(["umoci", "gc", "--layout", str(layout_dir)])


def finish_rootfs(rootfs: Path) -> None:
    """Apply what every test base shares: the stacks' user setup for ``app`` (uid/gid 1000)."""
    finish(rootfs, APP_USER, APP_UID, APP_UID)


def busybox_rootfs(rootfs: Path, busybox: Path) -> None:
    """Fill ``rootfs`` with a static busybox, its applet links and the shared base setup."""
    listing = run_tool([str(busybox), "--list-full"]).split()
    binary = rootfs / "bin" / "busybox"
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, binary)
    binary.chmod(0o755)
    for applet in listing:
        link = rootfs / applet
        if link == binary or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    root_home = rootfs / "root"
    root_home.mkdir(exist_ok=True)
    root_home.chmod(0o700)
    finish_rootfs(rootfs)


def find_static_busybox() -> Path:
    """Return the busybox-static binary, or raise ``ServiceUnavailable``."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        # Debian's dynamic busybox would need a libc the tiny image does not have.
        if path.is_file() and b"ld-linux" not in path.read_bytes()[:4096]:
            return path
    raise ServiceUnavailable("no static busybox (Debian busybox-static) is installed")


def build_busybox_base(workdir: Path, tag: str = "busybox") -> BaseImage:
    """Build the tiny busybox base as an OCI layout under ``workdir``."""
    busybox = find_static_busybox()
    return layout_from_rootfs(
        workdir / "layout", tag, lambda rootfs: busybox_rootfs(rootfs, busybox), workdir
    )


@dataclass(frozen=True)
class DebianRecipe:
    """What goes into the Debian test base; its hash keys the on-disk cache."""

    suite: str = "bookworm"
    # libatomic1: the official Node.js binaries (the node layer) link against it.
    packages: tuple[str, ...] = (
        "nodejs", "npm", "python3", "python3-venv", "ca-certificates", "libatomic1",
    )

    def image(self) -> RecipeImage:
        """The base as the stacks' recipe code builds it: the test user, no stack label."""
        user = User(APP_USER, APP_UID, APP_UID)
        return RecipeImage(Recipe(self.suite, self.packages), user, "run", "linux/amd64", None)

    def key(self) -> str:
        """Hash of the recipe and of the code that applies it, so either change rebuilds."""
        code = "".join(
            inspect.getsource(function)
            for function in (layout_from_tar, _configure, build_debian_base)
        )
        text = json.dumps(asdict(self), sort_keys=True) + self.image().key + code
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_rootfs_tar(output: Path, recipe: DebianRecipe, log: Path) -> None:
    """Write a Debian root filesystem made per ``recipe`` by the stacks' mmdebstrap recipe."""
    image = recipe.image()
    try:
        epoch = fetch_release_dates(image.recipe).epoch
        build_rootfs(image, output, epoch, log)
    except LifecycleError as error:
        raise RuntimeError(str(error)) from error


def cache_root() -> Path:
    """Return the directory that keeps heavy test artefacts between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hybridless-tests"


def build_debian_base(
    cache: Path, recipe: DebianRecipe | None = None, tag: str = "debian"
) -> BaseImage:
    """Return the Debian base layout from ``cache``, building it first when it is missing."""
    recipe = recipe or DebianRecipe()
    final = cache / f"debian-{recipe.suite}-{recipe.key()}"
    if (final / "index.json").is_file():
        return BaseImage(layout_dir=final, tag=tag)
    require_tools("mmdebstrap", "umoci")
    cache.mkdir(parents=True, exist_ok=True)
    _prune_stale_builds(cache)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        layout = work / "layout"
        rootfs_tar = work / "rootfs.tar"
        debian_rootfs_tar(rootfs_tar, recipe, work / "mmdebstrap.log")
        layout_from_tar(layout, tag, rootfs_tar)
        # The rename publishes a complete layout in one step; a concurrent builder may win.
        try:
            layout.rename(final)
        except OSError:
            if not (final / "index.json").is_file():
                raise
    finally:
        _remove_tree(work)
    for stale in cache.glob(f"debian-{recipe.suite}-*"):
        if stale != final:
            _remove_tree(stale)
    return BaseImage(layout_dir=final, tag=tag)


def _prune_stale_builds(cache: Path, max_age: float = 3600.0) -> None:
    """Remove build directories that a killed run left behind."""
    now = time.time()
    for leftover in cache.glob(".build-*"):
        if now - leftover.stat().st_mtime > max_age:
            _remove_tree(leftover)


def _remove_tree(path: Path) -> None:
    # Best effort: a leftover only costs disk, and the next build prunes it again.
    shutil.rmtree(path, ignore_errors=True)


def load_into_docker(
    client: docker.DockerClient, image: BaseImage, repository: str, workdir: Path
) -> tuple[DockerImage, bool]:
    """Load ``image`` into the engine as ``repository:<digest prefix>`` via skopeo's archive.

    Returns the loaded image and whether this call loaded it (False when it was there).
    """
    import docker.errors

    name = f"{repository}:{image.digest.split(':', 1)[1][:12]}"
    try:
        found = client.images.get(name)
    except docker.errors.ImageNotFound:
        pass
    else:
        return DockerImage(name=name, id=str(found.id)), False
    require_tools("skopeo")
    archive = workdir / f"{image.tag}-docker.tar"
    run_tool(["skopeo", "copy", "--quiet", image.ref, f"docker-archive:{archive}:{name}"])
    with archive.open("rb") as data:
        loaded = client.images.load(data)
    archive.unlink()
    if not loaded:
        raise RuntimeError(f"failed to load {image.ref} into Docker: the engine loaded nothing")
    return DockerImage(name=name, id=str(loaded[0].id)), True


def remove_other_tags(client: docker.DockerClient, repository: str, keep: str | None) -> None:
    """Remove every image tagged in ``repository`` except the one named ``keep``."""
    import docker.errors

    for found in client.images.list(name=repository):
        tags = [tag for tag in found.tags if tag.startswith(f"{repository}:")]
        for tag in tags:
            if tag == keep:
                continue
            try:
                client.images.remove(tag, force=True)
            except docker.errors.APIError:
                pass  # Still used by a container a test left behind; the engine keeps it.
