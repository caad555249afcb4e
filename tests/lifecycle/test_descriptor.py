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


FN = '[[io.hybridless.functions]]\nname = "api"\nhandler = "src/h.handler"\n'


def _schema_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(DescriptorSchemaError) as info:
        descriptor.load(path)
    assert info.value.exit_code == 11
    assert "\n" not in info.value.message, "one line"
    return info.value.message


@pytest.mark.parametrize(("text", "key"), [
    ('[[io.hybridless.functions]]\nname = "api\\n"\nhandler = "h.handler"\n',
     "io.hybridless.functions[0].name"),
    ('[[io.hybridless.functions]]\nname = "api"\nhandler = "h.handler\\n"\n',
     "io.hybridless.functions[0].handler"),
    (FN + 'environment = { "KEY\\n" = "v" }\n', "io.hybridless.functions[0].environment"),
    ('[[io.buildpacks.build.env]]\nname = "TOKEN\\n"\nvalue = "x"\n',
     "io.buildpacks.build.env[0].name"),
    ('[_]\nid = "orders\\n"\n', "_.id"),
    (FN + 'runtime = "nodejs20\\n"\n', "io.hybridless.functions[0].runtime"),
])
def test_a_trailing_newline_does_not_pass_a_pattern(tmp_path: Path, text: str,
                                                    key: str) -> None:
    assert key in _schema_error(tmp_path, text)


@pytest.mark.parametrize(("text", "key"), [
    ('[io.hybridless]\nstage = "dev\\u0000x"\n', "io.hybridless.stage"),
    (FN + 'environment = { A = "a\\u0000b" }\n', "io.hybridless.functions[0].environment.A"),
    ('[[io.buildpacks.build.env]]\nname = "A"\nvalue = "\\u0000"\n',
     "io.buildpacks.build.env[0].value"),
    ('[[io.hybridless.functions]]\nname = "api"\ncommand = ["echo", "a\\u0000"]\n',
     "io.hybridless.functions[0].command"),
    ('[[io.hybridless.functions]]\nname = "api"\nhandler = "a\\u0000b.handler"\n',
     "io.hybridless.functions[0].handler"),
    (FN + 'schedule-input = "x\\u0000"\n', "io.hybridless.functions[0].schedule-input"),
    ('[io.buildpacks]\ninclude = ["src/\\u0000"]\n', "io.buildpacks.include[0]"),
])
def test_nul_is_refused_where_it_would_reach_exec_or_a_label(tmp_path: Path, text: str,
                                                              key: str) -> None:
    assert key in _schema_error(tmp_path, text)


@pytest.mark.parametrize("key", ["port", "timeout", "memory", "cpu", "body-limit",
                                 "concurrency"])
def test_floats_are_not_integers(tmp_path: Path, key: str) -> None:
    message = _schema_error(tmp_path, FN + f"{key} = 1024.0\n")
    assert f"io.hybridless.functions[0].{key} = 1024.0 must be of type integer" in message


def test_integers_and_booleans_stay_apart(tmp_path: Path) -> None:
    assert "must be of type integer" in _schema_error(tmp_path, FN + "port = true\n")
    path = write(tmp_path, FN + "port = 8081\nenvironment = { N = 1.5, B = true }\n")
    fn = descriptor.load(path).functions[0]
    assert fn.port == 8081 and fn.environment == {"N": "1.5", "B": "true"}


@pytest.mark.parametrize("handler", ["../../x.h", "/etc/x.h", "src/../../x.h", "..\\\\x.h",
                                     "\\\\etc\\\\x.h"])
def test_handlers_must_name_a_file_inside_the_app(tmp_path: Path, handler: str) -> None:
    message = _schema_error(tmp_path, '[[io.hybridless.functions]]\nname = "api"\n'
                                      f'handler = "{handler}"\n')
    assert "io.hybridless.functions[0].handler" in message and "inside the app" in message


def test_environments_too_large_for_exec_are_refused_naming_the_key(tmp_path: Path) -> None:
    big = "x" * (descriptor.MAX_ENV_ENTRY + 1)
    message = _schema_error(tmp_path, FN + f'environment = {{ BIG = "{big}" }}\n')
    assert "io.hybridless.functions[0].environment.BIG is" in message
    many = ", ".join(f'K{i} = "{"y" * 100_000}"' for i in range(11))
    message = _schema_error(tmp_path, FN + f"environment = {{ {many} }}\n")
    assert "io.hybridless.functions[0].environment adds up to" in message
    message = _schema_error(tmp_path, f'[[io.buildpacks.build.env]]\nname = "B"\n'
                                      f'value = "{big}"\n')
    assert "io.buildpacks.build.env.B is" in message
    message = _schema_error(tmp_path, f'[io.hybridless]\nstage = "{big}"\n' + FN)
    assert "io.hybridless.functions[0].environment.STAGE" in message


def test_a_long_project_id_is_refused_before_it_names_a_directory(tmp_path: Path) -> None:
    message = _schema_error(tmp_path, f'[_]\nid = "{"a" * 5000}"\n')
    assert "_.id" in message


def test_bad_globs_are_refused_at_validation(tmp_path: Path) -> None:
    message = _schema_error(tmp_path, '[io.buildpacks]\ninclude = ["[z-a].js"]\n')
    assert "io.buildpacks.include[0]" in message and "not a valid pattern" in message
    message = _schema_error(tmp_path, '[io.buildpacks]\nexclude = ["!keep"]\n')
    assert "io.buildpacks.exclude[0]" in message and "negation" in message


def test_deep_nesting_is_a_syntax_or_schema_error_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "[_]\nmetadata = { a = " + "[" * 5000 + "]" * 5000 + " }\n")
    with pytest.raises(DescriptorSyntaxError, match="nested"):
        descriptor.load(path)
    path = write(tmp_path, "[" + ".".join(["x"] * 3000) + "]\n")
    with pytest.raises(DescriptorSyntaxError):
        descriptor.load(path)
    # Deep but within TOML's limits: the schema check must not overflow the stack either.
    path = write(tmp_path, "[_]\nmetadata = { a = " + "[" * 390 + "]" * 390 + " }\n")
    try:
        descriptor.load(path)
    except DescriptorSchemaError as exc:
        assert "nested too deeply" in exc.message


def test_every_schema_pattern_gets_ecma_end_anchoring() -> None:
    schema = descriptor.SCHEMA_PATH.read_text()
    patterns = descriptor.re.findall(r'"pattern": "([^"]*)"', schema)
    assert patterns
    for pattern in patterns:
        regex = descriptor.json.loads(f'"{pattern}"')
        if regex.endswith("$"):
            assert descriptor.ecma_pattern(regex).endswith("\\Z")


@pytest.mark.parametrize("pair", ["A\n=1", "É=1", "1A=1", "=1", "A B=1"])
def test_cli_env_names_are_checked_whole(pair: str) -> None:
    from lifecycle.errors import UsageError
    from lifecycle.phases.pipeline import parse_env

    with pytest.raises(UsageError):
        parse_env([pair])
    assert parse_env(["A_1=x\ny"]) == {"A_1": "x\ny"}


def _function(extra: str) -> str:
    return f'[[io.hybridless.functions]]\nname = "a"\ncommand = "true"\n{extra}\n'


@pytest.mark.parametrize(("text", "expected"), [
    ('[[io.hybridless.functions]]\nname = "a"\nruntime = "container"\n',
     ["io.hybridless.functions[0]", "runtime = \"container\" but no 'dockerfile'"]),
    (_function('dockerfile = "../Dockerfile"'),
     ["io.hybridless.functions[0].dockerfile", '"../Dockerfile"', "leaves the app directory"]),
    (_function('dockerfile = "/etc/Dockerfile"'), ["leaves the app directory"]),
    (_function('dockerfile = "D"\nadditional-docker-files = [{ from = "a/../../x", to = "x" }]'),
     ["io.hybridless.functions[0].additional-docker-files[0].from", "leaves the app"]),
    (_function('dockerfile = "D"\nadditional-docker-files = [{ from = "x", to = "/x" }]'),
     ["additional-docker-files[0].to", "leaves the app"]),
    (_function('dockerfile = "D"\nadditional-docker-files = [{ from = "x" }]'),
     ["additional-docker-files[0]", "missing the required key 'to'"]),
    (_function('dockerfile = "D"\nadditional-docker-files = [{ from = "x", to = "y", mode = 1 }]'),
     ["unknown key", "mode", "valid keys here: from, to"]),
    (_function('dockerfile = "docker/D"\n'
               'additional-docker-files = [{ from = "x", to = "./docker" }]'),
     ["additional-docker-files[0].to", "would replace the Dockerfile"]),
    (_function('docker-build-args = { A = "1" }'),
     ["docker-build-args is set but", "no 'dockerfile'"]),
    (_function('dockerfile = "D"\ndocker-build-args = { "A-B" = "1" }'),
     ["docker-build-args"]),
    (_function('dockerfile = "D"') + '[[io.hybridless.functions]]\nname = "b"\ncommand = "x"\n'
     'dockerfile = "E"\n', ["io.hybridless.functions[1]", "one build makes one image"]),
])
def test_dockerfile_keys_are_validated(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DescriptorSchemaError) as info:
        descriptor.load(path)
    assert info.value.exit_code == 11 and str(path) in info.value.message
    for needle in expected:
        assert needle in info.value.message


def test_dockerfile_keys_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path, '[[io.hybridless.functions]]\nname = "site"\nruntime = "container"\n'
                 'dockerfile = "docker/Dockerfile"\n'
                 'additional-docker-files = [{ from = "conf/a.conf", to = "a.conf" }]\n'
                 'docker-build-args = { N = 3, FLAG = true }\n'
                 '[[io.hybridless.functions]]\nname = "worker"\ncommand = "true"\n')
    desc = descriptor.load(path)
    spec = desc.dockerfile
    assert spec == descriptor.DockerfileSpec(
        "docker/Dockerfile", (descriptor.DockerFileCopy("conf/a.conf", "a.conf"),),
        {"N": "3", "FLAG": "true"}, container=True)
    assert desc.functions[0].handler is None and desc.functions[1].dockerfile is None
