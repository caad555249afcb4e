"""The registry protocol: manifests and blobs, pulled and pushed (OCI Distribution v1.1).

:class:`RegistryClient` holds one pooled transport and one authenticator per host for the
length of a command. Pulls go to mirrors first; blobs land in ``<dir>/sha256/<hex>`` only
once their size and digest are checked, so nothing partial is ever left where a reader looks.
Pushes skip what the registry has, mount what another repository of it has, and put the
manifest last, byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, urljoin, urlsplit

import requests

from lifecycle.errors import (
    BaseImageNotFound,
    LifecycleError,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachable,
)
from lifecycle.registry.auth import Authenticator, pull_scope, push_scope
from lifecycle.registry.config import RegistrySettings
from lifecycle.registry.credentials import find_credential
from lifecycle.registry.manifests import (
    ACCEPT,
    DIGEST_RE,
    Descriptor,
    Manifest,
    Platform,
    host_platform,
    sha256_digest,
)
from lifecycle.registry.names import ImageName
from lifecycle.registry.progress import Progress, Silent
from lifecycle.registry.transport import RETRY_STATUSES, Body, RetryPolicy, Transport

log = logging.getLogger("hybridless.registry")

BlobOpener = Callable[[str], IO[bytes]]
_READ = 1 << 20
_REDIRECTS = 5
_MAX_MANIFEST = 4 << 20
# Statuses with which a registry says it will not take chunked PATCH uploads.
_NO_CHUNKING = frozenset({400, 404, 405, 415, 416, 501})


@dataclass(frozen=True)
class Pulled:
    """What a pull fetched: where from, the index (if any), the manifest and config bytes."""

    source: ImageName
    index: Manifest | None
    manifest: Manifest
    config: bytes


@dataclass(frozen=True)
class Pushed:
    """What a push did: the manifest digest, the references pinned by it, and blob outcomes."""

    digest: str
    references: tuple[str, ...]
    blobs: Mapping[str, str]


class RegistryClient:
    """Talks to registries for one command; close it (or use ``with``) when done."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        parallel: int = 4,
        progress: Progress | None = None,
        chunk_size: int = 64 << 20,
    ) -> None:
        self.settings = settings or RegistrySettings()
        self.environ = dict(os.environ if environ is None else environ)
        self.transport = Transport(self.settings, retry=retry, pool_size=max(parallel * 2, 4))
        self.parallel = max(1, parallel)
        self.progress = progress or Silent()
        # Blobs up to one chunk go in one PUT; larger ones in PATCH chunks of this size.
        self.chunk_size = chunk_size
        self._auth: dict[str, Authenticator] = {}
        self._no_chunking: set[str] = set()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections and temporary files."""
        self.progress.close()
        self.transport.close()

    # -- manifests ------------------------------------------------------------------------

    def head_manifest(self, name: ImageName) -> Descriptor | None:
        """The descriptor ``name`` resolves to (one HEAD), or None when it does not exist."""
        path = f"/v2/{name.repository}/manifests/{quote(name.reference)}"
        with self._call(name.host, "HEAD", path, [pull_scope(name.repository)],
                        headers={"Accept": ACCEPT}) as response:
            if response.status_code == 404:
                return None
            self._check(response, f"look up {name}", (200,))
            digest = response.headers.get("Docker-Content-Digest", "")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            size = int(response.headers.get("Content-Length") or 0)
        if not DIGEST_RE.fullmatch(digest):
            # Without the digest header a HEAD says nothing useful: ask for the bytes.
            manifest = self.get_manifest(name)
            return manifest.descriptor
        if name.digest and digest != name.digest:
            raise _mismatch("manifest", name, name.digest, digest)
        return Descriptor(media_type, digest, size)

    def get_manifest(self, name: ImageName) -> Manifest:
        """The manifest or index ``name`` names, its digest checked."""
        path = f"/v2/{name.repository}/manifests/{quote(name.reference)}"
        with self._call(name.host, "GET", path, [pull_scope(name.repository)],
                        headers={"Accept": ACCEPT}, stream=True) as response:
            self._check(response, f"get manifest {name}", (200,))
            data = _read_limited(response, _MAX_MANIFEST, f"manifest {name}")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            served = response.headers.get("Docker-Content-Digest", "")
        manifest = Manifest.of(data, media_type if "json" in media_type else None)
        for expected in (name.digest, served):
            if expected and expected != manifest.digest:
                raise _mismatch("manifest", name, expected, manifest.digest)
        return manifest

    def resolve(
        self, name: ImageName, platform: Platform | None = None
    ) -> tuple[ImageName, Manifest | None, Manifest]:
        """The source that answered (a mirror or the host), the index if any, and the manifest.

        An index is resolved to the manifest of ``platform`` (default: this machine's).
        """
        errors: list[LifecycleError] = []
        for source in self.pull_sources(name):
            try:
                top = self.get_manifest(source)
            except (RegistryUnreachable, RegistryAuthError, RegistryError) as error:
                if source != name:
                    log.warning("mirror %s failed, trying the next source: %s",
                                source.repo_path, error.message)
                errors.append(error)
                continue
            if not top.is_index:
                return source, None, top
            wanted = platform or host_platform()
            chosen = top.choose(wanted)
            if chosen is None:
                have = sorted({str(p) for _, p in top.children() if p is not None})
                raise BaseImageNotFound(
                    f"failed to pull {name}: the index has no {wanted} image "
                    f"(it has {', '.join(have) or 'no platforms'})",
                    hint="pick one with --platform OS/ARCH[/VARIANT]",
                )
            return source, top, self.get_manifest(source.pinned(chosen.digest))
        raise errors[-1]

    def locate(self, name: ImageName) -> tuple[ImageName, Descriptor | None]:
        """The first source (mirror or host) that answers a ``HEAD`` for ``name``, and what."""
        errors: list[LifecycleError] = []
        for source in self.pull_sources(name):
            try:
                found = self.head_manifest(source)
            except (RegistryUnreachable, RegistryAuthError, RegistryError) as error:
                errors.append(error)
                continue
            if found is not None or source == name:
                return source, found
        raise errors[-1]

    def pull_sources(self, name: ImageName) -> list[ImageName]:
        """Where ``name`` may be pulled from: its host's mirrors in order, then the host."""
        mirrors = self.settings.for_host(name.host).mirrors
        return [name.in_repository(m.host, m.repository(name.repository)) for m in mirrors] + [
            name]

    def put_manifest(self, name: ImageName, manifest: Manifest) -> str:
        """Put ``manifest``'s exact bytes at ``name`` (tag or digest); return the digest."""
        path = f"/v2/{name.repository}/manifests/{quote(name.reference)}"
        with self._call(name.host, "PUT", path, [push_scope(name.repository)],
                        headers={"Content-Type": manifest.media_type},
                        body=lambda: manifest.data) as response:
            self._check(response, f"push manifest {name}", (200, 201, 202))
            served = response.headers.get("Docker-Content-Digest", "")
        if served and served != manifest.digest:
            raise _mismatch("manifest", name, manifest.digest, served)
        return manifest.digest

    # -- blobs ----------------------------------------------------------------------------

    def fetch_blob(
        self, name: ImageName, blob: Descriptor, blobs: Path,
        temp_path: Callable[[], Path] | None = None,
        commit: Callable[[Path, str], object] | None = None,
    ) -> Path:
        """Download ``blob`` into ``blobs/sha256/<hex>``, checked; resume a broken stream.

        ``temp_path`` names the file the bytes go to until they are checked, and
        ``commit(temp, digest)`` makes the checked, synced file the blob (the local store's,
        so that its crash recovery and its ledger know them); by default a hidden file
        beside the blob, renamed.
        """
        target = blob_path(blobs, blob.digest)
        if target.is_file() and target.stat().st_size == blob.size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = temp_path() if temp_path else target.with_name(f".{target.name}.partial")
        self.progress.start(blob.digest, blob.size, "pulling")
        try:
            self._download(name, blob, partial)
            if commit is not None:
                commit(partial, blob.digest)
            else:
                os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self.progress.finish(blob.digest, "pulled")
        return target

    def get_blob(self, name: ImageName, blob: Descriptor, limit: int = _MAX_MANIFEST) -> bytes:
        """A small blob (a config) in memory, its size and digest checked."""
        with self._open_blob(name, blob.digest, {}) as response:
            self._check(response, f"get blob {blob.digest} of {name}", (200,))
            data = _read_limited(response, limit, f"blob {blob.digest} of {name}")
        if len(data) != blob.size or sha256_digest(data) != blob.digest:
            raise _mismatch("blob", name, blob.digest, sha256_digest(data))
        return data

    def _download(self, name: ImageName, blob: Descriptor, partial: Path) -> None:
        hasher = hashlib.sha256()
        received = 0
        attempt = 0
        with partial.open("wb") as sink:
            while True:
                attempt += 1
                headers = {"Range": f"bytes={received}-"} if received else {}
                response = self._open_blob(name, blob.digest, headers)
                with response:
                    if received and response.status_code == 200:
                        # The server ignored Range: start over.
                        sink.seek(0)
                        sink.truncate()
                        hasher, received = hashlib.sha256(), 0
                    elif response.status_code not in (200, 206):
                        self._check(response, f"get blob {blob.digest} of {name}", (200,))
                    try:
                        for chunk in response.iter_content(_READ):
                            received += len(chunk)
                            if received > blob.size:
                                raise _mismatch("blob", name, f"{blob.size} bytes",
                                                f"more than {blob.size} bytes")
                            hasher.update(chunk)
                            sink.write(chunk)
                            self.progress.advance(blob.digest, len(chunk))
                    except (requests.exceptions.ConnectionError,
                            requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.Timeout) as error:
                        if attempt >= self.transport.retry.attempts:
                            raise RegistryUnreachable(
                                f"failed to download blob {blob.digest} of {name}: the "
                                f"connection broke {attempt} times, at {received} of "
                                f"{blob.size} bytes",
                            ) from error
                        log.warning("download of %s broke at %d of %d bytes; resuming "
                                    "(attempt %d of %d)", blob.digest, received, blob.size,
                                    attempt + 1, self.transport.retry.attempts)
                        continue
                if received < blob.size and attempt < self.transport.retry.attempts:
                    log.warning("download of %s ended at %d of %d bytes; resuming",
                                blob.digest, received, blob.size)
                    continue
                break
            sink.flush()
            os.fsync(sink.fileno())
        actual = "sha256:" + hasher.hexdigest()
        if received != blob.size or actual != blob.digest:
            got = actual if received == blob.size else f"{received} bytes"
            want = blob.digest if received == blob.size else f"{blob.size} bytes"
            raise _mismatch("blob", name, want, got)

    def _open_blob(
        self, name: ImageName, digest: str, headers: Mapping[str, str]
    ) -> requests.Response:
        """GET a blob, following redirects; another host never sees our Authorization."""
        url: str = f"/v2/{name.repository}/blobs/{digest}"
        for _hop in range(_REDIRECTS):
            response = self._call(name.host, "GET", url, [pull_scope(name.repository)],
                                  headers=headers, stream=True)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            response.close()
            base = url if "://" in url else self.transport.endpoint(name.host).url(url)
            url = urljoin(base, location)
        raise RegistryError(f"failed to get blob {digest} of {name}: too many redirects")

    def blob_exists(self, name: ImageName, digest: str) -> bool:
        """Whether the repository already has ``digest`` (one HEAD)."""
        with self._call(name.host, "HEAD", f"/v2/{name.repository}/blobs/{digest}",
                        [push_scope(name.repository)]) as response:
            if response.status_code == 404:
                return False
            self._check(response, f"look up blob {digest} in {name.repo_path}", (200,))
            return True

    def push_blob(
        self, name: ImageName, blob: Descriptor, opener: BlobOpener,
        mount_from: Sequence[str] = (),
    ) -> str:
        """Make ``blob`` exist in ``name``'s repository; say how: exists, mounted, pushed."""
        if self.blob_exists(name, blob.digest):
            self.progress.finish(blob.digest, "exists")
            return "exists"
        location: str | None = None
        for source in mount_from:
            if source == name.repository:
                continue
            location = self._mount(name, blob.digest, source)
            if location is None:
                self.progress.finish(blob.digest, "mounted")
                return "mounted"
            # The registry did not mount but opened an upload: use it, ask no other source.
            break
        self.progress.start(blob.digest, blob.size, "pushing")
        policy = self.transport.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                self._upload(name, blob, opener, location)
                break
            except _Retryable as error:
                if attempt >= policy.attempts:
                    raise error.final from None
                delay = policy.delay(attempt)
                log.warning("retrying upload of %s in %.1fs (attempt %d of %d): %s",
                            blob.digest, delay, attempt + 1, policy.attempts, error.why)
                location = None
                time.sleep(delay)
        self.progress.finish(blob.digest, "pushed")
        return "pushed"

    def _mount(self, name: ImageName, digest: str, source: str) -> str | None:
        """Ask to mount from ``source``; None when mounted, else the upload URL offered."""
        path = f"/v2/{name.repository}/blobs/uploads/?mount={digest}&from={quote(source)}"
        scopes = [push_scope(name.repository), pull_scope(source)]
        with self._call(name.host, "POST", path, scopes) as response:
            if response.status_code == 201:
                return None
            self._check(response, f"start an upload to {name.repo_path}", (202,))
            return self._location(name, response)

    def _upload(
        self, name: ImageName, blob: Descriptor, opener: BlobOpener, location: str | None
    ) -> None:
        """One whole upload attempt; connection and 5xx failures raise :class:`_Retryable`."""
        try:
            location = location or self._start_upload(name)
            if blob.size > self.chunk_size and name.host not in self._no_chunking:
                refused, location = self._patch_chunks(name, blob, opener, location)
                if refused:
                    self._no_chunking.add(name.host)
                    log.warning("registry %s refused a chunked upload; sending blobs whole",
                                name.host)
                    location = self._start_upload(name)
                    self._finish(name, blob, location, opener)
                else:
                    self._finish(name, blob, location, None)
            else:
                self._finish(name, blob, location, opener)
        except RegistryUnreachable as error:
            raise _Retryable(error, error.message) from error
        except _StatusError as error:
            raise _Retryable(error.final, error.final.message) from error

    def _start_upload(self, name: ImageName) -> str:
        # Starting an upload only creates a session; repeating it is harmless, hence retried.
        with self._call(name.host, "POST", f"/v2/{name.repository}/blobs/uploads/",
                        [push_scope(name.repository)]) as response:
            self._check_upload(response, f"start an upload to {name.repo_path}", (202,))
            return self._location(name, response)

    def _patch_chunks(
        self, name: ImageName, blob: Descriptor, opener: BlobOpener, location: str
    ) -> tuple[bool, str]:
        """Send the blob in ``chunk_size`` PATCHes, each streamed from the file."""
        offset = 0
        while offset < blob.size:
            count = min(self.chunk_size, blob.size - offset)
            end = offset + count - 1

            def body(start: int = offset, length: int = count) -> _Part:
                return _Part(opener(blob.digest), blob.digest, self.progress, start, length)

            with self._call(
                name.host, "PATCH", location, [push_scope(name.repository)],
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{offset}-{end}", "Content-Length": str(count)},
                body=body, idempotent=False,
            ) as response:
                if offset == 0 and response.status_code in _NO_CHUNKING:
                    return True, location
                self._check_upload(response, f"upload {blob.digest}", (202, 204))
                location = self._location(name, response)
            offset = end + 1
        return False, location

    def _finish(
        self, name: ImageName, blob: Descriptor, location: str, opener: BlobOpener | None
    ) -> None:
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={quote(blob.digest)}"
        headers = {"Content-Type": "application/octet-stream"}
        body: Callable[[], Body] | None = None
        if opener is not None:
            headers["Content-Length"] = str(blob.size)
            body = lambda: _Part(opener(blob.digest), blob.digest, self.progress)  # noqa: E731
        else:
            headers["Content-Length"] = "0"
        with self._call(name.host, "PUT", url, [push_scope(name.repository)], headers=headers,
                        body=body, idempotent=False) as response:
            if response.status_code == 400 and b"DIGEST_INVALID" in response.content:
                raise RegistryError(
                    f"failed to push blob {blob.digest} to {name.repo_path}: the registry "
                    "computed another digest from the bytes we sent (the local blob is corrupt)",
                    hint="run 'hybridless-lifecycle verify' on the local store",
                )
            self._check_upload(response, f"push blob {blob.digest}", (201, 204))

    # -- whole images ---------------------------------------------------------------------

    def pull(
        self, name: ImageName, blobs: Path, *, platform: Platform | None = None,
        have: Callable[[str], bool] | None = None, temp_path: Callable[[], Path] | None = None,
        commit: Callable[[Path, str], object] | None = None,
    ) -> Pulled:
        """Fetch ``name``'s manifest, config and layers into ``blobs/sha256/``, in parallel.

        Blobs for which ``have(digest)`` is true are not fetched; ``temp_path`` and
        ``commit`` are as for :meth:`fetch_blob`.
        """
        source, index, manifest = self.resolve(name, platform)
        for document in (index, manifest):
            if document is not None:
                write_blob(blobs, document.digest, document.data)
        config_blob = manifest.config()
        wanted = [config_blob, *manifest.layers()]
        todo = [blob for blob in wanted if not (have and have(blob.digest))]
        self._parallel(lambda blob: self.fetch_blob(source, blob, blobs, temp_path, commit),
                       todo)
        # Fetched above, or already in ``blobs`` (what ``have`` answers for).
        config = blob_path(blobs, config_blob.digest).read_bytes()
        return Pulled(source, index, manifest, config)

    def push(
        self, dest: ImageName, manifest: Manifest, opener: BlobOpener, *,
        tags: Iterable[str] = (), mount_from: Sequence[str] = (),
    ) -> Pushed:
        """Push ``manifest`` (an image or an index) with its blobs; tag it ``dest`` and ``tags``.

        ``opener(digest)`` opens a local blob or child manifest; ``mount_from`` names other
        repositories of ``dest``'s registry that may already hold the blobs.
        """
        outcomes: dict[str, str] = {}
        self._push_tree(dest, manifest, opener, mount_from, outcomes)
        names = [dest] if dest.digest is None else []
        names += [dest.tagged(tag) for tag in tags]
        if not names:
            names = [dest.pinned(manifest.digest)]
        for target in names:
            self.put_manifest(target, manifest)
        pinned = dict.fromkeys(str(target.pinned(manifest.digest)) for target in names)
        return Pushed(manifest.digest, tuple(pinned), outcomes)

    def _push_tree(
        self, dest: ImageName, manifest: Manifest, opener: BlobOpener,
        mount_from: Sequence[str], outcomes: dict[str, str],
    ) -> None:
        if manifest.is_index:
            for child, _platform in manifest.children():
                with opener(child.digest) as stream:
                    data = stream.read()
                if sha256_digest(data) != child.digest:
                    raise RegistryError(
                        f"failed to push {dest}: the local manifest {child.digest} is corrupt")
                child_manifest = Manifest.of(data, child.media_type or None)
                self._push_tree(dest, child_manifest, opener, mount_from, outcomes)
                self.put_manifest(dest.pinned(child.digest), child_manifest)
            return
        blobs = [*manifest.layers(), manifest.config()]
        unique = list({blob.digest: blob for blob in blobs}.values())

        def one(blob: Descriptor) -> None:
            outcomes[blob.digest] = self.push_blob(dest, blob, opener, mount_from)

        self._parallel(one, unique)

    def _parallel(self, work: Callable[[Descriptor], object], items: Sequence[Descriptor]) -> None:
        """Run ``work`` on every item, at most ``parallel`` at once; the first error wins."""
        if len(items) <= 1 or self.parallel == 1:
            for item in items:
                work(item)
            return
        with ThreadPoolExecutor(max_workers=self.parallel,
                                thread_name_prefix="registry") as pool:
            futures = [pool.submit(work, item) for item in items]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    # -- plumbing -------------------------------------------------------------------------

    def authenticator(self, host: str) -> Authenticator:
        """The authenticator of ``host`` (one per host per client)."""
        found = self._auth.get(host)
        if found is None:
            found = Authenticator(host, self.transport, lambda: find_credential(host, self.environ))
            self._auth = {**self._auth, host: found}
        return found

    def _call(
        self, host: str, method: str, path_or_url: str, scopes: Sequence[str], *,
        headers: Mapping[str, str] | None = None, body: Callable[[], Body] | None = None,
        stream: bool = False, idempotent: bool = True,
    ) -> requests.Response:
        endpoint = self.transport.endpoint(host)
        url = path_or_url if "://" in path_or_url else endpoint.url(path_or_url)
        # Credentials go only to the registry itself, never to where it redirects us.
        ours = urlsplit(url).netloc == urlsplit(endpoint.base).netloc
        verify = endpoint.verify if ours else self.transport.verify_for(host)
        sent = dict(headers or {})
        auth = self.authenticator(host)
        cached = auth.header(scopes) if ours else None
        if cached:
            sent["Authorization"] = cached
        what = f"{method} {urlsplit(url).path}"
        response = self.transport.send(method, url, verify=verify, headers=sent, body=body,
                                       stream=stream, idempotent=idempotent, what=what)
        if response.status_code != 401 or not ours:
            return response
        response.close()
        sent["Authorization"] = auth.answer(response, scopes)
        response = self.transport.send(method, url, verify=verify, headers=sent, body=body,
                                       stream=stream, idempotent=idempotent, what=what)
        if response.status_code == 401:
            response.close()
            raise auth.rejected(scopes)
        return response

    def _location(self, name: ImageName, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"failed to upload to {name.repo_path}: the registry gave no upload Location")
        return urljoin(self.transport.endpoint(name.host).base + "/", location)

    def _check(self, response: requests.Response, what: str, ok: Iterable[int]) -> None:
        if response.status_code in tuple(ok):
            return
        raise registry_error(response, what)

    def _check_upload(self, response: requests.Response, what: str, ok: Iterable[int]) -> None:
        """Like ``_check``, but a status worth retrying raises :class:`_StatusError`."""
        if response.status_code in tuple(ok):
            return
        error = registry_error(response, what)
        if response.status_code in RETRY_STATUSES and isinstance(error, RegistryError):
            raise _StatusError(error)
        raise error


class _Part:
    """``length`` bytes of a blob file from ``start`` (all of it by default), streamed.

    It reports bytes read to the progress display and closes the file at its end, so a
    request body never holds more than one read in memory.
    """

    def __init__(self, stream: IO[bytes], digest: str, progress: Progress, start: int = 0,
                 length: int | None = None) -> None:
        if start:
            stream.seek(start)
        self.stream = stream
        self.digest = digest
        self.progress = progress
        self.left = length if length is not None else _remaining(stream)

    def read(self, size: int = -1) -> bytes:
        wanted = self.left if size is None or size < 0 else min(size, self.left)
        data = self.stream.read(wanted) if wanted > 0 else b""
        self.left -= len(data)
        if data:
            self.progress.advance(self.digest, len(data))
        else:
            self.stream.close()
        return data

    def __len__(self) -> int:
        return self.left


def _remaining(stream: IO[bytes]) -> int:
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return end - position


class _StatusError(Exception):
    def __init__(self, final: RegistryError) -> None:
        super().__init__(final.message)
        self.final = final


class _Retryable(Exception):
    def __init__(self, final: LifecycleError, why: str) -> None:
        super().__init__(why)
        self.final = final
        self.why = why


def registry_error(response: requests.Response, what: str) -> LifecycleError:
    """The error for an unexpected answer, quoting the registry's ``errors[].code``."""
    status = response.status_code
    detail = ""
    try:
        document = response.json() if response.request.method != "HEAD" else {}
        errors = document.get("errors") if isinstance(document, dict) else None
        if isinstance(errors, list):
            detail = "; ".join(
                f"{e.get('code', '?')}: {e.get('message', '')}".strip()
                for e in errors if isinstance(e, dict))
    except ValueError:
        pass
    finally:
        response.close()
    said = f"HTTP {status}" + (f" {detail}" if detail else "")
    if status in (401, 403):
        return RegistryAuthError(
            f"failed to {what}: the registry denied access ({said})",
            hint="check that the account may use this repository")
    return RegistryError(f"failed to {what}: the registry answered {said}")


def blob_path(blobs: Path, digest: str) -> Path:
    """``blobs/sha256/<hex>`` for a checked digest."""
    if not DIGEST_RE.fullmatch(digest):
        raise RegistryError(f"failed to store blob: {digest!r} is not a sha256 digest")
    algorithm, _, hexdigest = digest.partition(":")
    return blobs / algorithm / hexdigest


def write_blob(blobs: Path, digest: str, data: bytes) -> Path:
    """Write ``data`` (already checked against ``digest``) to ``blobs`` atomically."""
    target = blob_path(blobs, digest)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


def _read_limited(response: requests.Response, limit: int, what: str) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_content(_READ):
            data += chunk
            if len(data) > limit:
                raise RegistryError(f"failed to read {what}: larger than {limit} bytes")
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        raise RegistryUnreachable(f"failed to read {what}: the connection broke") from error
    return bytes(data)


def _mismatch(kind: str, name: ImageName, expected: str, actual: str) -> RegistryError:
    return RegistryError(
        f"failed to verify {kind} of {name}: expected {expected}, got {actual}; refused",
        hint="the registry or something between us and it altered the content",
    )
