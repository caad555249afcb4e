"""Node shim throughput: our httpd shim against a bare node:http server sending the same bytes.

Starts both servers pinned to one core and loads each with wrk pinned to another, at the same
concurrency, alternating peer and ours (A B A B …) after one warm-up of each. Prints requests/s
and p50/p99 latency and the server's CPU time per request for each run, the medians, and the
ours/peer ratio of the median requests/s (goal: at least 0.8). Not run by the test suite.

Usage: python bench/node_shim.py [--pairs 5] [--duration 5] [--connections 64]
       [--server-core 0] [--wrk-core 1] [--format apigw-v1] [--node node]
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

REPO = Path(__file__).resolve().parent.parent
SHIM = REPO / "buildpacks" / "nodejs" / "shim" / "index.mjs"
PEER = REPO / "bench" / "peers" / "node_http.mjs"
BODY = '{"message":"hello"}'
HANDLER = f"""export const handler = async () => ({{
  statusCode: 200,
  headers: {{ 'content-type': 'application/json' }},
  body: '{BODY}',
}});
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Run:
    """One wrk run's figures."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # connect/read/write errors and non-2xx answers
    timeouts: int  # requests wrk gave up on after 2 s: overload, not failure
    cpu_us: float  # server CPU time per request: steadier than req/s on a shared machine


def main(argv: list[str]) -> int:
    """Start both servers, run the alternating wrk pairs, print the figures and the ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="measured peer/ours pairs")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of the warm-up runs")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--server-core", default="0", help="taskset CPU list for the servers")
    parser.add_argument("--wrk-core", default="1", help="taskset CPU list for wrk")
    parser.add_argument("--format", default="apigw-v1", help="HYBRIDLESS_HTTP_FORMAT of ours")
    parser.add_argument("--node", default="node", help="node binary")
    args = parser.parse_args(argv)
    for tool in ("wrk", "taskset", args.node):
        if shutil.which(tool) is None:
            print(f"{tool} is not on PATH", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="node-shim-bench-") as app:
        Path(app, "handler.mjs").write_text(HANDLER)
        servers = {
            "peer": _start(args, [str(PEER)], {"BODY": BODY}, app),
            "ours": _start(
                args,
                [str(SHIM)],
                {
                    "LAMBDA_TASK_ROOT": app,
                    "ENTRYPOINT": "handler",
                    "ENTRYPOINT_FUNC": "handler",
                    "HYBRIDLESS_EVENT_TYPE": "httpd",
                    "HYBRIDLESS_HTTP_FORMAT": args.format,
                },
                app,
            ),
        }
        try:
            return _measure(args, {name: (p.pid, port) for name, (p, port) in servers.items()})
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)


def _measure(args: argparse.Namespace, servers: dict[str, tuple[int, int]]) -> int:
    node_version = subprocess.run(
        [args.node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(
        f"node {node_version}; {os.cpu_count()} CPUs; servers on CPU {args.server_core}, "
        f"wrk on CPU {args.wrk_core}; {args.connections} connections; "
        f"{args.pairs} pairs of {args.duration}s; format {args.format}"
    )
    for name, (pid, port) in servers.items():
        _wrk(args, pid, port, args.warmup)
        print(f"warm-up {name} done")
    runs: dict[str, list[Run]] = {"peer": [], "ours": []}
    print(
        f"{'run':<8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} "
        f"{'errors':>7} {'timeouts':>9}"
    )
    for pair in range(args.pairs):
        for name, (pid, port) in servers.items():
            run = _wrk(args, pid, port, args.duration)
            runs[name].append(run)
            label = f"{name} {pair + 1}"
            print(
                f"{label:<8} {run.rps:>10.0f} {run.p50_ms:>8.2f} {run.p99_ms:>8.2f} "
                f"{run.cpu_us:>11.1f} {run.errors:>7} {run.timeouts:>9}"
            )
    medians = {
        name: [
            statistics.median(getattr(r, metric) for r in rs)
            for metric in ("rps", "p50_ms", "p99_ms", "cpu_us")
        ]
        for name, rs in runs.items()
    }
    for name, (rps, p50, p99, cpu) in medians.items():
        print(
            f"median {name}: {rps:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"{cpu:.1f} us CPU/req"
        )
    ratio = medians["ours"][0] / medians["peer"][0]
    print(f"ratio ours/peer (median req/s): {ratio:.3f} (goal >= 0.8)")
    # Requests per CPU-second does not depend on how much CPU other jobs left us.
    print(
        f"ratio ours/peer (requests per CPU-second): {medians['peer'][3] / medians['ours'][3]:.3f}"
    )
    errors = sum(r.errors for rs in runs.values() for r in rs)
    if errors:
        print(f"wrk reported {errors} socket errors or non-2xx responses", file=sys.stderr)
        return 1
    return 0


def _start(
    args: argparse.Namespace, script: list[str], env: dict[str, str], cwd: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(
        ["taskset", "-c", args.server_core, args.node, *script],
        cwd=cwd,
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{' '.join(script)} did not listen on {port}")


def _wrk(args: argparse.Namespace, pid: int, port: int, seconds: int) -> Run:
    command = [
        "taskset", "-c", args.wrk_core, "wrk", "--latency", "-t1",
        f"-c{args.connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/bench?x=1",
    ]  # fmt: skip
    cpu_before = _cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(pid) - cpu_before
    requests = int(_find(r"(\d+) requests in", out))
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    errors = timeouts = 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        counts = dict(re.findall(r"(\w+) (\d+)", socket_errors.group(1)))
        timeouts = int(counts.pop("timeout", 0))
        errors += sum(int(n) for n in counts.values())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    cpu_us = cpu * 1e6 / requests if requests else float("nan")
    return Run(rps, _latency(out, "50%"), _latency(out, "99%"), errors, timeouts, cpu_us)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not match:
        raise SystemExit(f"no {percentile} latency in wrk output:\n{out}")
    return float(match.group(1)) * UNITS[match.group(2)]


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if not match:
        raise SystemExit(f"{pattern!r} not found in wrk output:\n{text}")
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
