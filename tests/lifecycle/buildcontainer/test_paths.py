"""Host paths become the build container's paths in argv, env and cwd."""

from __future__ import annotations

import pytest

from lifecycle.buildcontainer.paths import PathMap

MAP = PathMap.of({"/home/u/.cache/h/layers/bp": "/layers/bp", "/home/u/app": "/var/task",
                  "/home/u/.cache/h/layers/bp/node/x": "/deeper"})


@pytest.mark.parametrize(("host", "inside"), [
    ("/home/u/app", "/var/task"),
    ("/home/u/app/src/a.js", "/var/task/src/a.js"),
    ("/home/u/.cache/h/layers/bp/node/bin:/usr/bin", "/layers/bp/node/bin:/usr/bin"),
    ("--store-dir=/home/u/.cache/h/layers/bp/cache", "--store-dir=/layers/bp/cache"),
    ("-ffile-prefix-map=/home/u/app=.", "-ffile-prefix-map=/var/task=."),
    ("/home/u/.cache/h/layers/bp/node/x/y", "/deeper/y"),  # the longest prefix wins
    ("a /home/u/app b", "a /var/task b"),
])
def test_mapped_prefixes_are_rewritten(host: str, inside: str) -> None:
    assert MAP.translate(host) == inside


@pytest.mark.parametrize("text", [
    "/home/u/app2", "/home/u/application/x", "/x/home/u/app", "relative/home/u/app",
    "/home/u", "plain", "",
])
def test_other_paths_are_left_alone(text: str) -> None:
    assert MAP.translate(text) == text


def test_env_values_are_translated_and_names_kept() -> None:
    env = MAP.env({"npm_config_nodedir": "/home/u/.cache/h/layers/bp/node",
                   "/home/u/app": "name stays"})
    assert env == {"npm_config_nodedir": "/layers/bp/node", "/home/u/app": "name stays"}


@pytest.mark.parametrize("host", ["relative", "/"])
def test_only_absolute_directories_below_root_are_mapped(host: str) -> None:
    with pytest.raises(ValueError, match="cannot map"):
        PathMap.of({host: "/x"})
