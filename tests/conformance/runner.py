"""Load the shim conformance cases, start shims, and check a shim's answers against them.

Shared by every shim's tests; README.md in this directory documents the case format.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CASES_DIR = Path(__file__).resolve().parent / "cases"
HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"
CASE_HEADER = "x-conformance-case"
FORMATS = ("apigw-v1", "apigw-v2", "alb", "alb-multi")
# At most this many cases may lack an AWS source (issue: re-derive the corpus from AWS).
MAX_UNVERIFIED = 10
# Expectations on these event fields are where the shims once differed from AWS: a case that
# checks one of them, sends an encoded or query-bearing path, sets STAGE or relies on the
# HTTP API shortcut must name its AWS source.
_MUST_BE_SOURCED = re.compile(r"(?i)stage|path|query")

_CASE_KEYS = {
    "name",
    "description",
    "source",
    "unverified",
    "format",
    "env",
    "request",
    "behavior",
    "stuck_first",
    "expect_event",
    "expect_response",
}
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
_ABSENT = object()


@dataclass(frozen=True)
class Case:
    """One conformance case, as read from cases/<name>.json."""

    name: str
    format: str
    description: str
    source: str | None
    unverified: str | None
    env: Mapping[str, str]
    request: Mapping[str, Any]
    behavior: Mapping[str, Any] | None
    expect_event: Mapping[str, Any] | None
    expect_response: Mapping[str, Any] = field(default_factory=dict)
    stuck_first: Mapping[str, Any] | None = None


def load_cases(cases_dir: Path = CASES_DIR) -> list[Case]:
    """Read and validate every case file in cases_dir, sorted by name."""
    cases = [_parse_case(path) for path in sorted(cases_dir.glob("*.json"))]
    if not cases:
        raise AssertionError(f"no conformance cases found in {cases_dir}")
    unverified = [c.name for c in cases if c.unverified is not None]
    if len(unverified) > MAX_UNVERIFIED:
        raise AssertionError(
            f"{len(unverified)} unverified cases (at most {MAX_UNVERIFIED}): {unverified}; "
            "find an AWS source for some of them"
        )
    return cases


def _check_provenance(name: str, raw: Mapping[str, Any]) -> None:
    """Exactly one of 'source' (an AWS source) or 'unverified' (why none exists), non-empty."""
    source, unverified = raw.get("source"), raw.get("unverified")
    given = [key for key, value in (("source", source), ("unverified", unverified)) if value]
    if len(given) != 1 or not all(isinstance(raw[key], str) for key in given):
        raise AssertionError(
            f"{name}: give exactly one non-empty string, 'source' (the AWS docs page, AWS "
            "sample event or AWS-validated recording it follows) or 'unverified' (why none exists)"
        )
    if unverified is None:
        return
    request = raw.get("request", {})
    behavior = raw.get("behavior") or {}
    result = behavior.get("return") if isinstance(behavior, dict) else None
    shortcut = (
        raw.get("format") == "apigw-v2"
        and "return" in behavior
        and not (isinstance(result, dict) and "statusCode" in result)
    )
    touches = (
        shortcut
        or any(ch in str(request.get("path", "")) for ch in "%+?")
        or "STAGE" in raw.get("env", {})
        or any(_MUST_BE_SOURCED.search(key) for key in raw.get("expect_event") or {})
    )
    if touches:
        raise AssertionError(
            f"{name}: a case about query decoding, path encoding, the stage or the HTTP API "
            "shortcut cannot be unverified; give its AWS 'source'"
        )


def _parse_case(path: Path) -> Case:
    raw = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise AssertionError(f"{path.name}: unknown keys {sorted(unknown)}")
    if raw.get("name") != path.stem:
        raise AssertionError(f"{path.name}: 'name' must equal the file stem {path.stem!r}")
    if raw.get("format") not in FORMATS:
        raise AssertionError(f"{path.name}: 'format' must be one of {FORMATS}")
    request = raw.get("request")
    if not isinstance(request, dict) or "method" not in request or "path" not in request:
        raise AssertionError(f"{path.name}: 'request' needs 'method' and 'path'")
    if "body" in request and "body_base64" in request:
        raise AssertionError(f"{path.name}: give 'body' or 'body_base64', not both")
    _check_provenance(path.name, raw)
    env = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in raw.get("env", {}).items()
    }
    return Case(
        name=raw["name"],
        format=raw["format"],
        description=raw.get("description", ""),
        source=raw.get("source"),
        unverified=raw.get("unverified"),
        env=env,
        request=request,
        behavior=raw.get("behavior"),
        expect_event=raw.get("expect_event"),
        expect_response=raw.get("expect_response", {}),
        stuck_first=raw.get("stuck_first"),
    )


def case_env(case: Case) -> dict[str, str]:
    """Return the environment a shim needs to serve this case (on top of os.environ)."""
    return {
        "LAMBDA_TASK_ROOT": str(HANDLERS_DIR),
        "ENTRYPOINT": "handler",
        "ENTRYPOINT_FUNC": "handler",
        "HYBRIDLESS_EVENT_TYPE": "httpd",
        "HYBRIDLESS_HTTP_FORMAT": case.format,
        "CONFORMANCE_CASES_DIR": str(CASES_DIR),
        **case.env,
    }


def _occupy(base_url: str, case: Case) -> list[threading.Thread]:
    """Start the case's ``stuck_first`` requests in the background, then wait ``wait_ms``."""
    spec = case.stuck_first or {}
    parts = urlsplit(base_url)

    def one() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            conn.request("GET", spec.get("path", "/stuck"), headers={CASE_HEADER: case.name})
            conn.getresponse().read()
        except OSError:
            pass  # only the calls they start matter, not their answers
        finally:
            conn.close()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(int(spec["count"]))]
    for thread in threads:
        thread.start()
    time.sleep(float(spec.get("wait_ms", 500)) / 1000)
    return threads


def check_case(base_url: str, case: Case) -> None:
    """Send the case's request to base_url and raise AssertionError listing every mismatch."""
    threads = _occupy(base_url, case) if case.stuck_first else []
    status, reason, headers, body = _send(base_url, case)
    for thread in threads:
        thread.join(timeout=30)
    problems: list[str] = []
    expect = case.expect_response or {}
    want_status = expect.get("status", 200)
    if status != want_status:
        problems.append(f"status: expected {want_status}, got {status}")
    if "reason" in expect and reason != expect["reason"]:
        problems.append(f"reason: expected {expect['reason']!r}, got {reason!r}")
    problems += _check_headers(expect, headers)
    if "body" in expect and body != expect["body"].encode("utf-8"):
        problems.append(f"body: expected {expect['body']!r}, got {_show(body)}")
    if "body_base64" in expect and body != base64.b64decode(expect["body_base64"]):
        problems.append(f"body: expected base64 {expect['body_base64']}, got {_show(body)}")
    for label, paths in (("event", case.expect_event), ("json", expect.get("json"))):
        if not paths:
            continue
        try:
            document = json.loads(body)
        except ValueError:
            problems.append(f"{label}: body is not JSON: {_show(body)}")
            continue
        problems += [f"{label}: {p}" for p in match_paths(document, paths)]
    if problems:
        detail = "\n  ".join(problems)
        raise AssertionError(
            f"case {case.name} ({case.format}) failed:\n  {detail}\n"
            f"response: {status} {reason} {headers}\n  body: {_show(body)}"
        )


def _send(base_url: str, case: Case) -> tuple[int, str, list[tuple[str, str]], bytes]:
    parts = urlsplit(base_url)
    request = case.request
    body: bytes | None = None
    if "body" in request:
        body = request["body"].encode("utf-8")
    elif "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        # putrequest/putheader send exactly the case's headers, repeats and case included.
        conn.putrequest(
            request["method"], request["path"], skip_host=True, skip_accept_encoding=True
        )
        pairs = [(str(k), str(v)) for k, v in request.get("headers", [])]
        if not any(k.lower() == "host" for k, _ in pairs):
            conn.putheader("Host", f"{parts.hostname}:{parts.port}")
        for name, value in pairs:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.putheader(CASE_HEADER, case.name)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.reason, response.getheaders(), response.read()
    finally:
        conn.close()


def _check_headers(expect: Mapping[str, Any], headers: list[tuple[str, str]]) -> list[str]:
    problems: list[str] = []
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    for name, want in expect.get("headers", {}).items():
        got = by_name.get(name.lower(), [])
        if isinstance(want, dict) and want.get("$absent"):
            if got:
                problems.append(f"header {name}: expected absent, got {got}")
        elif len(got) != 1:
            problems.append(f"header {name}: expected exactly one value, got {got}")
        else:
            problems += [f"header {name}: {p}" for p in _match(got[0], want, "")]
    for name, want_list in expect.get("multi_headers", {}).items():
        got = by_name.get(name.lower(), [])
        if got != want_list:
            problems.append(f"header {name}: expected values {want_list}, got {got}")
    return problems


def match_paths(document: Any, expectations: Mapping[str, Any]) -> list[str]:
    """Compare each path → expected value (or matcher) against document; return mismatches."""
    problems: list[str] = []
    for path, want in expectations.items():
        problems += _match(_lookup(document, path), want, path, document)
    return problems


def _match(got: Any, want: Any, path: str, root: Any = None) -> list[str]:
    where = path or "<document>"
    if isinstance(want, dict) and len(want) == 1 and next(iter(want)).startswith("$"):
        op, arg = next(iter(want.items()))
        if op == "$absent":
            ok = (got is _ABSENT) == bool(arg)
            return [] if ok else [f"{where}: expected absent={arg}, got {_show(got)}"]
        if got is _ABSENT:
            return [f"{where}: missing (expected {want})"]
        if op == "$type":
            ok = isinstance(got, _JSON_TYPES[arg]) and not (
                arg in ("integer", "number") and isinstance(got, bool)
            )
        elif op == "$regex":
            ok = isinstance(got, str) and re.search(arg, got) is not None
        elif op == "$one_of":
            ok = got in arg
        elif op == "$between":
            ok = isinstance(got, (int, float)) and not isinstance(got, bool)
            ok = ok and arg[0] <= got <= arg[1]
        elif op == "$same_as":
            other = _lookup(root, arg)
            ok = other is not _ABSENT and other == got
        else:
            raise AssertionError(f"unknown matcher {op} at {where}")
        return [] if ok else [f"{where}: expected {want}, got {_show(got)}"]
    if got is _ABSENT:
        return [f"{where}: missing (expected {want!r})"]
    if type(got) is bool or type(want) is bool:
        ok = type(got) is type(want) and got == want
    else:
        ok = got == want
    return [] if ok else [f"{where}: expected {want!r}, got {got!r}"]


_SEGMENT = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\.?([^.\[\]]+)')


def _lookup(document: Any, path: str) -> Any:
    node = document
    for quoted, index, key in (m.groups() for m in _SEGMENT.finditer(path)):
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                return _ABSENT
            node = node[int(index)]
            continue
        name = quoted if quoted is not None else key
        if not isinstance(node, dict) or name not in node:
            return _ABSENT
        node = node[name]
    return node


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "<absent>"
    text = repr(value)
    return text if len(text) <= 600 else text[:600] + "…"


def get(url: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET url+path on a fresh connection; return (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Shim:
    """A running shim subprocess whose output goes to a temporary file."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Any) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log

    def output(self) -> str:
        """Return what the shim has written to stdout and stderr so far."""
        self._log.flush()
        self._log.seek(0)
        return str(self._log.read().decode("utf-8", "replace"))

    def stop(self) -> str:
        """Terminate the shim (SIGTERM, then SIGKILL after 10 s) and return its output."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        text = self.output()
        self._log.close()
        return text


def start_shim(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path = HANDLERS_DIR,
    port: int | None = None,
    ready_timeout: float = 15.0,
) -> Shim:
    """Start argv with env (over os.environ) and PORT, and wait until its port accepts."""
    port = port or free_port()
    log = tempfile.TemporaryFile()
    full_env = {**os.environ, **env, "PORT": str(port)}
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    shim = Shim(process, port, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"shim exited with {process.returncode} before listening:\n{shim.stop()}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return shim
        except OSError:
            time.sleep(0.02)
    output = shim.stop()
    raise AssertionError(f"shim did not listen on {port} within {ready_timeout}s:\n{output}")


class ShimPool:
    """Starts one shim per distinct case environment and stops them all on exit."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        base_env: Mapping[str, str] | None = None,
        cwd: Path = HANDLERS_DIR,
    ) -> None:
        self._argv = list(argv)
        self._base_env = dict(base_env or {})
        self._cwd = cwd
        self._shims: dict[tuple[tuple[str, str], ...], Shim] = {}

    def url_for(self, case: Case) -> str:
        """Return the base URL of a shim configured for case, starting it if needed."""
        env = {**self._base_env, **case_env(case)}
        key = tuple(sorted(env.items()))
        shim = self._shims.get(key)
        if shim is None or shim.process.poll() is not None:
            shim = start_shim(self._argv, env=env, cwd=self._cwd)
            self._shims[key] = shim
        return shim.url

    def shims(self) -> Iterator[Shim]:
        """Yield every shim started so far."""
        yield from self._shims.values()

    def close(self) -> dict[str, str]:
        """Stop every shim; return their outputs keyed by port, for failure reports."""
        outputs = {str(s.port): s.stop() for s in self._shims.values()}
        self._shims.clear()
        return outputs

    def __enter__(self) -> ShimPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


REPO = Path(__file__).resolve().parents[2]
NODE_ENTRY = REPO / "buildpacks" / "nodejs" / "shim" / "index.mjs"


@dataclass(frozen=True)
class ShimKind:
    """How to start one language's shim: its command and the environment it always needs."""

    name: str
    argv: tuple[str, ...]
    base_env: Mapping[str, str] = field(default_factory=dict)

    def env(self, app: Path, **extra: str) -> dict[str, str]:
        """The environment of an httpd shim serving the app directory; extra overrides it."""
        base = {**self.base_env, "LAMBDA_TASK_ROOT": str(app), "HYBRIDLESS_EVENT_TYPE": "httpd"}
        return {**base, **extra}

    def start(self, app: Path, **extra: str) -> Shim:
        """Start the shim on app with extra settings, and wait until it listens."""
        return start_shim(self.argv, env=self.env(app, **extra), cwd=app)

    def run(self, app: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run the shim on app to completion (tasks, or a start that must fail)."""
        return subprocess.run(
            [*self.argv, *args], cwd=app, env={**os.environ, **self.env(app, **extra)},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def pool(self) -> ShimPool:
        """A pool of this shim for the conformance cases."""
        return ShimPool(self.argv, base_env=self.base_env)


# HYBRIDLESS_TEST_NODE and HYBRIDLESS_TEST_PYTHON pick another runtime for the shims.
NODE_SHIM = ShimKind(
    "node",
    (os.environ.get("HYBRIDLESS_TEST_NODE", "node"), str(NODE_ENTRY)),
)
PYTHON_SHIM = ShimKind(
    "python",
    (os.environ.get("HYBRIDLESS_TEST_PYTHON", sys.executable), "-m", "hybridless_shim"),
    {"PYTHONPATH": str(REPO / "buildpacks/python/shim")},
)
SHIMS = (NODE_SHIM, PYTHON_SHIM)
