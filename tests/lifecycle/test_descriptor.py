"""Descriptor parsing and validation: errors name the file, the key, the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import descriptor
from lifecycle.errors import DescriptorSchemaError, DescriptorSyntaxError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project.toml"
    path.write_text(text)
    return path


def test_example_documents_every_schema_key_and_parses() -> None:
    example = REPO / "project.toml.example"
    desc = descriptor.load(example)
    assert desc.id == "com.example.orders"
    fn = desc.functions[0]
    assert (fn.entrypoint, fn.entrypoint_func, fn.runtime) == ("src/handler", "handler",
                                                                "nodejs20")
    text = example.read_text()
    schema = descriptor.json.loads(descriptor.SCHEMA_PATH.read_text())
    for key in schema["$defs"]["function"]["properties"]:
        assert f"{key} =" in text or f"# {key} =" in text, f"{key} undocumented"


def test_toml_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[_]\nschema-version = "0.2"\nid = \n')
    with pytest.raises(DescriptorSyntaxError) as info:
        descriptor.load(path)
    assert str(path) in info.value.message and "line 3" in info.value.message
    assert info.value.exit_code == 10


@pytest.mark.parametrize(("text", "expected"), [
    ('[[io.hybridless.functions]]\nname = "api"\nhandler = "h.h"\nevent = "http"\n',
     ['io.hybridless.functions[0].event', '"http"', '"httpd"', '"lambdaContainer"']),
    ('[[io.hybridless.functions]]\nname = "api"\nhandler = "h.h"\ntimout = 3\n',
     ["unknown key 'io.hybridless.functions[0].timout'", "timeout"]),
    ('[io.hybridless]\nstak = "x"\n', ["unknown key 'io.hybridless.stak'", "stack"]),
    ('[[io.hybridless.functions]]\nname = "Api"\nhandler = "h.h"\n',
     ["io.hybridless.functions[0].name", '"Api"', "lower-case"]),
    ('[[io.hybridless.functions]]\nname = "a"\nhandler = "h.h"\nport = "80"\n',
     ["io.hybridless.functions[0].port", "integer"]),
    ('[[io.hybridless.functions]]\nname = "a"\nhandler = "h.h"\nruntime = "node20"\n',
     ["runtime", "nodejs20"]),
    ('[[io.hybridless.functions]]\nname = "a"\n', ["neither 'handler' nor 'command'"]),
    ('[[io.hybridless.functions]]\nname = "a"\nhandler = "h.h"\n'
     '[[io.hybridless.functions]]\nname = "a"\nhandler = "h.g"\n', ["used twice"]),
    ('[_]\nschema-version = "0.1"\n', ["_.schema-version", '"0.2"']),
])
def test_schema_errors_name_key_value_and_valid_values(tmp_path: Path, text: str,
                                                       expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DescriptorSchemaError) as info:
        descriptor.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert info.value.exit_code == 11


def test_defaults_and_runtime_spelling(tmp_path: Path) -> None:
    path = write(tmp_path, '[[io.hybridless.functions]]\nname = "a"\nhandler = "src/x.y.fn"\n'
                           'runtime = "nodejs20.x"\nschedule-input = { b = 1, a = 2 }\n')
    fn = descriptor.load(path).functions[0]
    assert fn.runtime == "nodejs20" and fn.entrypoint == "src/x.y" and fn.entrypoint_func == "fn"
    assert (fn.port, fn.timeout, fn.event, fn.body_limit, fn.concurrency) == (
        8080, 30, "httpd", 6291456, 64)
    assert fn.schedule_input == '{"a":2,"b":1}'


def test_validation_is_skipped_for_known_good_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, '[_]\nid = "x"\n')
    markers = tmp_path / "markers"
    descriptor.load(path, validated_cache=markers)
    assert len(list(markers.iterdir())) == 1
    # A changed descriptor is validated again (and fails here).
    path.write_text('[_]\nidd = "x"\n')
    with pytest.raises(DescriptorSchemaError):
        descriptor.load(path, validated_cache=markers)
