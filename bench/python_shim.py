"""Throughput of the Python httpd shim against a bare asyncio.Protocol server (goal: ratio >= 0.7).

Both servers run pinned to one core, `wrk` runs pinned to another, at the same concurrency;
runs alternate peer/ours after a warm-up so that drift hits both alike. Not part of the test
suite: run it by hand.

    python3 bench/python_shim.py [--pairs 5] [--duration 5] [--connections 50] [--handler sync]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIM_PATH = ROOT / "buildpacks" / "python" / "shim"
PEER = ROOT / "bench" / "peers" / "asyncio_http.py"
BODY = "Hello, World!"

HANDLERS = {
    "sync": (
        "def handler(event, context):\n"
        f"    return {{'statusCode': 200, 'headers': {{'Content-Type': 'text/plain'}}, "
        f"'body': {BODY!r}}}\n"
    ),
    "async": (
        "async def handler(event, context):\n"
        f"    return {{'statusCode': 200, 'headers': {{'Content-Type': 'text/plain'}}, "
        f"'body': {BODY!r}}}\n"
    ),
}


@dataclass
class Run:
    """One wrk run's figures, plus the server's CPU time per request."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``port``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"failed to start a server on port {port}: nothing listens")


def raw_response(port: int) -> bytes:
    """One GET's response bytes, with the Date header blanked out."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /bench HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        # Read by Content-Length: the bare peer keeps every connection open.
        while True:
            data += s.recv(65536)
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", data)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        raise SystemExit(f"failed to read the {label} latency from wrk:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(port: int, connections: int, duration: int, core: str, pid: int) -> Run:
    """Load ``port`` with wrk pinned to ``core`` and return its figures; ``pid`` serves it."""
    cmd = [
        "taskset", "-c", core, "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
        "--latency", f"http://127.0.0.1:{port}/bench",
    ]  # fmt: skip
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not match or not total or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk reported errors or no rate:\n{out}")
    return Run(
        float(match.group(1)),
        _latency_ms(out, "50%"),
        _latency_ms(out, "99%"),
        cpu * 1e6 / max(1, int(total.group(1))),
    )


def main() -> int:
    """Run the comparison and print the figures; exits 1 when the ratio is under 0.7."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--handler", choices=sorted(HANDLERS), default="sync")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"failed to find {tool} on PATH: install it to run this benchmark")

    app = Path(tempfile.mkdtemp(prefix="shim-bench-"))
    (app / "handler.py").write_text(HANDLERS[args.handler])
    ours_port, peer_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SHIM_PATH),
        "LAMBDA_TASK_ROOT": str(app),
        "HYBRIDLESS_EVENT_TYPE": "httpd",
        "ENTRYPOINT": "handler",
        "ENTRYPOINT_FUNC": "handler",
        "PORT": str(ours_port),
        "HEALTH_ROUTE": "/health",
    }
    pin = ["taskset", "-c", args.server_core, sys.executable]
    ours = subprocess.Popen([*pin, "-m", "hybridless_shim"], cwd=app, env=env,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    peer = subprocess.Popen([*pin, str(PEER), "--port", str(peer_port), "--body", BODY])
    try:
        wait_port(ours_port)
        wait_port(peer_port)
        if raw_response(ours_port) != raw_response(peer_port):
            raise SystemExit(
                "failed to compare like with like: the two servers answer different bytes:\n"
                f"ours: {raw_response(ours_port)!r}\npeer: {raw_response(peer_port)!r}"
            )
        print(f"handler={args.handler} connections={args.connections} "
              f"duration={args.duration}s pairs={args.pairs} "
              f"server core {args.server_core}, wrk core {args.load_core}")  # fmt: skip
        servers = (("peer", peer_port, peer.pid), ("ours", ours_port, ours.pid))
        for _, port, pid in servers:
            wrk(port, args.connections, args.warmup, args.load_core, pid)
        runs: dict[str, list[Run]] = {"peer": [], "ours": []}
        heading = ("pair", "server", "req/s", "p50 ms", "p99 ms", "cpu us/req")
        print("{:>4} {:>6} {:>10} {:>8} {:>8} {:>10}".format(*heading))
        for i in range(1, args.pairs + 1):
            for name, port, pid in servers:
                run = wrk(port, args.connections, args.duration, args.load_core, pid)
                runs[name].append(run)
                print(f"{i:>4} {name:>6} {run.rps:>10.0f} {run.p50_ms:>8.2f} "
                      f"{run.p99_ms:>8.2f} {run.cpu_us:>10.1f}")  # fmt: skip
        med = {
            name: Run(
                statistics.median(r.rps for r in rs),
                statistics.median(r.p50_ms for r in rs),
                statistics.median(r.p99_ms for r in rs),
                statistics.median(r.cpu_us for r in rs),
            )
            for name, rs in runs.items()
        }
        ratio = med["ours"].rps / med["peer"].rps
        for name in ("peer", "ours"):
            m = med[name]
            print(f"median {name}: {m.rps:.0f} req/s, p50 {m.p50_ms:.2f} ms, "
                  f"p99 {m.p99_ms:.2f} ms, {m.cpu_us:.1f} us CPU/request")  # fmt: skip
        # On a busy machine both servers get starved alike and req/s can hide the
        # difference; CPU time per request does not.
        print(f"CPU-cost ratio peer/ours: {med['peer'].cpu_us / med['ours'].cpu_us:.2f}")
        print(f"ratio ours/peer: {ratio:.2f} (goal >= 0.70)")
        return 0 if ratio >= 0.7 else 1
    finally:
        for proc in (ours, peer):
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(app, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
