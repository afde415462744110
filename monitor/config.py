"""Configuration: found, parsed and validated once, into frozen dataclasses.

Every error names the key and the bad value, the value spelled as TOML spells it
(:func:`toml_value`), e.g. ``targets[0].interval: "5 minutes" is not a duration; use
"5m" or 300`` or ``targets[0].allow_empty: "yes" must be true or false``.
Secrets are never read here into the config values themselves: a target only
says *where* its key lives (:class:`KeySource`); :func:`resolve_key` reads it.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.globs import ModelFilter, glob_problem
from monitor.redact import LOGGED
from monitor.routing import EVENTS, Audience, Route
from monitor.shapes import BEDROCK_URL, KIND_SHAPES, KINDS, Shape

DEFAULT_CONFIG_PATH = Path("/etc/model-monitor/config.toml")
DEFAULT_INTERVAL = 300.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_DURATION = 365 * 86400.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class KeySource:
    """Where a target's API key is read from (never the key itself)."""

    kind: Literal["env", "file", "credential"]
    ref: str  # variable name, file path or credential name
    # the config key that set it, for error messages; not compared: a target keeps its
    # meaning when it moves in the file (``targets[1]`` becoming ``targets[0]``)
    key: str = field(compare=False)


@dataclass(frozen=True)
class Target:
    """One model-list endpoint to watch."""

    name: str
    base_url: str  # the list is GET {base_url}{shape.path}, /models unless the kind says
    api_key: KeySource | None
    interval: float  # seconds between polls
    timeout: float  # seconds for connect, read and write
    notify_urls: tuple[str, ...]  # extra apprise URLs for this target only
    max_response_bytes: int
    retries: int = 2  # extra tries of one poll after a transient failure
    confirm_polls: int = 1  # good polls a new list must be seen in before it is a change
    allow_empty: bool = False  # an empty list is a real answer, not a glitch
    alert_after_failures: int = 3  # consecutive failed polls before a "down" alert
    repeat_down_every: float | None = None  # seconds between "still down" reminders
    kind: str = "openai"  # how the list is fetched and read (monitor.shapes.KINDS)
    headers: tuple[tuple[str, str], ...] = ()  # extra request headers, (name, value)
    watch_fields: tuple[str, ...] = ()  # dotted paths compared for models in both lists
    include: tuple[str, ...] = ()  # globs: the models compared and alerted on (none: all)
    exclude: tuple[str, ...] = ()  # globs: models left out of comparisons and alerts
    spelled: Shape | None = None  # the shape the target sets (kind json, azure's
    # api_version); None: its kind's own
    region: str | None = None  # AWS region (kind bedrock)

    @property
    def shape(self) -> Shape:
        """How this target's list is asked for and read (monitor.shapes)."""
        return self.spelled or KIND_SHAPES[self.kind]

    @property
    def model_filter(self) -> ModelFilter:
        return ModelFilter(self.include, self.exclude)

    @property
    def models_url(self) -> str:
        return self.base_url.rstrip("/") + self.shape.path


@dataclass(frozen=True)
class WebSettings:
    """The web dashboard and JSON API ([web])."""

    listen: tuple[str, int] | None = None  # the daemon serves the app here too
    password: KeySource | None = None  # password_file / password_credential: basic auth
    allow_anonymous: bool = False  # no password on a non-loopback address, knowingly


@dataclass(frozen=True)
class RetrySettings:
    """How failed alerts are retried ([notify])."""

    max_attempts: int = 10  # failed sends to one URL before its delivery is dead
    retry_initial: float = 30.0  # seconds before the first retry; doubles each time
    retry_max: float = 3600.0  # the longest wait between two tries


@dataclass(frozen=True)
class Config:
    path: Path | None  # the file it came from
    database_url: str  # an SQLAlchemy URL, sqlite paths already absolute
    notify_urls: tuple[str, ...]
    targets: tuple[Target, ...]
    retry: RetrySettings = RetrySettings()
    metrics_listen: tuple[str, int] | None = None  # [metrics] listen: host and port
    max_concurrency: int = 32  # [defaults] max_concurrency: polls in flight at once
    retention_keep: float | None = None  # [retention] keep: seconds of history; None = all
    web: WebSettings = WebSettings()
    routes: tuple[Route, ...] = ()  # [[notify.routes]]

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise ConfigError(f"unknown target {name!r}; configured targets: {known}")

    def all_urls(self) -> tuple[str, ...]:
        """Every notification URL in the config, once each."""
        return tuple(
            dict.fromkeys(
                self.notify_urls
                + tuple(u for t in self.targets for u in t.notify_urls)
                + tuple(u for r in self.routes for u in r.urls)
            )
        )

    def urls_for(self, target: Target) -> tuple[str, ...]:
        """The notification URLs of a target, any event: the global ones, its own, then
        its routes', once each."""
        return self.audience_for(target).urls

    def audience_for(self, target: Target) -> Audience:
        """Who hears of ``target``'s alerts: ``notify.urls`` and its ``notify_urls`` (every
        event), then the routes that serve it; and the other targets ("still at")."""
        every = tuple(dict.fromkeys(self.notify_urls + target.notify_urls))
        routes = ((Route(every),) if every else ()) + tuple(
            r for r in self.routes if r.serves(target.name)
        )
        others = tuple(t.name for t in self.targets if t.name != target.name)
        return Audience(routes, others)


# -- finding and loading -------------------------------------------------------


def find_config_path(option: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """``-c/--config``, else ``$MONITOR_CONFIG``, else ``/etc/model-monitor/config.toml``."""
    if option:
        return Path(option)
    if environ.get("MONITOR_CONFIG"):
        return Path(environ["MONITOR_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {toml_value(str(path))} not found; pass -c/--config or set MONITOR_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"config file {toml_value(str(path))} cannot be read: {exc.strerror}"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {toml_value(str(path))} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {toml_value(str(path))} is not valid TOML: {exc}") from None
    return parse_config(data, path=path.resolve(), environ=environ)


def parse_config(
    data: Mapping[str, Any], *, path: Path | None, environ: Mapping[str, str]
) -> Config:
    _no_unknown_keys(
        data, "", {"database", "notify", "targets", "metrics", "defaults", "retention", "web"}
    )
    base_dir = path.parent if path else Path.cwd()

    database = _table(data, "database")
    _no_unknown_keys(database, "database.", {"url"})
    if "url" in database:
        url = _string(database["url"], "database.url")
        database_url = _absolute_sqlite(url, base_dir, "database.url")
    else:
        from sqlalchemy.engine import URL

        database_url = URL.create(
            "sqlite", database=str(default_database_path(environ))
        ).render_as_string(hide_password=False)

    notify = _table(data, "notify")
    _no_unknown_keys(
        notify, "notify.", {"urls", "max_attempts", "retry_initial", "retry_max", "routes"}
    )
    notify_urls = _url_list(notify.get("urls", []), "notify.urls")
    routes = _routes(notify.get("routes", []))
    retry = RetrySettings(
        max_attempts=_int(notify, "max_attempts", "notify.", default=10, minimum=1, maximum=1000),
        retry_initial=parse_duration(notify.get("retry_initial", 30), "notify.retry_initial"),
        retry_max=parse_duration(notify.get("retry_max", 3600), "notify.retry_max"),
    )

    defaults = dict(_table(data, "defaults"))
    if kind_keys := sorted(_KIND_KEYS & defaults.keys()):
        raise ConfigError(
            f"defaults.{kind_keys[0]}: only some kinds take it; set it on each target"
        )
    _no_unknown_keys(defaults, "defaults.", _DEFAULTABLE | {"max_concurrency"})
    max_concurrency = _int(
        defaults, "max_concurrency", "defaults.", default=32, minimum=1, maximum=512
    )
    defaults.pop("max_concurrency", None)
    # checked once on their own, so an error names defaults.KEY, not every target
    _target({"name": "defaults", "base_url": "http://defaults", **defaults}, "defaults.", base_dir)

    retention = _table(data, "retention")
    _no_unknown_keys(retention, "retention.", {"keep"})
    keep = None
    if "keep" in retention:
        keep = parse_duration(retention["keep"], "retention.keep", maximum=100 * 365 * 86400.0)
        if keep < 86400:
            shown = toml_value(retention["keep"])
            raise ConfigError(f"retention.keep: {shown} is too short; at least 1d")

    raw_targets = data.get("targets", [])
    if not isinstance(raw_targets, list) or not all(isinstance(t, dict) for t in raw_targets):
        raise ConfigError("targets: must be an array of tables ([[targets]])")
    targets = tuple(
        _target({**defaults, **_preset(t, f"targets[{i}]."), **t}, f"targets[{i}].", base_dir)
        for i, t in enumerate(raw_targets)
    )
    seen: set[str] = set()
    for i, target in enumerate(targets):
        if target.name in seen:
            raise ConfigError(
                f"targets[{i}].name: {toml_value(target.name)} is used by another target"
            )
        seen.add(target.name)
    metrics = _table(data, "metrics")
    _no_unknown_keys(metrics, "metrics.", {"listen"})
    listen = parse_listen(metrics["listen"], "metrics.listen") if "listen" in metrics else None
    web = _web(_table(data, "web"), base_dir)
    return Config(
        path=path,
        database_url=database_url,
        notify_urls=notify_urls,
        targets=targets,
        retry=retry,
        metrics_listen=listen,
        max_concurrency=max_concurrency,
        retention_keep=keep,
        web=web,
        routes=routes,
    )


_ROUTE_KEYS = {"urls", "targets", "events", "models", "digest"}
MIN_DIGEST = 60.0  # seconds: a shorter window is no digest


def _routes(value: object) -> tuple[Route, ...]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ConfigError("notify.routes: must be an array of tables ([[notify.routes]])")
    routes = []
    for i, raw in enumerate(value):
        prefix = f"notify.routes[{i}]."
        _no_unknown_keys(raw, prefix, _ROUTE_KEYS)
        if "urls" not in raw:
            raise ConfigError(f"{prefix}urls: is required (the apprise URLs this route sends to)")
        urls = _url_list(raw["urls"], prefix + "urls")
        if not urls:
            raise ConfigError(f"{prefix}urls: is empty; a route sends to at least one URL")
        events = raw.get("events", list(EVENTS))
        if not isinstance(events, list) or not events:
            raise ConfigError(
                f'{prefix}events: must be a list of events, like ["removed"]; any of '
                + ", ".join(EVENTS)
            )
        for j, event in enumerate(events):
            if event not in EVENTS:
                raise ConfigError(
                    f"{prefix}events[{j}]: {toml_value(event)} is not one of {', '.join(EVENTS)}"
                )
        digest = None
        if raw.get("digest") not in (None, "", 0, "off"):
            digest = parse_duration(raw["digest"], prefix + "digest", maximum=31 * 86400.0)
            if digest < MIN_DIGEST:
                shown = toml_value(raw["digest"])
                raise ConfigError(f"{prefix}digest: {shown} is too short; at least 1m")
        routes.append(
            Route(
                urls=urls,
                targets=globs(raw.get("targets", []), prefix + "targets"),
                events=frozenset(events),
                models=globs(raw.get("models", []), prefix + "models"),
                digest=digest,
            )
        )
    return tuple(routes)


def _web(web: Mapping[str, Any], base_dir: Path) -> WebSettings:
    _no_unknown_keys(
        web, "web.", {"listen", "password_file", "password_credential", "allow_anonymous"}
    )
    password = _secret_source(web, "web.", "password_", ("file", "credential"), base_dir)
    anonymous = web.get("allow_anonymous", False)
    if not isinstance(anonymous, bool):
        raise ConfigError(f"web.allow_anonymous: {toml_value(anonymous)} must be true or false")
    settings = WebSettings(None, password, anonymous)
    if "listen" in web:
        listen = parse_listen(web["listen"], "web.listen")
        problem = web_exposure_problem(listen[0], settings)
        if problem:
            raise ConfigError(f"web.listen: {toml_value(web['listen'])} {problem}")
        settings = WebSettings(listen, password, anonymous)
    return settings


def _secret_source(
    raw: Mapping[str, Any],
    prefix: str,
    stem: str,
    kinds: tuple[Literal["env", "file", "credential"], ...],
    base_dir: Path,
) -> KeySource | None:
    """Where a secret is read from: at most one of ``{stem}env``, ``{stem}file`` (relative
    to the config file) and ``{stem}credential`` (a name, not a path), as ``kinds`` allow."""
    sources = [stem + kind for kind in kinds if stem + kind in raw]
    if len(sources) > 1:
        raise ConfigError(f"{prefix}{sources[1]}: set only one of {', '.join(sources)}")
    if not sources:
        return None
    key = sources[0]
    ref = _string(raw[key], prefix + key)
    if not ref:
        raise ConfigError(f"{prefix}{key}: must not be empty")
    kind: Literal["env", "file", "credential"] = key.removeprefix(stem)  # type: ignore[assignment]
    if kind == "credential" and ("/" in ref or ref in (".", "..")):
        raise ConfigError(f"{prefix}{key}: {toml_value(ref)} must be a credential name, not a path")
    if kind == "file":
        ref = str(base_dir / ref)  # relative to the config file, like database paths
    return KeySource(kind=kind, ref=ref, key=prefix + key)


def web_exposure_problem(host: str, web: WebSettings) -> str | None:
    """Why the web app must not listen on ``host`` as configured, or None: an address
    other hosts can reach needs a password, or ``allow_anonymous = true`` said knowingly."""
    if web.password is not None or web.allow_anonymous or _loopback(host):
        return None
    return (
        "is reachable from other hosts and no password is set; set web.password_file "
        "(or web.password_credential), or web.allow_anonymous = true"
    )


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost: it may resolve anywhere


def show_address(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(value: object, key: str) -> tuple[str, int]:
    text = _string(value, key).strip()
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'{key}: {toml_value(value)} is not host:port; use "127.0.0.1:9464"')
    return host, int(port)


def verify(config: Config) -> None:
    """The checks that need more than the file: every notification URL is one apprise
    understands, and the database URL's driver is installed. Run before polling."""
    from sqlalchemy.engine import make_url

    from monitor.notify.send import check_urls, url_secrets
    from monitor.store.engine import driver_problem

    check_urls(config.notify_urls, "notify.urls")
    for i, target in enumerate(config.targets):
        check_urls(target.notify_urls, f"targets[{i}].notify_urls")
    for notify_url in config.all_urls():  # tokens and passwords: masked in every log line
        LOGGED.add(*url_secrets(notify_url))
    problem = driver_problem(make_url(config.database_url))
    if problem is not None:
        raise ConfigError(f"database.url: {problem}")


def default_database_path(environ: Mapping[str, str]) -> Path:
    """``$STATE_DIRECTORY/monitor.db`` under systemd, else the XDG state folder."""
    state_dir = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state_dir:
        return Path(state_dir) / "monitor.db"
    xdg = environ.get("XDG_STATE_HOME", "")
    if not Path(xdg).is_absolute():  # the XDG spec: relative values are ignored
        xdg = str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(xdg) / "model-monitor" / "monitor.db"


# kind = "json" spells its shape out with these (monitor.shapes.Shape)
_SHAPE_KEYS = (
    "path",
    "params",
    "items",
    "id",
    "strip_prefix",
    "next",
    "next_param",
    "more",
    "auth_header",
    "auth_scheme",
)
_TARGET_KEYS = {
    "name",
    "base_url",
    "api_key_env",
    "api_key_file",
    "api_key_credential",
    "interval",
    "timeout",
    "notify_urls",
    "max_response_bytes",
    "retries",
    "confirm_polls",
    "allow_empty",
    "alert_after_failures",
    "repeat_down_every",
    "kind",
    "headers",
    "watch_fields",
    "include",
    "exclude",
    "preset",
    "region",
    "api_version",
    *_SHAPE_KEYS,
}
# what [defaults] may set for every target (not what only some kinds take)
_KIND_KEYS = {"region", "api_version", *_SHAPE_KEYS}
_DEFAULTABLE = (
    _TARGET_KEYS
    - _KIND_KEYS
    - {
        "preset",
        "name",
        "base_url",
        "api_key_env",
        "api_key_file",
        "api_key_credential",
        "notify_urls",
    }
)


def _preset(raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """What a target's ``preset`` fills in: its kind, base URL, key variable (unless the
    target names a key source of its own) and name (unless it has one)."""
    if "preset" not in raw:
        return {}
    from monitor.presets import PRESETS

    name = raw["preset"]
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(
            f"{prefix}preset: {toml_value(name)} is not one of {', '.join(PRESETS)} "
            "('monitor presets' lists them)"
        )
    filled = PRESETS[name].fill()
    if any(key in raw for key in ("api_key_env", "api_key_file", "api_key_credential")):
        filled.pop("api_key_env", None)
    filled.setdefault("name", name)
    return filled


def _target(raw: Mapping[str, Any], prefix: str, base_dir: Path) -> Target:
    _no_unknown_keys(raw, prefix, _TARGET_KEYS)
    if "name" not in raw:
        raise ConfigError(f"{prefix}name: is required")
    name = _string(raw["name"], prefix + "name")
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{prefix}name: {toml_value(name)} is not a valid name; "
            "use letters, digits, '.', '_' or '-'"
        )
    kind = _choice(raw, "kind", prefix, KINDS, default="openai")
    region = _region(raw, prefix, kind)
    if "base_url" not in raw and region is not None:
        raw = {**raw, "base_url": BEDROCK_URL.format(region=region)}
    if "base_url" not in raw:
        hint = " (your resource's endpoint, like https://NAME.openai.azure.com)"
        raise ConfigError(f"{prefix}base_url: is required{hint if kind == 'azure' else ''}")
    base_url = _string(raw["base_url"], prefix + "base_url")
    shown = toml_value(base_url) if "@" not in base_url else "(a URL with credentials)"
    try:
        parts = urlsplit(base_url)
        _ = parts.port  # raises on a port out of range
    except ValueError:
        raise ConfigError(f"{prefix}base_url: {shown} is not a valid http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{prefix}base_url: {shown} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(
            f"{prefix}base_url: must not carry credentials; use api_key_env, api_key_file "
            "or api_key_credential"
        )

    api_key = _secret_source(raw, prefix, "api_key_", ("env", "file", "credential"), base_dir)
    shape = _shape(raw, prefix, kind)
    if api_key is not None and not shape.auth_header:
        why = (
            "signs with AWS credentials from the environment, a profile or a role"
            if shape.signed
            else 'sends no key (auth_header = "")'
        )
        raise ConfigError(f"{api_key.key}: kind {kind} {why}; remove {api_key.key}")
    headers = _headers(raw.get("headers", {}), prefix + "headers")
    if any(name.lower() == shape.auth_header.lower() for name, _ in headers):
        raise ConfigError(
            f"{prefix}headers.{shape.auth_header}: carries the key; put keys in api_key_env, "
            "api_key_file or api_key_credential"
        )

    interval = parse_duration(raw.get("interval", DEFAULT_INTERVAL), prefix + "interval")
    if interval < 1:
        shown = toml_value(raw["interval"])
        raise ConfigError(f"{prefix}interval: {shown} is too short; at least 1 s")
    timeout = parse_duration(raw.get("timeout", DEFAULT_TIMEOUT), prefix + "timeout")
    max_bytes = raw.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise ConfigError(
            f"{prefix}max_response_bytes: {toml_value(max_bytes)} must be a whole number "
            "of at least 1024"
        )
    return Target(
        name=name,
        base_url=base_url,
        api_key=api_key,
        interval=interval,
        timeout=timeout,
        notify_urls=_url_list(raw.get("notify_urls", []), prefix + "notify_urls"),
        max_response_bytes=max_bytes,
        retries=_int(raw, "retries", prefix, default=2, minimum=0, maximum=10),
        confirm_polls=_int(raw, "confirm_polls", prefix, default=1, minimum=1, maximum=1000),
        allow_empty=_bool(raw, "allow_empty", prefix, default=False),
        alert_after_failures=_int(
            raw, "alert_after_failures", prefix, default=3, minimum=1, maximum=10000
        ),
        kind=kind,
        headers=headers,
        spelled=shape if shape != KIND_SHAPES[kind] else None,
        region=region,
        watch_fields=_fields(raw.get("watch_fields", []), prefix + "watch_fields"),
        include=globs(raw.get("include", []), prefix + "include"),
        exclude=globs(raw.get("exclude", []), prefix + "exclude"),
        repeat_down_every=(
            parse_duration(raw["repeat_down_every"], prefix + "repeat_down_every")
            if raw.get("repeat_down_every") not in (None, 0, "", "off")
            else None
        ),
    )


_RESERVED_HEADERS = {
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "host",
    "content-length",
}
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # a header or parameter name
# set by the HTTP client from the request itself: never from config
_FRAMING_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
}
_PATH_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")  # a dotted path into JSON


def _region(raw: Mapping[str, Any], prefix: str, kind: str) -> str | None:
    """A bedrock target's AWS region (required there, refused elsewhere)."""
    if kind != "bedrock":
        if "region" in raw:
            raise ConfigError(f'{prefix}region: only for kind = "bedrock"')
        return None
    if "region" not in raw:
        raise ConfigError(f'{prefix}region: is required for kind = "bedrock" (like "us-east-1")')
    region = _string(raw["region"], prefix + "region")
    if not _REGION_RE.fullmatch(region):
        raise ConfigError(
            f'{prefix}region: {toml_value(region)} is not an AWS region like "us-east-1"'
        )
    from monitor import aws

    if not aws.available():
        raise ConfigError(f'{prefix}kind: "bedrock" needs botocore: {aws.EXTRA}')
    return region


def _shape(raw: Mapping[str, Any], prefix: str, kind: str) -> Shape:
    """The kind's shape; azure's with its ``api_version``, json's as the target spells
    it out (the keys of :data:`_SHAPE_KEYS`)."""
    shape = KIND_SHAPES[kind]
    if kind != "azure" and "api_version" in raw:
        raise ConfigError(f'{prefix}api_version: only for kind = "azure"')
    if kind == "azure" and "api_version" in raw:
        version = _string(raw["api_version"], prefix + "api_version")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", version):
            shown = toml_value(version)
            raise ConfigError(
                f'{prefix}api_version: {shown} is not an API version like "2024-10-21"'
            )
        shape = shape.with_params(**{"api-version": version})
    spelled = {key: raw[key] for key in _SHAPE_KEYS if key in raw}
    if kind != "json":
        if spelled:
            raise ConfigError(f'{prefix}{next(iter(spelled))}: only for kind = "json"')
        return shape
    fields: dict[str, Any] = {}
    for key, value in spelled.items():
        if key == "params":
            fields[key] = _params(value, prefix + key)
            continue
        text = _string(value, prefix + key)
        if key in ("items", "id", "next", "more") and text and not _PATH_RE.fullmatch(text):
            raise ConfigError(
                f"{prefix}{key}: {toml_value(text)} is not a field name or dotted path"
            )
        if key in ("next_param", "auth_header") and text and not _TOKEN_RE.fullmatch(text):
            raise ConfigError(f"{prefix}{key}: {toml_value(text)} is not a valid name")
        if key == "path" and (
            not text.startswith("/")
            or not text.isascii()
            or not text.isprintable()
            or any(c in text for c in " ?#")
        ):
            raise ConfigError(f'{prefix}path: {toml_value(text)} must be a URL path like "/models"')
        if key == "strip_prefix" and not text.isprintable():
            raise ConfigError(f"{prefix}{key}: {toml_value(text)} must be printable")
        if key == "auth_scheme" and text and not _TOKEN_RE.fullmatch(text):
            raise ConfigError(f'{prefix}{key}: {toml_value(text)} is not a scheme like "Bearer"')
        fields[key] = text
    if fields.get("id") == "":
        raise ConfigError(f'{prefix}id: must name the field holding the ID, like "id"')
    if fields.get("auth_header", "").lower() in _FRAMING_HEADERS:
        shown = toml_value(fields["auth_header"])
        raise ConfigError(f"{prefix}auth_header: {shown} cannot carry a key")
    if "more" in fields and not fields.get("next"):
        raise ConfigError(f"{prefix}more: needs next (where the cursor is)")
    if "next_param" in fields and not fields.get("next"):
        raise ConfigError(f"{prefix}next_param: needs next (where the cursor is)")
    return Shape(**fields)


def _params(value: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(
            f'{key}: must be a table of query parameters, like {{ pageSize = "1000" }}'
        )
    params = []
    for name, text in value.items():
        if not _TOKEN_RE.fullmatch(name):
            raise ConfigError(f"{key}.{name}: is not a valid parameter name")
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str) or not text.isprintable():
            raise ConfigError(f"{key}.{name}: {toml_value(text)} must be a string or a number")
        params.append((name, text))
    return tuple(params)


def _choice(
    raw: Mapping[str, Any], name: str, prefix: str, choices: tuple[str, ...], *, default: str
) -> str:
    value = raw.get(name, default)
    if value not in choices:
        raise ConfigError(f"{prefix}{name}: {toml_value(value)} is not one of {', '.join(choices)}")
    return str(value)


def _fields(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{key}: must be a list of field names, like ["pricing.prompt"]')
    fields = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not re.fullmatch(
            r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", item
        ):
            raise ConfigError(f"{key}[{i}]: {toml_value(item)} is not a field name or dotted path")
        if item == "id":
            raise ConfigError(f'{key}[{i}]: "id" is always compared')
        fields.append(item)
    return tuple(dict.fromkeys(fields))


def globs(value: object, key: str) -> tuple[str, ...]:
    """A list of shell-style globs (``include``, ``exclude``, a route's ``targets`` and
    ``models``), each checked."""
    if not isinstance(value, list):
        raise ConfigError(f'{key}: must be a list of globs, like ["meta-llama/*"]')
    for i, item in enumerate(value):
        if problem := glob_problem(item):
            raise ConfigError(f"{key}[{i}]: {toml_value(item)} {problem}")
    return tuple(dict.fromkeys(value))


def _headers(value: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table of header names and values")
    headers = {}
    for name, text in value.items():
        if not _TOKEN_RE.fullmatch(name):
            raise ConfigError(f"{key}.{name}: is not a valid header name")
        if name.lower() in _FRAMING_HEADERS:
            raise ConfigError(f"{key}.{name}: is set by the HTTP client from the request")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigError(
                f"{key}.{name}: is set by model-monitor; put keys in api_key_env, "
                "api_key_file or api_key_credential"
            )
        if not isinstance(text, str) or not text.isascii() or not text.isprintable():
            raise ConfigError(f"{key}.{name}: must be a printable ASCII string")
        headers[name] = text
    return tuple(headers.items())


def _int(
    raw: Mapping[str, Any], name: str, prefix: str, *, default: int, minimum: int, maximum: int
) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(
            f"{prefix}{name}: {toml_value(value)} must be a whole number "
            f"from {minimum} to {maximum}"
        )
    return value


def _bool(raw: Mapping[str, Any], name: str, prefix: str, *, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}{name}: {toml_value(value)} must be true or false")
    return value


# -- values --------------------------------------------------------------------


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_value(value: object) -> str:
    """A value as a TOML file spells it, for error messages: ``true``, ``"5 minutes"``,
    ``[1, 2]``, ``{ a = 1 }``; numbers as Python read them (``300``, ``0.5``, ``inf``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        pairs = (
            f"{k if _BARE_KEY.fullmatch(str(k)) else toml_value(str(k))} = {toml_value(v)}"
            for k, v in value.items()
        )
        return "{ " + ", ".join(pairs) + " }"
    if isinstance(value, date | time):  # TOML's dates and times (datetime is a date)
        return value.isoformat()
    return repr(value)


def parse_moment(text: str, now: datetime) -> datetime:
    """ISO 8601 (naive means UTC), ``now``, or an age like ``2h`` or ``7d`` (that long
    before ``now``); ValueError (or OverflowError) for anything else."""
    value = text.strip()
    if value.lower() == "now":
        return now
    age = duration_seconds(value) if value[-1:].isalpha() else None
    if age is not None:
        return now - timedelta(seconds=age)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def duration_seconds(text: str) -> float | None:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` or ``"300"`` in seconds, else None."""
    text = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if text and re.fullmatch(rf"(?:{_DURATION_PART.pattern})+", text):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return None


def parse_duration(value: object, key: str, *, maximum: float = MAX_DURATION) -> float:
    """Seconds as a number, or a string like ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``."""
    hint = 'use "5m" or 300'
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            raise ConfigError(f"{key}: {toml_value(value)} is too long") from None
    elif isinstance(value, str):
        seconds = duration_seconds(value)
    if seconds is None:
        raise ConfigError(f"{key}: {toml_value(value)} is not a duration; {hint}")
    if not seconds > 0:
        raise ConfigError(f"{key}: {toml_value(value)} must be more than zero")
    if seconds > maximum:
        raise ConfigError(
            f"{key}: {toml_value(value)} is too long; at most {maximum / 86400:g} days"
        )
    return seconds


def resolve_key(
    source: KeySource | None, environ: Mapping[str, str], what: str = "API key"
) -> Secret | None:
    """Read a target's API key (or another secret: ``what``) from where its config says;
    errors name the key, never the value."""
    if source is None:
        return None
    if source.kind == "env":
        value = environ.get(source.ref)
        if value is None:
            raise ConfigError(
                f"{source.key}: environment variable {toml_value(source.ref)} is not set"
            )
    else:
        if source.kind == "file":
            file = Path(source.ref)
        else:
            cred_dir = environ.get("CREDENTIALS_DIRECTORY")
            if not cred_dir:
                raise ConfigError(
                    f"{source.key}: credential {toml_value(source.ref)} needs "
                    "$CREDENTIALS_DIRECTORY "
                    "(set by systemd's LoadCredential=)"
                )
            file = Path(cred_dir) / source.ref
        try:
            value = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source.key}: {toml_value(str(file))} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(
                f"{source.key}: {toml_value(str(file))} cannot be read: {reason}"
            ) from None
    value = value.strip()
    if not value:
        raise ConfigError(f"{source.key}: the {what} from {toml_value(source.ref)} is empty")
    if not value.isascii() or not value.isprintable():
        raise ConfigError(
            f"{source.key}: the {what} from {toml_value(source.ref)} has control or "
            "non-ASCII characters"
        )
    LOGGED.add(value)  # from now on masked in every log line of this process
    return Secret(value)


def _absolute_sqlite(url: str, base_dir: Path, key: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{key}: {toml_value(_redact_url(url))} is not an SQLAlchemy database URL"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    if not Path(database).is_absolute():
        parsed = parsed.set(database=str(base_dir / database))
    return parsed.render_as_string(hide_password=False)


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@", 1)
    return url


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table ([{key}])")
    return value


def _string(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {toml_value(value)} must be a string")
    return value


def _url_list(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list of notification URLs")
    urls = []
    for i, item in enumerate(value):
        url = _string(item, f"{key}[{i}]").strip()
        if "://" not in url:
            raise ConfigError(
                f"{key}[{i}]: {toml_value(url)} is not a notification URL (scheme://...)"
            )
        urls.append(url)
    return tuple(urls)


def _no_unknown_keys(data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{prefix}{key}: unknown key; expected one of {', '.join(sorted(allowed))}"
            )
