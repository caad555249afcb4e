#!/usr/bin/env bash
# The main job end to end with no base image made by hand: build examples/python-hello on its
# default stack (debian-bookworm-python, which the CLI builds with mmdebstrap on first use,
# about a minute, once), then (when a Docker engine runs) load it straight into the engine,
# run it and fetch a page. Run `bash .ci/setup` first on a fresh machine; building a stack
# needs root or subordinate ids for mmdebstrap (docs/stacks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> the stacks this machine knows"
python3 -m lifecycle stacks list

echo "==> hybridless-lifecycle build (into the local store; builds the stack on first use)"
python3 -m lifecycle build examples/python-hello --image python-hello:latest
python3 -m lifecycle inspect python-hello:latest

if ! docker info >/dev/null 2>&1; then
    echo "==> no Docker engine answers; the image is in the local store as python-hello:latest"
    exit 0
fi
echo "==> build straight into the Docker engine, then docker run"
python3 -m lifecycle build examples/python-hello --image docker-daemon:python-hello:latest -q
cid="$(docker run -d -p 127.0.0.1::8080 python-hello:latest)"
trap 'docker rm -f "$cid" >/dev/null' EXIT
port="$(docker port "$cid" 8080/tcp | head -n1 | sed 's/.*://')"
for _ in $(seq 1 50); do
    if curl -fsS "http://127.0.0.1:$port/hi?name=quickstart"; then
        echo
        echo "==> served by the image on port $port as user $(docker exec "$cid" id -un): done"
        exit 0
    fi
    sleep 0.2
done
echo "the container did not answer" >&2
docker logs "$cid" >&2
exit 1
