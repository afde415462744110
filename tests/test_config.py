"""Tests of monitor/config.py: finding, parsing, validating the config, and reading API keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from monitor.config import (
    Config,
    KeySource,
    Secret,
    WebSettings,
    default_database_path,
    find_config_path,
    load_config,
    parse_config,
    resolve_key,
)
from monitor.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
MONITOR = Path(sys.executable).parent / "monitor"


def one_target(**keys: Any) -> dict[str, Any]:
    """A config with one target; ``keys`` override or add target keys (None removes one)."""
    target: dict[str, Any] = {"name": "dos-ai", "base_url": "https://api.dos.ai/v1"}
    target.update(keys)
    return {"targets": [{k: v for k, v in target.items() if v is not None}]}


def parse(data: dict[str, Any], environ: dict[str, str] | None = None) -> Config:
    return parse_config(data, path=None, environ=environ or {})


def config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return str(info.value)


def key_source(**keys: Any) -> KeySource:
    source = parse(one_target(**keys)).targets[0].api_key
    assert source is not None
    return source


# -- the shipped example -----------------------------------------------------


def test_shipped_example_config_loads() -> None:
    config = load_config(EXAMPLE, {"STATE_DIRECTORY": "/var/lib/model-monitor"})

    assert config.path == EXAMPLE
    assert make_url(config.database_url).database == "/var/lib/model-monitor/monitor.db"
    assert config.notify_urls == ()  # examples only, commented out: see below
    assert config.metrics_listen is None  # off, as without the example
    [target] = config.targets
    assert target.name == "dos-ai"
    assert target.models_url == "https://api.dos.ai/v1/models"
    assert target.api_key == KeySource("env", "DOS_API_KEY", "targets[0].api_key_env")
    assert target.interval == 300
    assert target.timeout == 10
    assert target.notify_urls == ()
    assert config.urls_for(target) == ()


def test_the_examples_commented_notification_urls_are_ones_apprise_accepts() -> None:
    """The example ships its notification URLs commented out (a quick start must not
    queue alerts to placeholders); uncommented, they parse and apprise takes them."""
    import tomllib

    from monitor.config import verify

    notify = EXAMPLE.read_text().split("[notify]", 1)[1].split("\n[", 1)[0]
    block = "# urls = [" + notify.split("# urls = [", 1)[1].split("# ]", 1)[0] + "# ]"
    urls = tomllib.loads("\n".join(line[2:] for line in block.splitlines()))["urls"]
    assert len(urls) >= 2 and {u.split("://")[0] for u in urls} >= {"slack", "mailtos"}
    config = parse({"notify": {"urls": urls}})
    verify(config)  # every URL is one apprise understands
    assert config.notify_urls == tuple(urls)


def test_a_preset_fills_kind_url_key_and_name_and_what_a_target_says_wins() -> None:
    config = parse(
        {
            "defaults": {"kind": "openai", "interval": "1h"},
            "targets": [
                {"preset": "anthropic"},
                {"preset": "openai", "name": "openai-eu", "base_url": "http://127.0.0.1:9/v1"},
                {"preset": "openai", "api_key_file": "/run/key"},
                {"preset": "openrouter", "kind": "openai"},
            ],
        }
    )
    claude, eu, by_file, router = config.targets
    assert (claude.name, claude.kind, claude.base_url) == (
        "anthropic",
        "anthropic",  # the preset's kind beats [defaults]'s
        "https://api.anthropic.com/v1",
    )
    assert claude.api_key == KeySource("env", "ANTHROPIC_API_KEY", "targets[0].api_key_env")
    assert claude.interval == 3600  # [defaults] still apply
    assert (eu.name, eu.base_url) == ("openai-eu", "http://127.0.0.1:9/v1")
    assert by_file.api_key is not None and by_file.api_key.kind == "file"
    assert (router.kind, router.api_key) == ("openai", None)  # no key for OpenRouter


def test_an_unknown_preset_names_the_key_and_the_choices() -> None:
    message = config_error({"targets": [{"preset": "openia"}]})
    assert message.startswith('targets[0].preset: "openia" is not one of dos-ai, openai,')
    assert "'monitor presets' lists them" in message
    assert "defaults.preset" in config_error({"defaults": {"preset": "openai"}})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"preset": "azure"}, "targets[0].base_url: is required (your resource's endpoint"),
        ({"preset": "bedrock"}, 'targets[0].region: is required for kind = "bedrock"'),
        (
            {"preset": "bedrock", "region": "Frankfurt"},
            'targets[0].region: "Frankfurt" is not an AWS region like "us-east-1"',
        ),
        (
            {"preset": "bedrock", "region": "us-east-1", "api_key_env": "K"},
            "targets[0].api_key_env: kind bedrock signs with AWS credentials",
        ),
        (
            {"preset": "openai", "region": "us-east-1"},
            'targets[0].region: only for kind = "bedrock"',
        ),
        ({"preset": "openai", "api_version": "2024-10-21"}, "targets[0].api_version: only for"),
        (
            {"preset": "azure", "base_url": "https://r.example", "api_version": "2024 10"},
            'targets[0].api_version: "2024 10" is not an API version',
        ),
        ({"preset": "openai", "items": "models"}, 'targets[0].items: only for kind = "json"'),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "id": "a..b"},
            'targets[0].id: "a..b" is not a field name or dotted path',
        ),
        ({"name": "j", "kind": "json", "base_url": "http://h", "id": ""}, "targets[0].id: must"),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "path": "models"},
            'targets[0].path: "models" must be a URL path like "/models"',
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "path": "/m?x=1"},
            "targets[0].path:",
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "next_param": "p"},
            "targets[0].next_param: needs next",
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "auth_header": "X Key"},
            'targets[0].auth_header: "X Key" is not a valid name',
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "params": {"a": [1]}},
            "targets[0].params.a: [1] must be a string or a number",
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "auth_header": ""}
            | {"api_key_env": "K"},
            'targets[0].api_key_env: kind json sends no key (auth_header = "")',
        ),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "auth_header": "X-Token"}
            | {"headers": {"x-token": "abc"}},
            "targets[0].headers.X-Token: carries the key",
        ),
        ({"preset": "gemini", "headers": {"x-goog-api-key": "k"}}, "targets[0].headers.x-goog"),
        (
            {"name": "j", "kind": "json", "base_url": "http://h", "auth_scheme": "T\u00f6k\u00e9n"},
            'targets[0].auth_scheme: "T\u00f6k\u00e9n" is not a scheme like "Bearer"',
        ),
        (
            {
                "name": "j",
                "kind": "json",
                "base_url": "http://h",
                "auth_header": "Transfer-Encoding",
            },
            'targets[0].auth_header: "Transfer-Encoding" cannot carry a key',
        ),
        (
            {"preset": "openai", "headers": {"Connection": "close"}},
            "targets[0].headers.Connection: is set by the HTTP client",
        ),
        ({"preset": ["openai"]}, 'targets[0].preset: ["openai"] is not one of dos-ai,'),
        ({"preset": {"a": 1}}, "targets[0].preset: { a = 1 } is not one of"),
    ],
    ids=[
        "azure-no-url",
        "bedrock-no-region",
        "bad-region",
        "bedrock-key",
        "region-elsewhere",
        "api-version-elsewhere",
        "bad-api-version",
        "shape-key-elsewhere",
        "bad-id-path",
        "empty-id",
        "relative-path",
        "path-with-query",
        "cursor-param-alone",
        "bad-auth-header",
        "bad-param",
        "key-with-no-header",
        "header-carrying-key",
        "reserved-header",
        "non-ascii-scheme",
        "framing-auth-header",
        "framing-header",
        "list-preset",
        "table-preset",
    ],
)
def test_kinds_settings_are_checked_and_named(target: dict[str, Any], message: str) -> None:
    assert config_error({"targets": [target]}).startswith(message)


def test_kind_only_settings_are_set_per_target_not_in_defaults() -> None:
    message = config_error({"defaults": {"region": "us-east-1"}, "targets": []})
    assert message == "defaults.region: only some kinds take it; set it on each target"
    assert config_error({"defaults": {"items": "models"}}).startswith("defaults.items: only")


def test_kinds_read_their_settings() -> None:
    gemini, bedrock, azure, bare = parse(
        {
            "targets": [
                {"preset": "gemini"},
                {"preset": "bedrock", "region": "ap-southeast-2"},
                {"preset": "azure", "base_url": "https://r.openai.azure.com/"},
                {"name": "bare", "kind": "json", "base_url": "http://h/v1", "items": ""},
            ]
        }
    ).targets
    assert gemini.models_url == "https://generativelanguage.googleapis.com/v1beta/models"
    assert gemini.api_key == KeySource("env", "GEMINI_API_KEY", "targets[0].api_key_env")
    assert (bedrock.name, bedrock.region, bedrock.api_key) == ("bedrock", "ap-southeast-2", None)
    assert bedrock.base_url == "https://bedrock.ap-southeast-2.amazonaws.com"
    assert azure.models_url == "https://r.openai.azure.com/openai/models"
    assert azure.api_key == KeySource("env", "AZURE_OPENAI_API_KEY", "targets[2].api_key_env")
    assert (bare.models_url, bare.shape.items, bare.shape.auth_header) == (
        "http://h/v1/models",
        "",
        "Authorization",
    )


# -- durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(300, 300, id="int-seconds"),
        pytest.param(2.5, 2.5, id="float-seconds"),
        pytest.param("1s", 1, id="1s-the-minimum"),
        pytest.param("90s", 90, id="90s"),
        pytest.param("5m", 300, id="5m"),
        pytest.param("1h", 3600, id="1h"),
        pytest.param("1h30m", 5400, id="1h30m"),
        pytest.param("2d", 172800, id="2d"),
    ],
)
def test_interval_durations(value: object, seconds: float) -> None:
    [target] = parse(one_target(interval=value, timeout=value)).targets
    assert target.interval == seconds
    assert target.timeout == seconds


def test_durations_default_to_five_minutes_and_ten_seconds() -> None:
    [target] = parse(one_target()).targets
    assert (target.interval, target.timeout) == (300, 10)


@pytest.mark.parametrize("key", ["interval", "timeout"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("5 minutes", '"5 minutes"', id="words"),
        pytest.param("", '""', id="empty"),
        pytest.param("-5", '"-5"', id="negative-string"),
        pytest.param(-5, "-5", id="negative-number"),
        pytest.param(0, "0", id="zero"),
        pytest.param("0s", '"0s"', id="zero-seconds"),
        pytest.param(True, "true", id="boolean"),
        pytest.param("abc", '"abc"', id="abc"),
        pytest.param("5x", '"5x"', id="unknown-unit"),
        pytest.param(float("inf"), "inf", id="infinity"),
        pytest.param(10**400, "1" + "0" * 400, id="integer-too-large-for-a-float"),
    ],
)
def test_bad_durations_name_key_and_value(key: str, value: object, shown: str) -> None:
    message = config_error(one_target(**{key: value}))
    prefix = f"targets[0].{key}: "
    assert message.startswith(prefix)
    assert message.removeprefix(prefix).startswith(shown + " ")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("500ms", '"500ms"', id="500ms"),
        pytest.param(0.5, "0.5", id="half-a-second"),
    ],
)
def test_interval_under_one_second_is_rejected(value: object, shown: str) -> None:
    message = config_error(one_target(interval=value))
    assert message.startswith(f"targets[0].interval: {shown}")
    assert "1 s" in message


# -- keys and targets ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param(one_target(intervall="5m"), "targets[0].intervall", id="target-key"),
        pytest.param({"databse": {"url": "sqlite://"}}, "databse", id="top-level-table"),
        pytest.param({"database": {"uri": "sqlite://"}}, "database.uri", id="database-key"),
        pytest.param({"notify": {"url": ["json://x"]}}, "notify.url", id="notify-key"),
    ],
)
def test_unknown_keys_are_rejected_by_name(data: dict[str, Any], key: str) -> None:
    message = config_error(data)
    assert message.startswith(f"{key}: unknown key")


@pytest.mark.parametrize("missing", ["name", "base_url"])
def test_target_without_required_key(missing: str) -> None:
    second = {"name": "other", "base_url": "https://x.example/v1"}
    del second[missing]
    data = one_target()
    data["targets"].append(second)
    assert config_error(data) == f"targets[1].{missing}: is required"


def test_duplicate_target_names_are_rejected() -> None:
    data = one_target()
    data["targets"].append({"name": "dos-ai", "base_url": "https://other.example/v1"})
    message = config_error(data)
    assert message.startswith('targets[1].name: "dos-ai"')
    assert "another target" in message


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("dos ai", id="space"),
        pytest.param("", id="empty"),
        pytest.param("-dos", id="leading-dash"),
        pytest.param("dos-ai\n", id="trailing-newline"),
    ],
)
def test_bad_target_names_are_rejected(name: str) -> None:
    message = config_error(one_target(name=name))
    assert message.startswith(f"targets[0].name: {json.dumps(name)} ")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://files.example.com/v1", id="ftp"),
        pytest.param("https://", id="no-host"),
        pytest.param("https:///v1", id="empty-host"),
        pytest.param("api.dos.ai/v1", id="no-scheme"),
        pytest.param("http://[::1/v1", id="broken-ipv6-host"),
        pytest.param("https://api.dos.ai:99999/v1", id="port-out-of-range"),
    ],
)
def test_bad_base_url_names_key_and_value(url: str) -> None:
    message = config_error(one_target(base_url=url))
    assert message.startswith(f"targets[0].base_url: {json.dumps(url)} ")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://user:hunter2secret@api.dos.ai/v1", id="user-and-password"),
        pytest.param("https://hunter2secret@api.dos.ai/v1", id="token-as-user"),
    ],
)
def test_base_url_with_credentials_is_rejected_without_echoing_them(url: str) -> None:
    message = config_error(one_target(base_url=url))
    assert message.startswith("targets[0].base_url: ")
    assert "api_key_env" in message
    assert "hunter2secret" not in message


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        pytest.param(
            {"api_key_env": "K", "api_key_file": "/k"}, ["api_key_env", "api_key_file"], id="two"
        ),
        pytest.param(
            {"api_key_env": "K", "api_key_file": "/k", "api_key_credential": "k"},
            ["api_key_env", "api_key_file", "api_key_credential"],
            id="three",
        ),
    ],
)
def test_only_one_api_key_source(keys: dict[str, str], named: list[str]) -> None:
    message = config_error(one_target(**keys))
    assert message.startswith("targets[0].api_key_")
    for key in named:
        assert key in message


@pytest.mark.parametrize("key", ["api_key_env", "api_key_file", "api_key_credential"])
def test_empty_api_key_source_is_rejected(key: str) -> None:
    assert config_error(one_target(**{key: ""})) == f"targets[0].{key}: must not be empty"


def test_notify_url_without_scheme_is_rejected() -> None:
    message = config_error({"notify": {"urls": ["json://ok", "ops@example.com"]}})
    assert message.startswith('notify.urls[1]: "ops@example.com" ')


def test_urls_for_puts_global_urls_first_and_lists_each_once() -> None:
    data = one_target(notify_urls=["json://b", "json://c", "json://a"])
    data["notify"] = {"urls": ["json://a", "json://b"]}
    config = parse(data)
    assert config.urls_for(config.targets[0]) == ("json://a", "json://b", "json://c")


# -- the database URL ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        pytest.param("sqlite:///monitor.db", "monitor.db", id="file-name"),
        pytest.param("sqlite:///data/monitor.db", "data/monitor.db", id="sub-folder"),
        pytest.param("sqlite+pysqlite:///monitor.db", "monitor.db", id="with-driver"),
    ],
)
def test_relative_sqlite_path_resolves_against_config_folder(
    tmp_path: Path, url: str, relative: str
) -> None:
    config_file = tmp_path / "etc" / "config.toml"
    config_file.parent.mkdir()
    config_file.write_text(f'[database]\nurl = "{url}"\n')

    config = load_config(config_file, {})

    assert make_url(config.database_url).database == str(tmp_path / "etc" / relative)


def test_relative_sqlite_path_with_relative_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.toml").write_text('[database]\nurl = "sqlite:///monitor.db"\n')
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("etc/config.toml"), {})

    assert make_url(config.database_url).database == str(tmp_path / "etc" / "monitor.db")


def test_relative_sqlite_path_in_folder_with_special_characters(tmp_path: Path) -> None:
    folder = tmp_path / "a b?c#d%20e"
    folder.mkdir()
    (folder / "config.toml").write_text('[database]\nurl = "sqlite:///monitor.db"\n')

    config = load_config(folder / "config.toml", {})

    assert make_url(config.database_url).database == str(folder / "monitor.db")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:////var/lib/model-monitor/monitor.db", id="absolute-sqlite"),
        pytest.param("sqlite:///:memory:", id="memory"),
        pytest.param("sqlite://", id="no-path"),
        pytest.param("postgresql+psycopg://monitor:pw@db.example.com/monitor", id="postgres"),
    ],
)
def test_other_database_urls_are_left_alone(tmp_path: Path, url: str) -> None:
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    assert load_config(tmp_path / "config.toml", {}).database_url == url


def test_database_url_that_is_not_a_url() -> None:
    message = config_error({"database": {"url": "monitor.db"}})
    assert message.startswith('database.url: "monitor.db" ')


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {
                "STATE_DIRECTORY": "/var/lib/model-monitor",
                "XDG_STATE_HOME": "/home/u/.state",
                "HOME": "/home/u",
            },
            "/var/lib/model-monitor/monitor.db",
            id="systemd-state-directory",
        ),
        pytest.param(
            {"XDG_STATE_HOME": "/home/u/.state", "HOME": "/home/u"},
            "/home/u/.state/model-monitor/monitor.db",
            id="xdg-state-home",
        ),
        pytest.param(
            {"HOME": "/home/u"},
            "/home/u/.local/state/model-monitor/monitor.db",
            id="home",
        ),
        pytest.param(
            {"XDG_STATE_HOME": "", "STATE_DIRECTORY": "", "HOME": "/home/u"},
            "/home/u/.local/state/model-monitor/monitor.db",
            id="empty-variables-ignored",
        ),
    ],
)
def test_default_database_path(environ: dict[str, str], expected: str) -> None:
    config = parse({}, environ)
    assert make_url(config.database_url).get_backend_name() == "sqlite"
    assert make_url(config.database_url).database == expected


def test_default_database_path_ignores_relative_xdg_state_home() -> None:
    # The XDG base directory spec: a relative path in $XDG_STATE_HOME is invalid and ignored.
    path = default_database_path({"XDG_STATE_HOME": "state", "HOME": "/home/u"})
    assert path == Path("/home/u/.local/state/model-monitor/monitor.db")


@pytest.mark.parametrize("folder", ["/srv/a?b", "/srv/a%20b", "/srv/a#b"])
def test_default_database_url_survives_special_characters(folder: str) -> None:
    config = parse({}, {"STATE_DIRECTORY": folder})
    assert make_url(config.database_url).database == f"{folder}/monitor.db"


# -- finding and reading the file ----------------------------------------------


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        pytest.param("/opt/a.toml", {"MONITOR_CONFIG": "/opt/b.toml"}, "/opt/a.toml", id="option"),
        pytest.param(None, {"MONITOR_CONFIG": "/opt/b.toml"}, "/opt/b.toml", id="env"),
        pytest.param(None, {}, "/etc/model-monitor/config.toml", id="default"),
        pytest.param(None, {"MONITOR_CONFIG": ""}, "/etc/model-monitor/config.toml", id="empty"),
    ],
)
def test_find_config_path(option: str | None, environ: dict[str, str], expected: str) -> None:
    assert find_config_path(option, environ) == Path(expected)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"[[targets]\nname = 'x'\n", "not valid TOML", id="invalid-toml"),
        pytest.param(b"name = '\xff'\n", "not UTF-8", id="not-utf8"),
    ],
)
def test_unreadable_config_names_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem) as info:
        load_config(path, {})
    assert str(path) in str(info.value)


def test_missing_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path, {})
    assert str(path) in str(info.value)
    assert "MONITOR_CONFIG" in str(info.value)


# -- API keys ----------------------------------------------------------------


def test_no_key_source_means_no_key() -> None:
    assert resolve_key(parse(one_target()).targets[0].api_key, {}) is None


def test_key_from_environment() -> None:
    source = key_source(api_key_env="DOS_API_KEY")
    assert resolve_key(source, {"DOS_API_KEY": "sk-env-123\n"}) == Secret("sk-env-123")


def test_key_from_missing_environment_variable() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_key(key_source(api_key_env="DOS_API_KEY"), {"OTHER": "x"})
    message = str(info.value)
    assert message.startswith("targets[0].api_key_env: ")
    assert '"DOS_API_KEY"' in message


def test_key_from_file_strips_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-file-123\n")
    secret = resolve_key(key_source(api_key_file=str(tmp_path / "key")), {})
    assert secret is not None
    assert secret.reveal() == "sk-file-123"


def test_key_from_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing-key"
    with pytest.raises(ConfigError) as info:
        resolve_key(key_source(api_key_file=str(path)), {})
    message = str(info.value)
    assert message.startswith("targets[0].api_key_file: ")
    assert str(path) in message


@pytest.mark.parametrize("content", ["", "\n", "  \n\n"], ids=["empty", "newline", "blank"])
def test_key_from_empty_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "key").write_text(content)
    with pytest.raises(ConfigError, match="empty") as info:
        resolve_key(key_source(api_key_file=str(tmp_path / "key")), {})
    assert str(info.value).startswith("targets[0].api_key_file: ")


def test_key_from_credential(tmp_path: Path) -> None:
    (tmp_path / "dos_api_key").write_text("sk-cred-123\n")
    source = key_source(api_key_credential="dos_api_key")
    secret = resolve_key(source, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert secret == Secret("sk-cred-123")


def test_key_from_credential_without_credentials_directory() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_key(key_source(api_key_credential="dos_api_key"), {})
    message = str(info.value)
    assert message.startswith("targets[0].api_key_credential: ")
    assert '"dos_api_key"' in message
    assert "CREDENTIALS_DIRECTORY" in message


def test_key_from_missing_credential(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_key(
            key_source(api_key_credential="dos_api_key"), {"CREDENTIALS_DIRECTORY": str(tmp_path)}
        )
    message = str(info.value)
    assert message.startswith("targets[0].api_key_credential: ")
    assert "dos_api_key" in message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("sk-first-4f9a\nsk-second-7c6d", id="two-lines"),
        pytest.param("sk-first-4f9a\x07sk-second-7c6d", id="bell"),
        pytest.param("sk-first-4f9a\tsk-second-7c6d", id="tab"),
        pytest.param("sk-first-4f9a\u00e9sk-second-7c6d", id="non-ascii"),
    ],
)
def test_key_errors_never_show_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "key").write_text(value, encoding="utf-8")
    for source, environ in [
        (key_source(api_key_env="DOS_API_KEY"), {"DOS_API_KEY": value}),
        (key_source(api_key_file=str(tmp_path / "key")), {}),
    ]:
        with pytest.raises(ConfigError, match="control") as info:
            resolve_key(source, environ)
        message = str(info.value)
        assert message.startswith(source.key + ": ")
        assert "sk-first-4f9a" not in message
        assert "sk-second-7c6d" not in message


def test_secret_never_shows_its_value() -> None:
    secret = Secret("sk-live-0123456789")
    assert secret.reveal() == "sk-live-0123456789"
    for shown in (repr(secret), str(secret), f"{secret}", repr({"key": secret}), repr([secret])):
        assert "sk-live" not in shown
        assert "0123456789" not in shown
    assert repr(secret) == "Secret('***')"


# -- the command line ----------------------------------------------------------

GOOD_CONFIG = """\
[database]
url = "sqlite:///monitor.db"

[[targets]]
name = "local"
base_url = "http://127.0.0.1:9/v1"
interval = "90s"
"""


def run_monitor(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("MONITOR_CONFIG", "DOS_API_KEY")}
    base.update(
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        STATE_DIRECTORY=str(tmp_path / "state"),
    )
    base.update(env or {})
    return subprocess.run(
        [str(MONITOR), *args],
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("target_lines", "key", "value"),
    [
        pytest.param('interval = "5 minutes"', "targets[0].interval", '"5 minutes"', id="interval"),
        pytest.param('intervall = "5m"', "targets[0].intervall", "unknown key", id="typo"),
        pytest.param(
            'base_url = "http://[::1/v1"',
            "targets[0].base_url",
            '"http://[::1/v1"',
            id="broken-ipv6-url",
        ),
    ],
)
def test_cli_bad_config_exits_2_with_one_line(
    tmp_path: Path, target_lines: str, key: str, value: str
) -> None:
    lines = ['name = "a"', target_lines]
    if not target_lines.startswith("base_url"):
        lines.append('base_url = "https://api.example.com/v1"')
    path = tmp_path / "bad.toml"
    path.write_text("[[targets]]\n" + "\n".join(lines) + "\n")

    result = run_monitor(tmp_path, "config", "check", "-c", str(path))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert key in line
    assert value in line
    assert result.stdout == ""


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_monitor(tmp_path, "config", "check", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert str(tmp_path / "nope.toml") in line


@pytest.mark.parametrize(
    ("how", "args", "env"),
    [
        pytest.param("option-before", ["-c", "{path}", "config", "check"], {}, id="-c-first"),
        pytest.param("option-after", ["config", "check", "-c", "{path}"], {}, id="-c-last"),
        pytest.param("env", ["config", "check"], {"MONITOR_CONFIG": "{path}"}, id="env"),
    ],
)
def test_cli_config_check_finds_the_config(
    tmp_path: Path, how: str, args: list[str], env: dict[str, str]
) -> None:
    path = tmp_path / "etc" / f"{how}.toml"
    path.parent.mkdir()
    path.write_text(GOOD_CONFIG)
    fill = {"path": str(path)}

    result = run_monitor(
        tmp_path,
        *(a.format_map(fill) for a in args),
        env={k: v.format_map(fill) for k, v in env.items()},
    )

    assert result.returncode == 0, result.stderr
    assert f"config {path}: OK" in result.stdout
    assert str(tmp_path / "etc" / "monitor.db") in result.stdout
    assert "target local: GET http://127.0.0.1:9/v1/models every 90s" in result.stdout


def test_cli_option_beats_environment(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD_CONFIG)
    result = run_monitor(
        tmp_path,
        "config",
        "check",
        "-c",
        str(good),
        env={"MONITOR_CONFIG": str(tmp_path / "missing.toml")},
    )
    assert result.returncode == 0, result.stderr
    assert f"config {good}: OK" in result.stdout


def test_cli_config_check_of_the_example_never_prints_the_key(tmp_path: Path) -> None:
    secret = "sk-example-4f9a8b7c6d5e"
    result = run_monitor(
        tmp_path, "config", "check", "-c", str(EXAMPLE), env={"DOS_API_KEY": secret}
    )
    assert result.returncode == 0, result.stderr
    assert "target dos-ai: GET https://api.dos.ai/v1/models every 300s, timeout 10s" in (
        result.stdout
    )
    assert "key from env" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_cli_config_check_with_a_bad_key_never_prints_it(tmp_path: Path) -> None:
    result = run_monitor(
        tmp_path,
        "config",
        "check",
        "-c",
        str(EXAMPLE),
        env={"DOS_API_KEY": "sk-first-4f9a8b\rsk-second-7c6d5e"},
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "targets[0].api_key_env" in line
    output = result.stdout + result.stderr
    assert "sk-first-4f9a8b" not in output
    assert "sk-second-7c6d5e" not in output


def test_cli_config_check_with_a_missing_key_names_the_variable(tmp_path: Path) -> None:
    result = run_monitor(tmp_path, "config", "check", "-c", str(EXAMPLE))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "targets[0].api_key_env" in line
    assert "DOS_API_KEY" in line


def test_defaults_fill_in_what_targets_leave_out() -> None:
    from monitor.config import parse_config

    config = parse_config(
        {
            "defaults": {"max_concurrency": 8, "interval": "1m", "confirm_polls": 2},
            "retention": {"keep": "90d"},
            "targets": [
                {"name": "a", "base_url": "http://127.0.0.1:1/v1"},
                {"name": "b", "base_url": "http://127.0.0.1:1/v1", "interval": 30},
            ],
        },
        path=None,
        environ={"HOME": "/home/x"},
    )
    a, b = config.targets
    assert (a.interval, a.confirm_polls) == (60.0, 2)
    assert (b.interval, b.confirm_polls) == (30.0, 2)
    assert config.max_concurrency == 8
    assert config.retention_keep == 90 * 86400


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"defaults": {"name": "x"}}, "defaults.name: unknown key"),
        ({"defaults": {"max_concurrency": 0}}, "defaults.max_concurrency: 0 must be"),
        ({"defaults": {"retries": "two"}}, 'defaults.retries: "two" must be'),
        ({"retention": {"keep": "1h"}}, 'retention.keep: "1h" is too short'),
        ({"retention": {"keep": "forever"}}, 'retention.keep: "forever" is not a duration'),
    ],
    ids=["name-not-defaultable", "concurrency-zero", "retries-text", "keep-short", "keep-word"],
)
def test_bad_defaults_and_retention_name_the_key(data: dict[str, object], message: str) -> None:
    from monitor.config import parse_config
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(data, path=None, environ={"HOME": "/home/x"})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"kind": "palm"},
            'targets[0].kind: "palm" is not one of openai, anthropic, openrouter, gemini, cohere, '
            "ollama, azure, bedrock, json",
        ),
        ({"headers": "X-A: 1"}, "targets[0].headers: must be a table"),
        ({"headers": {"Authorization": "Bearer x"}}, "targets[0].headers.Authorization: is set by"),
        ({"headers": {"Bad Name": "x"}}, "targets[0].headers.Bad Name: is not a valid header"),
        ({"headers": {"X-A": "caf\u00e9"}}, "targets[0].headers.X-A: must be a printable ASCII"),
    ],
    ids=["unknown-kind", "headers-not-table", "auth-header", "bad-name", "non-ascii"],
)
def test_kind_and_headers_are_checked(target: dict[str, object], message: str) -> None:
    from monitor.config import parse_config
    from monitor.errors import ConfigError

    raw = {"name": "a", "base_url": "http://127.0.0.1:1/v1", **target}
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": [raw]}, path=None, environ={"HOME": "/home/x"})
    assert str(caught.value).startswith(message)


def test_kind_and_headers_are_read() -> None:
    from monitor.config import parse_config

    config = parse_config(
        {
            "targets": [
                {
                    "name": "claude",
                    "base_url": "https://api.anthropic.com/v1",
                    "kind": "anthropic",
                    "headers": {"X-Team": "ml"},
                }
            ]
        },
        path=None,
        environ={"HOME": "/home/x"},
    )
    (claude,) = config.targets
    assert (claude.kind, claude.headers) == ("anthropic", (("X-Team", "ml"),))


def test_the_examples_commented_providers_parse_too() -> None:
    """The example's other providers are comments (they would poll the internet at the
    quick start); uncommented, they must still be a valid config."""
    from monitor.config import parse_config

    text = (Path(__file__).resolve().parent.parent / "config.example.toml").read_text()
    head, more = text.split("# More providers", 1)
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and ("=" in line or line.startswith("# [[")) else ""
        for line in more.splitlines()
    )
    import tomllib

    config = parse_config(
        tomllib.loads(head + uncommented),
        path=None,
        environ={"HOME": "/home/x", "DOS_API_KEY": "k"},
    )
    presets_in_example = 12
    assert [(t.name, t.kind) for t in config.targets] == [
        ("dos-ai", "openai"),
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("mistral", "openai"),
        ("groq", "openai"),
        ("deepseek", "openai"),
        ("together", "openai"),
        ("openrouter", "openrouter"),
        ("gemini", "gemini"),
        ("cohere", "cohere"),
        ("ollama", "ollama"),
        ("azure", "azure"),
        ("bedrock", "bedrock"),
        ("local-vllm", "openai"),
        ("in-house", "json"),
    ]
    from monitor.presets import PRESETS

    for target in config.targets[1 : 1 + presets_in_example]:  # their URL and key variable
        preset = PRESETS[target.name]
        if "{" not in preset.base_url:
            assert target.base_url == preset.base_url
        assert (target.api_key.ref if target.api_key else None) == preset.api_key_env
    azure, bedrock = config.target("azure"), config.target("bedrock")
    assert azure.models_url == "https://my-resource.openai.azure.com/openai/models"
    assert dict(azure.shape.params) == {"api-version": "2024-10-21"}
    assert bedrock.models_url == "https://bedrock.us-east-1.amazonaws.com/foundation-models"
    in_house = config.target("in-house").shape
    assert (in_house.items, in_house.id, in_house.next, in_house.next_param) == (
        "result.models",
        "slug",
        "result.cursor",
        "after",
    )
    assert (in_house.auth_header, in_house.auth_scheme) == ("X-Gateway-Token", "")
    assert config.target("openrouter").watch_fields == (
        "pricing",
        "context_length",
        "expiration_date",
    )


# -- values in errors are spelled as TOML spells them ------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            one_target(interval=True),
            'targets[0].interval: true is not a duration; use "5m" or 300',
            id="bool-duration",
        ),
        pytest.param(
            one_target(interval="5 minutes"),
            'targets[0].interval: "5 minutes" is not a duration; use "5m" or 300',
            id="string-duration",
        ),
        pytest.param(
            one_target(timeout=[1, 2]),
            'targets[0].timeout: [1, 2] is not a duration; use "5m" or 300',
            id="list-duration",
        ),
        pytest.param(
            one_target(interval=0.5),
            "targets[0].interval: 0.5 is too short; at least 1 s",
            id="float-too-short",
        ),
        pytest.param(
            one_target(interval="500ms"),
            'targets[0].interval: "500ms" is too short; at least 1 s',
            id="string-too-short",
        ),
        pytest.param(
            one_target(timeout=0),
            "targets[0].timeout: 0 must be more than zero",
            id="zero",
        ),
        pytest.param(
            one_target(timeout="400d"),
            'targets[0].timeout: "400d" is too long; at most 365 days',
            id="too-long",
        ),
        pytest.param(
            one_target(retries=True),
            "targets[0].retries: true must be a whole number from 0 to 10",
            id="bool-int",
        ),
        pytest.param(
            one_target(confirm_polls="2"),
            'targets[0].confirm_polls: "2" must be a whole number from 1 to 1000',
            id="string-int",
        ),
        pytest.param(
            one_target(allow_empty="yes"),
            'targets[0].allow_empty: "yes" must be true or false',
            id="string-bool",
        ),
        pytest.param(
            one_target(max_response_bytes=12.5),
            "targets[0].max_response_bytes: 12.5 must be a whole number of at least 1024",
            id="float-bytes",
        ),
        pytest.param(
            one_target(kind=False),
            "targets[0].kind: false is not one of openai, anthropic, openrouter, gemini, "
            "cohere, ollama, azure, bedrock, json",
            id="bool-kind",
        ),
        pytest.param(
            one_target(watch_fields=["id"]),
            'targets[0].watch_fields[0]: "id" is always compared',
            id="watch-id",
        ),
        pytest.param(
            one_target(watch_fields=[{"a": 1}]),
            "targets[0].watch_fields[0]: { a = 1 } is not a field name or dotted path",
            id="watch-table",
        ),
        pytest.param(
            one_target(name="dos ai"),
            "targets[0].name: \"dos ai\" is not a valid name; use letters, digits, '.', '_' or '-'",
            id="name",
        ),
        pytest.param(
            one_target(name=7),
            "targets[0].name: 7 must be a string",
            id="name-number",
        ),
        pytest.param(
            one_target(base_url="ftp://x.example/v1"),
            'targets[0].base_url: "ftp://x.example/v1" is not an http(s) URL',
            id="base-url",
        ),
        pytest.param(
            one_target(api_key_credential="a/b"),
            'targets[0].api_key_credential: "a/b" must be a credential name, not a path',
            id="credential-path",
        ),
        pytest.param(
            {"database": {"url": "monitor.db"}},
            'database.url: "monitor.db" is not an SQLAlchemy database URL',
            id="database-url",
        ),
        pytest.param(
            {"notify": {"urls": ["ops@example.com"]}},
            'notify.urls[0]: "ops@example.com" is not a notification URL (scheme://...)',
            id="notify-url",
        ),
        pytest.param(
            {"metrics": {"listen": "9464"}},
            'metrics.listen: "9464" is not host:port; use "127.0.0.1:9464"',
            id="listen",
        ),
        pytest.param(
            {"retention": {"keep": "1h"}},
            'retention.keep: "1h" is too short; at least 1d',
            id="keep",
        ),
        pytest.param(
            {"notify": {"routes": [{"urls": ["json://x.example/"], "events": ["deleted"]}]}},
            'notify.routes[0].events[0]: "deleted" is not one of added, removed, changed, '
            "down, recovered",
            id="route-event",
        ),
        pytest.param(
            {"notify": {"routes": [{"events": ["removed"]}]}},
            "notify.routes[0].urls: is required (the apprise URLs this route sends to)",
            id="route-no-urls",
        ),
        pytest.param(
            {"notify": {"routes": [{"urls": []}]}},
            "notify.routes[0].urls: is empty; a route sends to at least one URL",
            id="route-empty-urls",
        ),
        pytest.param(
            {"notify": {"routes": [{"urls": ["json://x.example/"], "models": ["a/[b"]}]}},
            "notify.routes[0].models[0]: \"a/[b\" has a '[' with no closing ']'",
            id="route-glob",
        ),
        pytest.param(
            {"notify": {"routes": [{"urls": ["json://x.example/"], "digest": "30s"}]}},
            'notify.routes[0].digest: "30s" is too short; at least 1m',
            id="route-digest",
        ),
        pytest.param(
            {"notify": {"routes": {"urls": ["json://x.example/"]}}},
            "notify.routes: must be an array of tables ([[notify.routes]])",
            id="route-table",
        ),
        pytest.param(
            {"notify": {"routes": [{"urls": ["json://x.example/"], "target": ["a"]}]}},
            None,
            id="route-unknown-key",
        ),
        pytest.param(
            one_target(include="meta-llama/*"),
            'targets[0].include: must be a list of globs, like ["meta-llama/*"]',
            id="include-not-a-list",
        ),
        pytest.param(
            one_target(exclude=["*:free", "meta-llama/["]),
            "targets[0].exclude[1]: \"meta-llama/[\" has a '[' with no closing ']'",
            id="exclude-unclosed",
        ),
        pytest.param(
            {"defaults": {"include": [""]}, **one_target()},
            'defaults.include[0]: "" is not a glob (a non-empty string such as "meta-llama/*")',
            id="defaults-include-empty",
        ),
        pytest.param(
            {"notify": {"max_attempts": 1.0}},
            "notify.max_attempts: 1.0 must be a whole number from 1 to 1000",
            id="float-as-written",
        ),
        pytest.param(
            {"notify": {"retry_max": "it's long"}},
            'notify.retry_max: "it\'s long" is not a duration; use "5m" or 300',
            id="quote-in-string",
        ),
    ],
)
def test_errors_show_values_as_toml_spells_them(data: dict[str, Any], message: str | None) -> None:
    if message is None:  # an unknown key: the message names it
        assert "notify.routes[0].target" in config_error(data)
        return
    assert config_error(data) == message


def test_duplicate_names_and_missing_keys_quote_in_toml_too() -> None:
    data = one_target()
    data["targets"].append({"name": "dos-ai", "base_url": "https://other.example/v1"})
    assert config_error(data) == 'targets[1].name: "dos-ai" is used by another target'
    with pytest.raises(ConfigError) as info:
        resolve_key(key_source(api_key_env="DOS_API_KEY"), {})
    assert str(info.value) == (
        'targets[0].api_key_env: environment variable "DOS_API_KEY" is not set'
    )


def test_a_notification_url_apprise_rejects_is_quoted_in_toml() -> None:
    from monitor.config import verify

    config = parse({"notify": {"urls": ["nosuchservice://x"]}})
    with pytest.raises(ConfigError) as info:
        verify(config)
    assert str(info.value) == (
        'notify.urls[0]: "nosuchservice://…" is not a notification URL apprise understands'
    )


# -- the database driver -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("mysql://monitor:pw@db.example.com/m", "pip install mysqlclient", id="mysql"),
        pytest.param("mariadb+pymysql://monitor@db/m", "pip install pymysql", id="mariadb"),
        pytest.param("postgresql+psycopg2://monitor@db/m", "psycopg2-binary", id="psycopg2"),
        pytest.param("cockroachdb://monitor@db/m", "has no dialect cockroachdb", id="unknown"),
    ],
)
@pytest.mark.usefixtures("without_drivers")
def test_verify_names_the_right_driver_to_install(url: str, says: str) -> None:
    from monitor.config import verify

    with pytest.raises(ConfigError) as info:
        verify(parse({"database": {"url": url}}))
    message = str(info.value)
    assert message.startswith("database.url: ")
    assert says in message
    assert ("model-monitor[postgres]" in message) == ("postgresql" in url)
    assert "pw@" not in message


def test_cli_config_check_refuses_a_database_url_without_its_driver(
    tmp_path: Path, without_drivers: dict[str, str]
) -> None:
    path = tmp_path / "mysql.toml"
    path.write_text(GOOD_CONFIG.replace("sqlite:///monitor.db", "mysql://monitor@db/monitor"))
    result = run_monitor(tmp_path, "-c", str(path), "config", "check", env=without_drivers)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "pip install mysqlclient" in line and "[postgres]" not in line


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"listen": "8080"}, 'web.listen: "8080" is not host:port; use "127.0.0.1:9464"'),
        (
            {"listen": "0.0.0.0:8080"},
            'web.listen: "0.0.0.0:8080" is reachable from other hosts and no password is set',
        ),
        (
            {"listen": "monitor.example.com:8080"},
            'web.listen: "monitor.example.com:8080" is reachable from other hosts',
        ),
        (
            {"password_file": "a", "password_credential": "b"},
            "web.password_credential: set only one of password_file, password_credential",
        ),
        ({"password_credential": "../etc/pw"}, 'web.password_credential: "../etc/pw" must be a'),
        ({"password_file": ""}, "web.password_file: must not be empty"),
        ({"allow_anonymous": "yes"}, 'web.allow_anonymous: "yes" must be true or false'),
        ({"port": 8080}, "web.port"),
    ],
)
def test_bad_web_settings_name_the_key_and_the_value(web: dict[str, Any], message: str) -> None:
    assert message in config_error({**one_target(), "web": web})


def test_web_settings_loopback_password_or_a_said_yes() -> None:
    assert parse(one_target()).web == WebSettings()
    for host in ("127.0.0.1", "[::1]", "localhost", "127.0.0.2"):
        assert parse({"web": {"listen": f"{host}:8080"}}).web.listen == (host.strip("[]"), 8080)
    public = parse({"web": {"listen": "0.0.0.0:8080", "allow_anonymous": True}}).web
    assert public.listen == ("0.0.0.0", 8080) and public.allow_anonymous
    guarded = parse_config(
        {"web": {"listen": "0.0.0.0:8080", "password_file": "web.pw"}},
        path=Path("/etc/model-monitor/config.toml"),
        environ={},
    ).web
    assert guarded.password == KeySource("file", "/etc/model-monitor/web.pw", "web.password_file")
