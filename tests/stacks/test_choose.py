"""Stack choice: the order of strength, the detected runtime, and refusals naming stacks."""

from __future__ import annotations

import pytest

from lifecycle.errors import BaseImageNotFound
from stacks import catalog
from stacks.choose import choose, detected_runtime
from stacks.runtimes import Runtime, parse_runtime

KNOWN = catalog.load({"XDG_CONFIG_HOME": "/nonexistent"})
NODE22 = parse_runtime("nodejs22")


def test_stronger_sources_win_in_the_contract_order() -> None:
    assert choose(KNOWN, NODE22).stack.id == "debian-bookworm-nodejs"  # type: ignore[union-attr]
    chosen = choose(KNOWN, NODE22, descriptor_stack="debian-trixie-nodejs")
    assert chosen.stack is not None and chosen.stack.id == "debian-trixie-nodejs"
    assert "descriptor" in chosen.reason
    chosen = choose(KNOWN, NODE22, descriptor_stack="debian-trixie-nodejs",
                    cli_stack="node-22-bookworm-slim")
    assert chosen.stack is not None and chosen.stack.id == "node-22-bookworm-slim"
    chosen = choose(KNOWN, NODE22, cli_stack="node-22-bookworm-slim", run_image="oci:x:y")
    assert chosen.stack is None and "--run-image" in chosen.reason


@pytest.mark.parametrize("runtime", ["python3.10", "python3.12"])
def test_versions_only_reference_stacks_have_are_not_a_default(runtime: str) -> None:
    with pytest.raises(BaseImageNotFound) as caught:
        choose(KNOWN, parse_runtime(runtime))
    minor = runtime[-2:]
    assert f"lambda-python3.{minor}" in str(caught.value.hint)
    assert f"python-3.{minor}-slim-bookworm" in str(caught.value.hint)
    with pytest.raises(BaseImageNotFound, match=r"debian-trixie-python.*serves python3\.13"):
        choose(KNOWN, parse_runtime(runtime), cli_stack="debian-trixie-python")


def test_the_runtime_comes_from_functions_then_plan_then_buildpack_family() -> None:
    assert detected_runtime(["python3.13"], [], [], KNOWN) == Runtime("python", (3, 13))
    assert detected_runtime([None, "container"], [("node", {"major": 20})], [], KNOWN) == (
        Runtime("nodejs", (20,)))
    assert detected_runtime([], [("node", {"major": None})], [], KNOWN) == Runtime("nodejs", ())
    assert detected_runtime([], [], ["acme/ruby", "hybridless/python"], KNOWN) == (
        Runtime("python", ()))
    assert detected_runtime([], [], ["hybridless/procfile"], KNOWN) is None
    assert choose(KNOWN, Runtime("python", ())).stack.id == (  # type: ignore[union-attr]
        "debian-bookworm-python")
    with pytest.raises(BaseImageNotFound, match="name no runtime"):
        choose(KNOWN, None)
