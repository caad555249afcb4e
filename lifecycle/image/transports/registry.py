"""The ``docker://HOST/REPO[:TAG|@DIGEST]`` source and sink, through :mod:`lifecycle.registry`.

Reading pulls into the local store, as every base is read from there: a manifest already in
the store costs one ``HEAD``. The store entry remembers the repository it came from, so a
later push to another repository of the same registry mounts those blobs instead of sending
them. Writing pushes the image; a destination that already holds it costs one ``HEAD``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from lifecycle.errors import BaseImageFetchError, LifecycleError
from lifecycle.image.blobs import BlobDir
from lifecycle.image.image import Image, from_manifest
from lifecycle.image.reference import Reference
from lifecycle.image.transports.oci_layout import ref_name
from lifecycle.image.transports.store import Store, open_store
from lifecycle.registry.client import RegistryClient
from lifecycle.registry.config import load_settings
from lifecycle.registry.manifests import Descriptor, Manifest, Platform, host_platform
from lifecycle.registry.names import ImageName, ecr_region, parse_name
from lifecycle.registry.progress import for_terminal

if TYPE_CHECKING:
    from lifecycle.ecr import EcrSettings

log = logging.getLogger("hybridless.registry")

# The store annotation naming the registry repository an entry was pulled from.
SOURCE_ANNOTATION = "io.hybridless.registry.repository"


@dataclass(frozen=True)
class RegistryOptions:
    """The command line's registry settings: ``--insecure-registry``, ``--ca-bundle``, quiet."""

    insecure: tuple[str, ...] = ()
    ca_bundle: Path | None = None
    quiet: bool = False
    parallel: int = 4
    store_copy: bool = True
    """Whether a pushed image is also kept in the local store (builds: yes; ``push``: no)."""
    ecr: EcrSettings | None = None
    """How an Amazon ECR repository is created on first push (None: ECR's room defaults)."""

    def client(self) -> RegistryClient:
        """A client with ``registries.toml`` and these overrides."""
        settings = load_settings().with_overrides(
            insecure_hosts=self.insecure, ca_bundle=self.ca_bundle)
        return RegistryClient(settings, parallel=self.parallel,
                              progress=for_terminal(quiet=self.quiet))


def name_of(ref: Reference) -> ImageName:
    """The registry name a ``docker://`` reference means."""
    at = f"@{ref.digest}" if ref.digest else f":{ref.tag_or_default}"
    return parse_name(f"{ref.host}/{ref.name}{at}")


def platform_of(text: str | None) -> Platform:
    """``--platform``, else this machine's platform (as docker picks from an index)."""
    return Platform.parse(text) if text else host_platform()


def read(ref: Reference, platform: str | None, options: RegistryOptions | None = None) -> Image:
    """The image ``ref`` names, pulled into the local store unless it is there already."""
    options = options or RegistryOptions()
    name = name_of(ref)
    store = open_store()
    with options.client() as client:
        source, found = client.locate(name)
        if found is not None:
            local = _from_store(store, found.digest, platform_of(platform))
            if local is not None:
                log.info("%s is in the local store (%s)", name, found.digest)
                # Remember where it came from, for mounts: it may have been stored otherwise.
                store.layout.write(local, [_store_name(name)],
                                   extra={SOURCE_ANNOTATION: source.repo_path})
                return local
        log.info("pulling %s", name)
        with store.layout.writing():
            pulled = client.pull(name, store.layout.blobs.root, platform=platform_of(platform),
                                 have=store.layout.blobs.has,
                                 temp_path=store.layout.blobs.temp_path,
                                 commit=store.layout.blobs.adopt)
            image = _image(pulled.manifest.data, pulled.config, store, str(name))
            store.layout.write(image, [_store_name(name)],
                               extra={SOURCE_ANNOTATION: pulled.source.repo_path})
    return image


def read_metadata(ref: Reference, platform: str | None,
                  options: RegistryOptions | None = None) -> Image:
    """The image ``ref`` names, reading its manifest and config only (layers stay remote)."""
    options = options or RegistryOptions()
    name = name_of(ref)
    with options.client() as client:
        source, _, manifest = client.resolve(name, platform_of(platform))
        config = client.get_blob(source, manifest.config())
    return from_manifest(manifest.data, config, _Remote(str(name)))


def read_lazy(ref: Reference, platform: str | None, into: BlobDir,
              options: RegistryOptions | None = None) -> Image | None:
    """The image ``ref`` names with its layers left in the registry, or None when it is absent.

    Only the manifest and the config are read. Each layer is fetched into ``into`` (its
    digest checked) the first time something opens it, so a push back to the same registry
    never downloads it at all.
    """
    options = options or RegistryOptions()
    name = name_of(ref)
    with options.client() as client:
        if client.head_manifest(name) is None:
            return None
        source, _, manifest = client.resolve(name, platform_of(platform))
        config = client.get_blob(source, manifest.config())
    sizes = {blob.digest: blob.size for blob in manifest.layers()}
    return from_manifest(manifest.data, config,
                         RemoteBlobs(source.repo_path, tuple(sizes.items()), into, options))


@dataclass(frozen=True)
class RemoteBlobs:
    """Layer blobs that stay in a registry repository until something reads them.

    Reading fetches the blob into ``into``, checked against its digest, and serves that copy;
    the registry sink instead mounts them (or finds them already there) by digest.
    """

    repository: str
    """``HOST/REPO``: where the blobs are."""
    sizes: tuple[tuple[str, int], ...]
    """The blobs this source serves, with the sizes the manifest gives."""
    into: BlobDir
    options: RegistryOptions

    @property
    def host(self) -> str:
        """The registry host."""
        return self.repository.partition("/")[0]

    def open(self, digest: str) -> BinaryIO:
        """The blob's bytes, fetched first when they are not here yet."""
        return open(self.fetch(digest), "rb")

    def local_path(self, digest: str) -> Path | None:
        """The fetched blob's file (a sink that wants a file asks for the bytes here)."""
        return self.fetch(digest)

    def is_local(self, digest: str) -> bool:
        """Whether the blob was fetched already."""
        return self.into.has(digest)

    def fetch(self, digest: str) -> Path:
        """Download the blob into ``into`` unless it is there; its digest is checked."""
        if self.into.has(digest):
            return self.into.path(digest)
        size = dict(self.sizes).get(digest)
        if size is None:
            raise LookupError(f"blob {digest} is not one of {self.repository}'s layers")
        log.info("fetching %s from %s", digest, self.repository)
        with self.options.client() as client:
            client.fetch_blob(parse_name(self.repository),
                              Descriptor("application/octet-stream", digest, size),
                              self.into.root, temp_path=self.into.temp_path,
                              commit=self.into.adopt)
        return self.into.path(digest)


def remote_origins(image: Image, host: str) -> list[str]:
    """Repositories of ``host`` that hold layers of ``image`` not fetched here (mount sources)."""
    found = []
    for layer in image.layers:
        source = layer.source
        if (isinstance(source, RemoteBlobs) and source.host == host
                and not source.is_local(layer.digest)):
            found.append(source.repository.partition("/")[2])
    return list(dict.fromkeys(found))


def all_local(image: Image) -> bool:
    """Whether every layer's bytes are on this machine (nothing is left in a registry)."""
    return not any(isinstance(layer.source, RemoteBlobs)
                   and not layer.source.is_local(layer.digest) for layer in image.layers)


def write(image: Image, refs: Sequence[Reference], progress: Callable[[str], None] | None,
          options: RegistryOptions | None = None) -> str:
    """Push ``image`` to each repository ``refs`` name, tagging it with each of their tags."""
    options = options or RegistryOptions()
    groups: dict[str, list[ImageName]] = {}
    for ref in refs:
        name = name_of(ref)
        groups.setdefault(name.repo_path, []).append(name)
    manifest = Manifest(image.manifest_bytes, image.manifest_media_type, image.digest)
    store = open_store()
    with options.client() as client:
        for names in groups.values():
            dest, *others = names
            tags = [n.tag for n in others if n.tag]
            if all(_holds(client, n, image.digest) for n in names):
                log.info("%s already holds %s: nothing to push", dest.repo_path, image.digest)
                continue
            _prepare_ecr(dest, options)
            # The previous image's repository first: a registry that does not mount from the
            # first source offered opens an upload instead, and no other source is asked.
            mount_from = [*remote_origins(image, dest.host), *_origins(store, dest.host)]
            pushed = client.push(dest, manifest, _opener(image), tags=tags,
                                 mount_from=list(dict.fromkeys(mount_from)))
            # A copy would download every layer reused from a registry: the registry keeps it.
            if options.store_copy and all_local(image):
                # A built image lives in the local store too (run, rebase and later pushes
                # read it there; the blobs are hard links), remembering the repository for
                # mounts. Storing checks every layer's digest again, which ``push`` skips.
                store.layout.write(image, [_store_name(n) for n in names],
                                   extra={SOURCE_ANNOTATION: dest.repo_path})
            counts = {o: list(pushed.blobs.values()).count(o)
                      for o in ("pushed", "mounted", "exists")}
            log.info("pushed %s: %d blob(s) sent, %d mounted, %d already there",
                     ", ".join(pushed.references), counts["pushed"], counts["mounted"],
                     counts["exists"])
    return image.digest


def pinned(refs: Sequence[Reference], digest: str) -> list[str]:
    """``HOST/REPO@DIGEST`` for each distinct repository among ``refs``."""
    return list(dict.fromkeys(str(name_of(ref).pinned(digest)) for ref in refs))


def _prepare_ecr(dest: ImageName, options: RegistryOptions) -> None:
    """Create the repository first when ``dest`` is in Amazon ECR (ECR has no create-on-push)."""
    if ecr_region(dest.host) is None:
        return
    from lifecycle.ecr import EcrSettings, prepare_repository

    state = prepare_repository(dest.host, dest.repository, options.ecr or EcrSettings(),
                               ca_bundle=options.ca_bundle)
    if state is not None and state.created:
        log.info("created ECR repository %s", state.uri)


def _holds(client: RegistryClient, name: ImageName, digest: str) -> bool:
    found = client.head_manifest(name)
    return found is not None and found.digest == digest


def _from_store(store: Store, digest: str, platform: Platform) -> Image | None:
    """The image ``digest`` (manifest or index) names, when the store has all of it."""
    blobs = store.layout.blobs
    if not blobs.has(digest):
        return None
    try:
        top = Manifest.of(blobs.read(digest))
        if top.is_index:
            chosen = top.choose(platform)
            if chosen is None or not blobs.has(chosen.digest):
                return None
            top = Manifest.of(blobs.read(chosen.digest))
        config = top.config()
        wanted = [config, *top.layers()]
        if not all(blobs.has(blob.digest) for blob in wanted):
            return None
        return _image(top.data, blobs.read(config.digest), store, digest)
    except (OSError, ValueError, LookupError, LifecycleError) as error:
        # A damaged or partial stored copy is not an error: the registry has the image.
        log.debug("stored image %s is unusable (%s); pulling again", digest, error)
        return None


def _image(manifest: bytes, config: bytes, store: Store, where: str) -> Image:
    try:
        return from_manifest(manifest, config, store.layout.blobs)
    except BaseImageFetchError as error:
        raise BaseImageFetchError(f"failed to read {where}: {error.message}") from error


def _store_name(name: ImageName) -> str:
    return str(name)


def _origins(store: Store, host: str) -> list[str]:
    """Repositories of ``host`` that store entries were pulled from (mount candidates)."""
    origins = []
    for entry in store.layout.index().get("manifests") or []:
        source = (entry.get("annotations") or {}).get(SOURCE_ANNOTATION)
        if isinstance(source, str) and ref_name(entry):
            source_host, _, repository = source.partition("/")
            if source_host == host and repository:
                origins.append(repository)
    return list(dict.fromkeys(origins))


def _opener(image: Image) -> Callable[[str], BinaryIO]:
    small = {image.digest: image.manifest_bytes, image.config_digest: image.config_bytes}
    layers = {layer.digest: layer for layer in image.layers}

    def open_blob(digest: str) -> BinaryIO:
        if digest in small:
            return io.BytesIO(small[digest])
        return layers[digest].open()

    return open_blob


@dataclass(frozen=True)
class _Remote:
    """A blob source for layers that were not fetched (``inspect`` reads no layer)."""

    where: str

    def open(self, digest: str) -> BinaryIO:
        """Refuse: the layer is in the registry, not here."""
        raise LookupError(f"layer {digest} of {self.where} was not fetched")

    def local_path(self, digest: str) -> Path | None:
        """Never local."""
        return None
