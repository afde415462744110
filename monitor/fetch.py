"""Fetching a target's model list over HTTP and reading the answer.

:func:`fetch_models` does the I/O with a client passed in; :func:`parse_models`
is pure and checks the shape. Every failure is a :class:`FetchError` whose
``reason`` is short and says what was wrong; it never contains the API key.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from monitor import __version__, aws, jsonsafe
from monitor.answers import KnownAnswer, asked_of
from monitor.config import Secret, Target
from monitor.diff import watch_digest
from monitor.errors import FetchError
from monitor.modellist import (
    VOLATILE_FIELDS,
    Model,
    ModelList,
    canonical_json,
    digest_text,
    model_text,
)
from monitor.redact import Redactor
from monitor.shapes import OPENAI, Shape, cursor, entries, json_type, model_id
from monitor.text import one_line, printable

log = structlog.get_logger("monitor.fetch")

RETRY_BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_RETRY_AFTER = 30.0  # a 429 asking to wait longer is a failed poll
MAX_PAGES = 50  # a paginated list longer than this is a failed poll
MAX_REDIRECTS = 5

USER_AGENT = f"model-monitor/{__version__} (+https://github.com/model-monitor/model-monitor)"

_STATUS_REASONS = {
    400: "bad request",
    401: "authentication failed — check the {credential}",
    403: "forbidden — the {credential} may not list models",
    404: "not found — check base_url",
    405: "method not allowed — check base_url",
    408: "request timeout",
    429: "rate limited",
}


@dataclass(frozen=True)
class Fetched:
    """A good answer: the status code, what identifies its list, and warnings worth
    logging. ``models`` is None when the answer is the target's last one again (a 304,
    or the same bytes): it is not parsed again, and its list is already stored."""

    status: int
    list_digest: str  # the list's digest (monitor.modellist.ModelList.digest)
    count: int  # models in the list
    watched: str  # the digest of what is compared: the IDs passing the target's include and
    # exclude, and their watch_fields
    warnings: tuple[str, ...]
    models: ModelList | None = None
    known: KnownAnswer | None = None  # a new one-page answer to remember, when it is one

    @property
    def news(self) -> bool:
        """What is known of the target's answer changed: it was read, or its validators
        are new (then :attr:`known` is what to remember, None: nothing)."""
        return self.models is not None or self.known is not None

    @property
    def seen(self) -> tuple[str, int] | None:
        """For an answer not read again: its stored list's digest and size."""
        return (self.list_digest, self.count) if self.models is None else None

    @classmethod
    def again(cls, known: KnownAnswer, status: int) -> Fetched:
        """A known answer again: nothing to parse, its list stored already."""
        return cls(status, known.list_digest, known.count, known.watched, known.warnings)

    @classmethod
    def parsed(
        cls, status: int, models: ModelList, warnings: tuple[str, ...], target: Target
    ) -> Fetched:
        selected = target.model_filter
        watched = watch_digest(
            ((m.id, m.data) for m in models.models if selected.passes(m.id)), target.watch_fields
        )
        return cls(status, models.digest, len(models), watched, warnings, models)


def make_client() -> httpx.Client:
    """The one HTTP client a process shares; timeouts are set per request."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,  # followed by hand, on the same host only (see _get)
        trust_env=True,
    )


class ConditionalCache:
    """Per target, the last one-page answer: its ``ETag``/``Last-Modified``, so the next
    poll can ask "changed since?" and a ``304 Not Modified`` reuses that list; and a
    digest of its bytes, so an identical answer is not parsed and hashed again. Loaded
    from the database at start (:meth:`monitor.store.Store.known_answers`), so a new
    process recognises an unchanged answer too."""

    def __init__(self, known: dict[str, KnownAnswer] | None = None) -> None:
        self._entries: dict[str, KnownAnswer] = dict(known or {})
        self._lock = threading.Lock()

    def get(self, target: str) -> KnownAnswer | None:
        with self._lock:
            return self._entries.get(target)

    def load(self, known: dict[str, KnownAnswer]) -> None:
        """Add what the database remembers (what this process knows already wins)."""
        with self._lock:
            self._entries = {**known, **self._entries}

    def put(self, target: str, known: KnownAnswer | None) -> None:
        with self._lock:
            if known is None:
                self._entries.pop(target, None)
            else:
                self._entries[target] = known


def fetch_models(
    client: httpx.Client,
    target: Target,
    api_key: Secret | None,
    cache: ConditionalCache | None = None,
) -> Fetched:
    """The whole model list of a target: every page, read as its ``kind`` says.

    Nothing the provider sends carries the key further: its strings (model
    objects, error messages, URLs) are redacted before they reach a reason, the
    database or a log line."""
    shape = target.shape
    signer = aws.signer(target.region or "") if shape.signed else None
    secrets = signer.secrets if signer is not None else ()
    redact = _redactor(api_key.reveal() if api_key is not None else "", *secrets)
    try:
        return _fetch(client, target, api_key, cache, redact, signer)
    except FetchError as exc:  # the last guard: no reason leaves with a secret in it
        shown = redact(exc.reason)
        if shown == exc.reason:
            raise
        raise FetchError(
            shown, status=exc.status, transient=exc.transient, retry_after=exc.retry_after
        ) from None


def _fetch(
    client: httpx.Client,
    target: Target,
    api_key: Secret | None,
    cache: ConditionalCache | None,
    redact: Redactor,
    signer: aws.Signer | None,
) -> Fetched:
    shape = target.shape
    headers: dict[str, str | bytes] = {
        **dict(shape.headers),
        **dict(target.headers),
        **_auth_headers(shape, api_key),
    }
    url, params = target.models_url, dict(shape.params)
    asked = asked_of(target)
    known = cache.get(target.name) if cache is not None else None
    if known is not None and known.asked != asked:
        known = None
    if known is not None:
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
    listed: list[Any] = []
    notes: tuple[str, ...] = ()
    seen: set[str] = set()
    budget = target.max_response_bytes
    for page in range(MAX_PAGES):
        got = _get(client, url, params, headers, target, redact, budget, signer)
        if got is None:  # 304: the list of the answer those validators came with
            assert known is not None
            return Fetched.again(known, 304)
        body, content_type, validator = got
        body_digest = hashlib.blake2b(body, digest_size=16).digest()
        if page == 0:
            headers.pop("If-None-Match", None)
            headers.pop("If-Modified-Since", None)
            if known is not None and known.body_digest == body_digest:
                if validator != (known.etag, known.last_modified):
                    fresh = replace(
                        known,
                        etag=validator[0],
                        last_modified=validator[1],
                        private=_echo_secrets(validator, redact),
                    )
                    return _remembered(
                        cache, target, replace(Fetched.again(fresh, 200), known=fresh)
                    )
                return Fetched.again(known, 200)
        budget -= len(body)
        document, noted = _json(body, content_type, redact)
        notes += noted
        listed += entries(document, shape, redact)
        following = _next_page(target, document, url, redact)
        if following is None:
            checked, warnings = _checked(listed, shape, redact)
            fetched = Fetched.parsed(200, ModelList.from_models(checked), notes + warnings, target)
            if page > 0:  # only a one-page answer can be known as a whole
                return _remembered(cache, target, fetched)
            etag, last_modified = validator
            remember = KnownAnswer(
                asked,
                etag,
                last_modified,
                body_digest,
                fetched.list_digest,
                fetched.count,
                fetched.watched,
                fetched.warnings,
                private=_echo_secrets(validator, redact),
            )
            return _remembered(cache, target, replace(fetched, known=remember))
        url, params = following
        cursor = url + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        if cursor in seen:
            shown = one_line(redact(cursor), 80)
            raise FetchError(f"pagination repeats itself (cursor {shown})", status=200)
        seen.add(cursor)
    raise FetchError(f"more than {MAX_PAGES} pages of models; stopped", status=200)


def _remembered(cache: ConditionalCache | None, target: Target, fetched: Fetched) -> Fetched:
    """``fetched``, its :attr:`Fetched.known` now the cache's entry for the target (the
    poll forgets it again if the answer cannot be stored)."""
    if cache is not None:
        cache.put(target.name, fetched.known)
    return fetched


def _echo_secrets(validators: tuple[bytes | None, bytes | None], redact: Redactor) -> bool:
    """Whether an answer's validators (ETag, Last-Modified) hold the key."""
    return any(
        v is not None and redact(v.decode("latin-1")) != v.decode("latin-1") for v in validators
    )


@functools.lru_cache(maxsize=256)
def _redactor(*keys: str) -> Redactor:
    """The redactor of some keys (none: an empty one), built once per set of keys."""
    return Redactor([k for k in keys if k])


def _auth_headers(shape: Shape, api_key: Secret | None) -> dict[str, str]:
    """The header that carries the key, as the target's shape sends it."""
    if api_key is None or not shape.auth_header:
        return {}
    if not api_key.reveal().isascii():
        raise FetchError("the API key has non-ASCII characters — check the API key")
    scheme = f"{shape.auth_scheme} " if shape.auth_scheme else ""
    return {shape.auth_header: scheme + api_key.reveal()}


def _next_page(
    target: Target, document: Any, url: str, redact: Redactor
) -> tuple[str, dict[str, str]] | None:
    """Where the next page is, as the target's shape says; None on the last page. A
    cursor goes back in the shape's query parameter to the list's own URL; a next-page
    URL is followed on the target's own host only."""
    shape = target.shape
    following = cursor(document, shape)
    if following is None:
        return None
    if shape.next_param:
        return target.models_url, {**dict(shape.params), shape.next_param: following}
    link = _join(url, following, redact)
    return _same_origin(link, _origin(target.models_url), redact), {}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


def _join(base: str, link: str, redact: Redactor, what: str = "next-page link") -> str:
    """``link`` (from a provider: a Location header, a next-page link) resolved
    against ``base``; a FetchError when it is no URL we could request."""
    try:
        if not link.isprintable():  # controls, and lone surrogates too
            raise ValueError(link)
        joined = urljoin(base, link)
        urlsplit(joined).port  # noqa: B018 - raises on a malformed host or port
    except ValueError:
        raise FetchError(f"invalid {what} {_shown(link, redact)}", status=200) from None
    return joined


def _same_origin(url: str, home: tuple[str, str, int | None], redact: Redactor) -> str:
    """``url`` if it is on the target's own scheme, host and port; else a FetchError."""
    try:
        there = _origin(url)
    except ValueError:
        raise FetchError(f"invalid redirect or next-page URL {_shown(url, redact)}") from None
    if there != home:
        scheme, host, _ = there
        raise FetchError(
            f"sent to another host ({one_line(redact(f'{scheme}://{host}'), 80)}); the key is "
            "not sent there. If that host is right, make it the base_url"
        )
    return url


def _shown(text: str, redact: Redactor) -> str:
    """Text a provider sent, for a reason: redacted, on one line, short, quoted."""
    return "'" + one_line(redact(text), 80) + "'"


def _get(
    client: httpx.Client,
    url: str,
    params: dict[str, str],
    headers: dict[str, str | bytes],
    target: Target,
    redact: Redactor,
    budget: int,
    signer: aws.Signer | None = None,
) -> tuple[bytes, str, tuple[bytes | None, bytes | None]] | None:
    """One page: its body, content type and (ETag, Last-Modified); None for a 304.
    Anything but 200 and 304 is a FetchError."""
    deadline = time.monotonic() + target.timeout
    home = _origin(target.models_url)
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            with client.stream(
                "GET",
                url,
                params=params or None,
                headers=[(k.encode(), _header_bytes(v)) for k, v in headers.items()],
                timeout=httpx.Timeout(target.timeout),
                follow_redirects=False,
                auth=signer,  # each request signed for its own URL, redirects too
            ) as response:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    # followed by hand: keys (Authorization, x-api-key, custom headers)
                    # never go to another host, whatever the answer says
                    there = _join(str(response.url), location, redact, "redirect location")
                    url, params = _same_origin(there, home, redact), {}
                    continue
                try:
                    body = _read_capped(response, budget, deadline, target.timeout)
                except FetchError:
                    if response.status_code != 200:  # an oversized error page: the status
                        raise FetchError(
                            _status_reason(response.status_code, b"", redact, signer),
                            status=response.status_code,
                        ) from None
                    raise
                break
        else:
            raise FetchError("too many redirects")
    except httpx.TimeoutException as exc:
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "")
        where = f" {phase}" if phase else ""
        raise FetchError(f"timed out after {target.timeout:g}s{where}", transient=True) from None
    except httpx.ConnectError as exc:
        raise FetchError(_connect_reason(exc), transient=True) from None
    except httpx.InvalidURL:
        raise FetchError(f"invalid URL {_shown(url, redact)}") from None
    except httpx.HTTPError as exc:
        text = one_line(redact(str(exc) or type(exc).__name__))
        raise FetchError(f"HTTP transport error: {text}", transient=True) from None

    status = response.status_code
    if status == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
        return None
    if status != 200:
        raise FetchError(
            _status_reason(status, body, redact, signer),
            status=status,
            transient=status == 429 or status >= 500,
            retry_after=response.headers.get("retry-after") if status == 429 else None,
        )
    return (
        body,
        response.headers.get("content-type", ""),
        (_raw_header(response, b"etag"), _raw_header(response, b"last-modified")),
    )


def _header_bytes(value: str | bytes) -> bytes:
    # our own values are ASCII (config and key are checked); validators go back as they came
    return value if isinstance(value, bytes) else value.encode("ascii")


def _raw_header(response: httpx.Response, name: bytes) -> bytes | None:
    """A header's value as its bytes came: sent back as is, whatever they hold."""
    for key, value in response.headers.raw:
        if key.lower() == name:
            return value
    return None


def fetch_with_retries(
    client: httpx.Client,
    target: Target,
    api_key: Secret | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    cache: ConditionalCache | None = None,
) -> Fetched:
    """:func:`fetch_models`, trying again after transient failures.

    Connection errors, timeouts and 5xx are retried ``target.retries`` times with a
    short backoff; a 429 is retried only when its ``Retry-After`` is at most
    ``MAX_RETRY_AFTER`` seconds, after waiting that long.
    """
    for attempt in range(target.retries + 1):
        try:
            return fetch_models(client, target, api_key, cache)
        except FetchError as exc:
            if not exc.transient or attempt == target.retries:
                raise
            delay = RETRY_BACKOFF * (2**attempt)
            if exc.status == 429:
                wait = parse_retry_after(exc.retry_after, now())
                if wait is None or wait > MAX_RETRY_AFTER:
                    raise
                delay = wait
            log.info(
                "poll retry",
                target=target.name,
                error=exc.reason,
                attempt=attempt + 1,
                wait_s=delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_models(
    body: bytes,
    *,
    content_type: str = "application/json",
    status: int | None = None,
    shape: Shape | None = None,
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Read one page of a list (OpenAI-style unless ``shape`` says otherwise); returns
    the objects (each ID once) and warnings.

    OpenAI-style accepts ``{"data": [...]}``, ``{"data": null}`` (no models) and a bare
    list.
    """
    redact = _redactor()
    shape = shape or OPENAI
    try:
        document, notes = _json(body, content_type, redact)
        models, warnings = _checked(entries(document, shape), shape, redact)
    except FetchError as exc:
        raise FetchError(exc.reason, status=status) from None
    return [dict(m.data) for m in models], notes + warnings


def _json(body: bytes, content_type: str, redact: Redactor) -> tuple[Any, tuple[str, ...]]:
    try:
        return jsonsafe.loads(body)
    except jsonsafe.BadJSON as exc:
        if exc.reason is not None:
            raise FetchError(exc.reason, status=200) from None
        kind = one_line(content_type.split(";")[0], 60) or "no content type"
        # redacted before it is cut short, so no part of a key is left at the cut
        start = one_line(redact(body[:4096].decode("utf-8", "replace")), 40)
        raise FetchError(
            f"response is not JSON ({kind}, starts with '{start}')", status=200
        ) from None


def _checked(
    listed: list[Any], shape: Shape, redact: Redactor
) -> tuple[list[Model], tuple[str, ...]]:
    """Every entry an object with a non-empty string ID; each ID kept once. A model is
    kept whole, its ID as ``id`` (where the shape reads it elsewhere, ``id`` is set to it:
    every list reads alike in history, diffs and alerts)."""
    seen: dict[str, Model] = {}
    warnings: list[str] = []
    for i, entry in enumerate(listed):
        if not isinstance(entry, dict):
            raise FetchError(
                f"JSON of the wrong shape: {shape.label}[{i}] is {json_type(entry)}, not an object",
                status=200,
            )
        found = model_id(entry, shape, i)
        if entry.get("id") != found:
            entry = {"id": found, **{k: v for k, v in entry.items() if k != "id"}}
        model = _model(entry, i, redact, shape.label)
        if model.id in seen:
            shown = one_line(repr(model.id), 80)
            warnings.append(f"duplicate model id {shown} at {shape.label}[{i}]; kept the first")
            continue
        seen[model.id] = model
    return list(seen.values()), tuple(warnings)


def _model(entry: dict[str, Any], index: int, redact: Redactor, label: str) -> Model:
    """One entry as a model: no deeper than the database and the digest can carry,
    only valid Unicode, and with no key in any of its strings."""
    too_deep = f"JSON nested too deep ({label}[{index}] has more than {jsonsafe.MAX_DEPTH} levels)"
    try:
        text = model_text(entry)
    except RecursionError:
        raise FetchError(too_deep, status=200) from None
    # as many brackets as levels at most: the walk only for the odd object that has more
    if text.count("{") + text.count("[") > jsonsafe.MAX_DEPTH and jsonsafe.too_deep(entry):
        raise FetchError(too_deep, status=200)
    if redact and (
        redact.found(text) or any(_holds_secret(entry[k], redact) for k in _volatile(entry))
    ):
        entry = redact.value(entry)
        text = model_text(entry)
    try:
        digest = digest_text(text)
    except UnicodeEncodeError:
        where = printable(redact(jsonsafe.invalid_string(entry) or ""))[:80]
        raise FetchError(
            f"invalid string in {label}[{index}]{where} (not valid Unicode)", status=200
        ) from None
    return Model(id=entry["id"], data=entry, digest=digest)


def _volatile(entry: dict[str, Any]) -> list[str]:
    """The fields left out of the digest that this entry has (``created``)."""
    return [k for k in VOLATILE_FIELDS if k in entry]


def _holds_secret(value: Any, redact: Redactor) -> bool:
    if isinstance(value, str):
        return redact.found(value)
    return isinstance(value, dict | list) and redact.found(canonical_json(value))


def _read_capped(response: httpx.Response, limit: int, deadline: float, timeout: float) -> bytes:
    """The body, refusing more than ``limit`` bytes or a trickle past the poll's timeout."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchError(_too_large(limit), status=response.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(_too_large(limit), status=response.status_code)
        if time.monotonic() > deadline:
            raise FetchError(f"timed out after {timeout:g}s reading the answer", transient=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"response larger than {limit:,} bytes (max_response_bytes)"


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = one_line(str(exc))
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "cannot resolve the host name"
    if "certificate" in lowered or "ssl" in lowered:
        return f"TLS error: {text}"
    return f"cannot connect: {text or type(exc).__name__}"


def _status_reason(
    status: int, body: bytes, redact: Redactor, signer: aws.Signer | None = None
) -> str:
    if status in _STATUS_REASONS:
        credential = "AWS credentials" if signer is not None else "API key"
        reason = f"HTTP {status}: {_STATUS_REASONS[status].format(credential=credential)}"
    elif 500 <= status < 600:
        reason = f"HTTP {status}: server error"
    elif 300 <= status < 400:
        reason = f"HTTP {status}: redirect without a location"
    else:
        reason = f"HTTP {status}: unexpected status"
    detail = _error_detail(body, redact)
    if detail:
        reason += f" ({detail})"
    return reason


def _error_detail(body: bytes, redact: Redactor) -> str | None:
    """The provider's own error message, when it sent one as JSON, kept short."""
    try:
        document, _ = jsonsafe.loads(body)
    except jsonsafe.BadJSON:
        return None
    message: object = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or document.get("message") or document.get("detail")
    if not isinstance(message, str) or not message.strip():
        return None
    # redacted before it is cut short, so no part of a key is left at the cut
    return one_line(redact(message), 160)
