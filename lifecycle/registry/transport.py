"""HTTP for registries: pooled sessions, TLS trust, proxies, and bounded retries.

TLS verifies against the system bundle (``$SSL_CERT_FILE``, else Debian's
``/etc/ssl/certs/ca-certificates.crt``) plus the host's ``ca-file`` and ``--ca-bundle``; never
against certifi's bundle alone, which would refuse every private or intercepting CA.
Loopback hosts are spoken to in plain HTTP unless they answer only TLS, and then verified;
``insecure`` hosts are tried in unverified TLS first, then plain HTTP, as docker does.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3

from lifecycle.errors import RegistryUnreachable
from lifecycle.registry.config import RegistrySettings
from lifecycle.registry.names import api_host, is_loopback

log = logging.getLogger("hybridless.registry")

_DEBIAN_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# bytes, a file-like object (streamed) or None; requests takes each.
Body = Any


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long an idempotent step is retried."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    # Seconds one step may spend waiting between attempts, Retry-After included.
    budget: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the ``attempt``-th retry (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Endpoint:
    """Where one registry host answers: ``base`` is ``scheme://address``."""

    host: str
    base: str
    verify: bool | str

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``) on this endpoint."""
        return self.base + path


class Transport:
    """One pooled HTTP session shared by every host of one command."""

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        retry: RetryPolicy | None = None,
        pool_size: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = requests.Session()
        # trust_env would read ~/.netrc (credentials we did not choose) and REQUESTS_CA_BUNDLE;
        # proxies are taken from the environment by hand in proxies_for instead.
        self.session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._endpoints: dict[str, Endpoint] = {}
        self._bundles: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self._bundle_lock = threading.Lock()

    def close(self) -> None:
        """Close pooled connections and remove combined CA bundles."""
        self.session.close()
        for path in self._bundles.values():
            if path != system_bundle():
                Path(path).unlink(missing_ok=True)

    def endpoint(self, host: str) -> Endpoint:
        """How to reach ``host``; the first call for a loopback or insecure host probes TLS."""
        with self._lock:
            found = self._endpoints.get(host)
            if found is None:
                found = self._probe(host)
                self._endpoints[host] = found
            return found

    def _probe(self, host: str) -> Endpoint:
        settings = self.settings.for_host(host)
        address = settings.endpoint or api_host(host)
        verify: bool | str = self.verify_for(host)
        if settings.ca_file is not None or not self.settings.plain_http_first(host):
            return Endpoint(host, f"https://{address}", verify)
        if settings.insecure:
            # The user chose not to verify this host: urllib3's warning on each request
            # would only bury the output.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            verify = False
        plain = Endpoint(host, f"http://{address}", False)
        tls = Endpoint(host, f"https://{address}", verify)
        if not settings.insecure and self._speaks_plain_http(plain):
            # Loopback: plain HTTP first (one cheap request), as most local registries are.
            return plain
        try:
            self.session.get(
                tls.url("/v2/"), verify=verify, timeout=min(self.timeout, 10.0),
                proxies=self.proxies_for(tls.base), allow_redirects=False,
            ).close()
        except requests.exceptions.SSLError as error:
            if verify is not False and _certificate_error(error):
                raise RegistryUnreachable(
                    f"failed to reach registry {host}: {describe(error)}",
                    hint=f"trust its CA with ca-file in [\"{host}\"] of registries.toml or "
                    "--ca-bundle; or --insecure-registry to skip verification",
                ) from error
            return plain
        except requests.exceptions.RequestException:
            return plain
        return tls

    def _speaks_plain_http(self, plain: Endpoint) -> bool:
        """Whether ``plain`` answers HTTP as HTTP (a TLS port answers 400 or hangs up)."""
        try:
            with self.session.get(plain.url("/v2/"), timeout=min(self.timeout, 10.0),
                                  allow_redirects=False) as response:
                text = response.text[:300] if response.status_code == 400 else ""
        except requests.exceptions.RequestException:
            return False
        return "HTTPS" not in text.upper()

    def verify_for(self, host: str) -> str:
        """The CA bundle file that verifies ``host``: the system's plus configured extras."""
        extras = [str(p) for p in (self.settings.for_host(host).ca_file, self.settings.ca_bundle)
                  if p is not None]
        key = tuple(extras)
        with self._bundle_lock:
            found = self._bundles.get(key)
            if found is not None:
                return found
            base = system_bundle()
            if not extras:
                self._bundles[key] = base
                return base
            # requests takes one CA file: the system bundle and the extras, concatenated.
            parts = [Path(base).read_bytes()] if os.path.isfile(base) else []
            parts += [Path(extra).read_bytes() for extra in extras]
            handle, combined = tempfile.mkstemp(prefix="hybridless-ca-", suffix=".pem")
            with os.fdopen(handle, "wb") as sink:
                sink.write(b"\n".join(parts))
            self._bundles[key] = combined
            return combined

    def proxies_for(self, url: str) -> dict[str, str]:
        """``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches; loopback goes direct."""
        host = urlsplit(url).netloc
        if is_loopback(host):
            return {}
        return dict(requests.utils.get_environ_proxies(url, no_proxy=None))

    def send(
        self,
        method: str,
        url: str,
        *,
        verify: bool | str,
        headers: Mapping[str, str] | None = None,
        body: Callable[[], Body] | None = None,
        stream: bool = False,
        idempotent: bool = True,
        what: str = "",
    ) -> requests.Response:
        """Send one request; retry an idempotent one on connection errors, 429 and 5xx."""
        policy = self.retry
        waited = 0.0
        attempt = 0
        label = what or f"{method} {urlsplit(url).path}"
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method, url, headers=dict(headers or {}), data=body() if body else None,
                    stream=stream, verify=verify, timeout=self.timeout,
                    proxies=self.proxies_for(url), allow_redirects=False,
                )
            except requests.exceptions.SSLError as error:
                raise RegistryUnreachable(
                    f"failed to reach registry {urlsplit(url).netloc} ({label}): "
                    f"{describe(error)}",
                    hint="trust its CA with ca-file in registries.toml or --ca-bundle",
                ) from error
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                delay = policy.delay(attempt)
                if not idempotent or attempt >= policy.attempts or waited + delay > policy.budget:
                    raise RegistryUnreachable(
                        f"failed to reach registry {urlsplit(url).netloc} ({label}): "
                        f"{describe(error)}",
                        hint="check the host name, the network and HTTPS_PROXY/NO_PROXY",
                    ) from error
                log.warning("retrying %s in %.1fs (attempt %d of %d): %s",
                            label, delay, attempt + 1, policy.attempts, describe(error))
            except requests.exceptions.RequestException as error:
                # Anything else requests refuses (a malformed URL or header) is no retry case.
                raise RegistryUnreachable(
                    f"failed to reach registry {urlsplit(url).netloc} ({label}): "
                    f"{describe(error)}",
                ) from error
            else:
                if response.status_code not in RETRY_STATUSES or not idempotent:
                    return response
                delay = retry_after(response) or policy.delay(attempt)
                if attempt >= policy.attempts or waited + delay > policy.budget:
                    return response
                response.close()
                log.warning("retrying %s in %.1fs (attempt %d of %d): HTTP %d",
                            label, delay, attempt + 1, policy.attempts, response.status_code)
            time.sleep(delay)
            waited += delay


def system_bundle() -> str:
    """``$SSL_CERT_FILE``, else the Debian bundle, else OpenSSL's default file."""
    configured = os.environ.get("SSL_CERT_FILE")
    if configured and os.path.isfile(configured):
        return configured
    if os.path.isfile(_DEBIAN_BUNDLE):
        return _DEBIAN_BUNDLE
    return ssl.get_default_verify_paths().cafile or _DEBIAN_BUNDLE


def retry_after(response: requests.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), else None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _certificate_error(error: BaseException) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate verify failed" in str(error)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CERT = re.compile(r"certificate verify failed: ([^'\")(]+)")


def describe(error: BaseException) -> str:
    """The cause of a connection error in a few words (requests' text nests several)."""
    text = str(error)
    cert = _CERT.search(text)
    if cert:
        return f"TLS certificate verify failed: {cert.group(1).strip()}"
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip()
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed before an answer came"
    return f"{type(error).__name__}: {text[:200]}"
