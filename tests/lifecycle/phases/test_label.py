"""The io.hybridless.build label: typed fields, the same bytes, unreadable labels refused."""

from __future__ import annotations

import json

import pytest

from lifecycle.errors import UsageError
from lifecycle.jsonutil import dumps
from lifecycle.phases.label import BUILD_LABEL, BuildLabel, RunImage, read

STORED = {
    "api": "0.1",
    "buildpacks": [{"id": "hybridless/procfile", "version": "0.1.0"}],
    "compressor": "isal/gzip",
    "layers": [{"diff_id": "sha256:" + "1" * 64, "metadata": {"k": [1, 2]}, "name": "a/b"},
               {"diff_id": "sha256:" + "2" * 64, "metadata": {}, "name": "app"}],
    "lifecycle": "0.1.0",
    "processes": [{"command": ["/bin/sh", "-c", "x"], "default": True, "event": "process",
                   "name": "web"}],
    "project": None,
    "run-image": {"digest": "sha256:" + "3" * 64, "layers": 1, "reference": "oci:layout:b",
                  "top-layer": "sha256:" + "4" * 64},
    "source": {"revision": "abc"},
    "stack": None,
    "from-a-newer-writer": {"kept": True},
}


def test_a_stored_label_reads_back_to_the_same_bytes() -> None:
    label = read({BUILD_LABEL: dumps(STORED).decode()}, "img")
    assert label is not None
    assert label.run_image == RunImage("oci:layout:b", "sha256:" + "3" * 64, 1,
                                       "sha256:" + "4" * 64)
    assert label.revision == "abc" and label.processes[0].default is True
    assert label.encode() == dumps(STORED).decode()


def test_rebasing_changes_only_the_run_image() -> None:
    label = BuildLabel.from_json(STORED)
    moved = json.loads(label.rebased(RunImage("store:x", "sha256:" + "5" * 64, 2, None)).encode())
    assert moved["run-image"] == {"reference": "store:x", "digest": "sha256:" + "5" * 64,
                                  "layers": 2, "top-layer": None}
    assert {k: v for k, v in moved.items() if k != "run-image"} == \
        {k: v for k, v in STORED.items() if k != "run-image"}


def test_an_image_without_the_label_has_none() -> None:
    assert read({"other": "x"}, "img") is None


@pytest.mark.parametrize("text", [
    "not json",
    "[]",
    json.dumps({"api": "0.1"}),
    json.dumps({**STORED, "run-image": {"reference": "x", "digest": "y", "layers": "many"}}),
    json.dumps({**STORED, "processes": [{"name": "web"}]}),
])
def test_an_unreadable_label_is_a_usage_error_naming_the_image(text: str) -> None:
    with pytest.raises(UsageError, match=f"failed to read the {BUILD_LABEL} label of img"):
        read({BUILD_LABEL: text}, "img")


def test_the_dockerfile_record_is_typed_and_absent_unless_a_dockerfile_built() -> None:
    label = BuildLabel.from_json(STORED)
    assert label.dockerfile is None and "dockerfile" not in json.loads(label.encode())
    recorded = label.with_dockerfile("extend", "docker/Dockerfile")
    stored = json.loads(recorded.encode())
    assert stored["dockerfile"] == {"mode": "extend", "path": "docker/Dockerfile"}
    again = read({BUILD_LABEL: recorded.encode()}, "img")
    assert again is not None and again.dockerfile == {"mode": "extend",
                                                      "path": "docker/Dockerfile"}
    assert again.encode() == recorded.encode() and "dockerfile" not in again.extra
