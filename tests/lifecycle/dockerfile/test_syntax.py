"""The Dockerfile reader: modes, FROM images, build-arg substitution, BuildKit-only refusals."""

from __future__ import annotations

import pytest

from lifecycle.dockerfile import syntax
from lifecycle.errors import DockerfileBuildFailed

HOST = "linux/amd64"


def parse(text: str, **args: str) -> syntax.Dockerfile:
    return syntax.parse(text, "Dockerfile", build_args=args, platform=HOST)


def test_extend_mode_through_a_named_stage_and_external_images() -> None:
    parsed = parse("# escape=\\\nARG HYBRIDLESS_IMAGE\nARG NODE=20\n"
                   "FROM node:${NODE}-slim AS deps\nRUN echo \\\n  # a comment inside\n  hi\n"
                   "FROM $HYBRIDLESS_IMAGE AS ours\nFROM ours\nCOPY --from=deps /x /y\n",
                   NODE="22")
    assert parsed.extends
    assert parsed.external_images == ("node:22-slim",)
    assert [s.name for s in parsed.stages] == ["deps", "ours", None]
    assert parsed.stages[0].instructions[0].text.split() == ["echo", "hi"]


def test_container_mode_and_substitution_forms() -> None:
    parsed = parse("ARG A\nARG B=b\nFROM ${A:-alpine}:${B}${C:+x}\n", B="3")
    assert not parsed.extends
    assert parsed.external_images == ("alpine:3",)
    assert parse("FROM scratch\nCOPY a /a\n").external_images == ()


@pytest.mark.parametrize(("text", "needle"), [
    ("# syntax=docker/dockerfile:1\nFROM a\n", "BuildKit frontend"),
    ("FROM a\nRUN --mount=type=cache,target=/root/.npm npm ci\n", "RUN --mount is BuildKit"),
    ("FROM a\nRUN --network=none true\n", "RUN --network"),
    ("FROM a\nCOPY --link a /a\n", "COPY --link"),
    ("FROM a\nCOPY --chmod=755 a /a\n", "COPY --chmod"),
    ("FROM a\nADD --checksum=sha256:00 https://x /x\n", "ADD --checksum"),
    ("FROM a\nRUN <<EOF\necho hi\nEOF\n", "heredoc"),
    ("FROM a\nCOPY <<-'EOT' /x\nhi\nEOT\n", "heredoc"),
    ("FROM --platform=linux/arm64 a\n", "not this engine's platform"),
    ("ARG P=linux/arm64\nFROM --platform=$P a\n", "linux/arm64"),
    ("FROM ${HYBRIDLESS_IMAGE}\n", "no 'ARG HYBRIDLESS_IMAGE'"),
    ("RUN true\nFROM a\n", "RUN before the first FROM"),
    ("# nothing\n", "no FROM"),
    ("ARG X\nFROM $X\n", "empty once build args"),
    ("FROM a b c d\n", "not 'FROM image [AS name]'"),
    ("# escape=x\nFROM a\n", "escape directive"),
])
def test_refusals_name_the_line_and_the_fix(text: str, needle: str) -> None:
    with pytest.raises(DockerfileBuildFailed) as info:
        parse(text)
    assert needle in str(info.value) and info.value.exit_code == 90
    assert "Dockerfile" in info.value.message and info.value.hint


def test_host_platform_and_copy_chown_are_fine() -> None:
    parsed = parse("FROM --platform=linux/amd64 a\nCOPY --chown=1000:1000 x /x\n"
                   "RUN echo '<<not a heredoc' $((1<<2))\n")
    assert parsed.external_images == ("a",)
