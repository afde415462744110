"""Requests to AWS (``kind = "bedrock"``), signed with the AWS SDK's own SigV4 signer.

botocore is optional (``pip install 'model-monitor[aws]'``). Credentials come from
the standard AWS chain: the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), a shared profile (``AWS_PROFILE``),
a container or instance role. They are found once per process; temporary ones (a role,
SSO) refresh themselves, and a reload (SIGHUP) reads the chain again, so a key rotated
in a credentials file is picked up. The secret parts never reach a log line, a reason
or the database: they join the process's redactor the moment they are read.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qsl

import httpx

from monitor.errors import FetchError
from monitor.redact import LOGGED

SERVICE = "bedrock"
EXTRA = "pip install 'model-monitor[aws]'"

_lock = threading.Lock()
_session: Any = None  # one botocore session per process: it caches what the chain found
_shown: tuple[str, ...] = ()  # the secret parts last added to the log masker


def available() -> bool:
    """Whether botocore is installed."""
    return importlib.util.find_spec("botocore") is not None


def forget() -> None:
    """Read the credential chain afresh at the next poll (on SIGHUP: a rotated key in
    a credentials file is picked up without a restart)."""
    global _session
    with _lock:
        _session = None


class Signer(httpx.Auth):
    """Signs each request (each page, each redirect) for its own URL: SigV4, service
    ``bedrock``, the target's region."""

    def __init__(self, region: str, credentials: Any) -> None:
        self.region = region
        self._credentials = credentials  # botocore's frozen credentials

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be shown: the secret key and the session token."""
        c = self._credentials
        return tuple(s for s in (c.secret_key, c.token) if s)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # only what the signature covers: the method, the URL (host, path and the query,
        # decoded: the signer encodes it as AWS does) and the date the signer adds; the
        # body of a GET is empty
        url = request.url
        signed = AWSRequest(
            method=request.method,
            url=str(url.copy_with(query=None)),
            params=dict(parse_qsl(url.query.decode("ascii"), keep_blank_values=True)),
        )
        SigV4Auth(self._credentials, SERVICE, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


def signer(region: str) -> Signer:
    """A signer with the credentials the AWS chain finds now; a FetchError when there
    are none (a failed poll: the next one looks again)."""
    if not available():
        raise FetchError(f"kind bedrock needs botocore: {EXTRA}")
    import botocore.exceptions
    import botocore.session

    global _session
    try:
        with _lock:
            if _session is None:
                _session = botocore.session.get_session()
            found = _session.get_credentials()
        frozen = found.get_frozen_credentials() if found is not None else None
    except botocore.exceptions.BotoCoreError as exc:
        raise FetchError(f"AWS credentials: {exc}") from None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise FetchError(
            "no AWS credentials found (environment, AWS_PROFILE, or a container or instance role)"
        )
    made = Signer(region, frozen)
    _mask(made.secrets)
    return made


def _mask(secrets: tuple[str, ...]) -> None:
    """Mask these in every log line from now on; stop masking the ones they replace."""
    global _shown
    with _lock:
        if secrets == _shown:
            return
        LOGGED.add(*secrets)
        LOGGED.discard(*(s for s in _shown if s not in secrets))
        _shown = secrets
