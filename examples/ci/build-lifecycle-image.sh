#!/usr/bin/env bash
# Build the lifecycle image: this repository installed by its own Python buildpack
# (lifecycle-image/project.toml) on the build image of the debian-trixie-python stack, so
# that the image has Python 3.13, compilers and git besides hybridless-lifecycle.
#
#   examples/ci/build-lifecycle-image.sh IMAGE [BUILD OPTION]...
#
# IMAGE is any image reference: docker-daemon:hybridless-lifecycle:latest (the local engine),
# docker://registry.example.com/tools/hybridless-lifecycle:0.1.0 (a registry), or a local
# store name. The options are passed to `build` (e.g. --tag REF, --insecure-registry HOST).
#
# Needs: hybridless-lifecycle (`pip install .`), a Docker engine (the project is installed in
# the stack's build image) and, the first time, mmdebstrap to build that image (as root or
# with subordinate ids, docs/stacks.md). pip reaches PyPI with --network host; set
# LIFECYCLE_CA_BUNDLE to a CA bundle to trust besides the build image's (default: this
# host's Debian bundle when present). Proxy variables (https_proxy, no_proxy) pass through.
#
# Environment:
#   HYBRIDLESS_LIFECYCLE   the command to run (default: hybridless-lifecycle)
#   LIFECYCLE_STACK        the stack whose build image is the base (default: debian-trixie-python)
#   LIFECYCLE_CA_BUNDLE    see above; "" for none
set -euo pipefail

if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: $0 IMAGE [BUILD OPTION]..." >&2
  exit 2
fi
image=$1; shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
read -r -a lifecycle <<<"${HYBRIDLESS_LIFECYCLE:-hybridless-lifecycle}"
stack=${LIFECYCLE_STACK:-debian-trixie-python}
default_ca=/etc/ssl/certs/ca-certificates.crt
[[ -f $default_ca ]] || default_ca=""
ca=${LIFECYCLE_CA_BUNDLE-$default_ca}

# The stack's build image, by its store name (it changes with the stack's recipe).
build_image=$("${lifecycle[@]}" stacks list --json | python3 -c '
import json, sys
stacks = {s["id"]: s for s in json.load(sys.stdin)}
if sys.argv[1] not in stacks or not stacks[sys.argv[1]]["build_image"]:
    sys.exit(f"error: stack {sys.argv[1]} is unknown or has no build image")
print(stacks[sys.argv[1]]["build_image"])' "$stack")

# Build it into the store when missing (mmdebstrap), then into the engine: the project is
# installed by commands that run in a container of that image.
"${lifecycle[@]}" -q stacks build "$stack"
if ! docker image inspect "$build_image" >/dev/null 2>&1; then
  "${lifecycle[@]}" -q push "$build_image" "docker-daemon:$build_image"
fi

# The build image is also the run image: the stack's build tools stay in the lifecycle image.
# HYBRIDLESS_BUILD_IMAGE names where commands run, since --run-image chooses no stack.
HYBRIDLESS_BUILD_IMAGE=$build_image exec "${lifecycle[@]}" build "$repo" \
  --descriptor "$repo/lifecycle-image/project.toml" \
  --run-image "$build_image" --image "$image" \
  --executor docker --network host ${ca:+--ca-bundle "$ca"} "$@"
