#!/usr/bin/env bash
# The main job end to end: make a tiny base image, build examples/procfile-hello into an image
# with no Docker daemon, then (when a Docker engine runs) load it, run it and fetch a page.
# Run `bash .ci/setup` first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${QUICKSTART_DIR:-$(mktemp -d -t hybridless-quickstart.XXXXXX)}"
mkdir -p "$work"
echo "==> working in $work"

# Until stacks can be built by the CLI, the base is the busybox image the tests build (umoci,
# from Debian's busybox-static): no registry is needed.
echo "==> building the busybox base image"
python3 -c "
import sys
from pathlib import Path
from tests.infra.images import build_busybox_base
print(build_busybox_base(Path(sys.argv[1])).ref)" "$work/base" > "$work/base.ref"
base="$(cat "$work/base.ref")"

echo "==> hybridless-lifecycle build (into the local store, then a docker-archive)"
python3 -m lifecycle build examples/procfile-hello --image procfile-hello:latest --run-image "$base"
python3 -m lifecycle build examples/procfile-hello \
    --image "docker-archive:$work/procfile-hello.tar:procfile-hello:latest" --run-image "$base" -q
python3 -m lifecycle inspect procfile-hello:latest

if ! docker info >/dev/null 2>&1; then
    echo "==> no Docker engine answers; the image is in the local store and $work/procfile-hello.tar"
    exit 0
fi
echo "==> docker load, docker run"
docker load -i "$work/procfile-hello.tar"
docker run --rm -e HYBRIDLESS_PROCESS=hello procfile-hello:latest from docker
cid="$(docker run -d -p 127.0.0.1::8080 procfile-hello:latest)"
trap 'docker rm -f "$cid" >/dev/null' EXIT
port="$(docker port "$cid" 8080/tcp | head -n1 | sed 's/.*://')"
for _ in $(seq 1 50); do
    if curl -fsS "http://127.0.0.1:$port/index.html"; then
        echo "==> served by the image on port $port: done"
        exit 0
    fi
    sleep 0.2
done
echo "the container did not answer" >&2
docker logs "$cid" >&2
exit 1
