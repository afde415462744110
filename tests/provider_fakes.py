"""Local fakes of the providers' native list endpoints, from their documented shapes
(docs/providers.md): each checks the auth its provider expects and pages as its
provider pages. Routes for :class:`servers.ScriptedServer`:
``route(path, query, headers) -> (status, document)``."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Route = Callable[[str, dict[str, list[str]], dict[str, str]], tuple[int, Any]]

GEMINI_KEY = "AIza-local-gemini-0123456789"
COHERE_KEY = "co-local-0123456789"
AZURE_KEY = "azure-local-0123456789abcdef"
AWS_ACCESS_KEY = "AKIALOCALTEST0000001"
AWS_SECRET_KEY = "local/secret+key/0123456789abcdefghijklmn"
AWS_REGION = "eu-west-3"


def _page(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    """One page of ``size`` from the position ``token`` names; the next token or None."""
    start = int(token or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def gemini(models: list[dict[str, Any]], size: int = 2) -> Route:
    """Google's ``GET /v1beta/models``: ``x-goog-api-key``, ``pageSize``/``pageToken``,
    ``nextPageToken`` left out on the last page."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if path != "/v1beta/models":
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        if headers.get("x-goog-api-key") != GEMINI_KEY or "authorization" in headers:
            return 400, {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                }
            }
        if query.get("pageSize") != ["1000"]:
            return 400, {"error": {"message": "expected pageSize=1000 on every page"}}
        page, token = _page(models, query.get("pageToken", [None])[0], size)
        answer: dict[str, Any] = {"models": page}
        if token:
            answer["nextPageToken"] = token
        return 200, answer

    return route


def cohere(models: list[dict[str, Any]], size: int = 2) -> Route:
    """Cohere's ``GET /v1/models``: Bearer, ``page_size``/``page_token``,
    ``next_page_token``."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {COHERE_KEY}":
            return 401, {"message": "invalid api token"}
        if path != "/v1/models" or query.get("page_size") != ["1000"]:
            return 400, {"message": "expected GET /v1/models?page_size=1000"}
        page, token = _page(models, query.get("page_token", [None])[0], size)
        return 200, {"models": page, "next_page_token": token}

    return route


def ollama(models: list[dict[str, Any]]) -> Route:
    """Ollama's own ``GET /api/tags``: no key, every local model at once."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if path != "/api/tags":
            return 404, {"error": "404 page not found"}
        if "authorization" in headers:
            return 400, {"error": "this fake expects no key"}
        return 200, {"models": models}

    return route


def azure(models: list[dict[str, Any]], api_version: str = "2024-10-21") -> Route:
    """Azure OpenAI's ``GET /openai/models?api-version=…``: the key in ``api-key``."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("api-key") != AZURE_KEY or "authorization" in headers:
            return 401, {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API "
                    "endpoint.",
                }
            }
        if path != "/openai/models":
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        if query.get("api-version") != [api_version]:
            return 400, {"error": {"code": "BadRequest", "message": "API version not supported"}}
        return 200, {"data": models, "object": "list"}

    return route


def bedrock(models: list[dict[str, Any]]) -> Route:
    """AWS Bedrock's ``ListFoundationModels`` (``GET /foundation-models``): every request
    must be SigV4-signed for service ``bedrock`` in :data:`AWS_REGION` with the test
    credentials; the signature is checked here, independently of botocore."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        problem = sigv4_problem("GET", path, query, headers)
        if problem:
            return 403, {"message": problem}
        if path != "/foundation-models":
            return 404, {"message": "not found"}
        return 200, {"modelSummaries": models}

    return route


def sigv4_problem(
    method: str,
    path: str,
    query: dict[str, list[str]],
    headers: dict[str, str],
    *,
    service: str = "bedrock",
    region: str = AWS_REGION,
) -> str | None:
    """What is wrong with a request's AWS Signature Version 4; None when it is valid."""
    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        headers.get("authorization", ""),
    )
    if not found:
        return "The request is not signed with AWS Signature Version 4"
    key_id, day, signed_region, signed_service, signed, signature = found.groups()
    if key_id != AWS_ACCESS_KEY:
        return "The security token included in the request is invalid"
    if (signed_service, signed_region) != (service, region):
        return f"Credential should be scoped to {service} in {region}"
    names = signed.split(";")
    when = headers.get("x-amz-date", "")
    if "host" not in names or "x-amz-date" not in names or not when.startswith(day):
        return "host and x-amz-date must be signed"
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/-_.~"),
            "&".join(
                sorted(
                    f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, values in query.items()
                    for v in values
                )
            ),
            "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in names),
            signed,
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = (
        f"AWS4-HMAC-SHA256\n{when}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    )
    key = ("AWS4" + AWS_SECRET_KEY).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "The request signature we calculated does not match the signature you provided"
    return None


# documented examples of each shape's models
GEMINI_MODELS = [
    {
        "name": f"models/gemini-{v}",
        "baseModelId": f"gemini-{v}",
        "version": "001",
        "displayName": f"Gemini {v}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }
    for v in ("2.0-flash", "2.5-pro", "2.5-flash")
]
COHERE_MODELS = [
    {
        "name": name,
        "endpoints": ["chat"],
        "finetuned": False,
        "context_length": 128000,
        "default_endpoints": [],
    }
    for name in ("command-a-03-2025", "command-r-plus", "command-r")
]
OLLAMA_MODELS = [
    {
        "name": name,
        "model": name,
        "modified_at": "2025-05-01T10:00:00Z",
        "size": 4661224676,
        "digest": digest,
        "details": {"family": "llama", "parameter_size": "8B", "quantization_level": "Q4_0"},
    }
    for name, digest in (("llama3:latest", "365c0bd3c000"), ("qwen3:8b", "500a1f067a9f"))
]
AZURE_MODELS = [
    {
        "id": "gpt-4o-2024-08-06",
        "status": "succeeded",
        "capabilities": {"chat_completion": True, "inference": True},
        "lifecycle_status": "generally-available",
        "deprecation": {"inference": 1780000000},
        "created_at": 1722902400,
        "object": "model",
    },
    {
        "id": "gpt-35-turbo-0613",
        "status": "succeeded",
        "capabilities": {"chat_completion": True, "inference": True},
        "lifecycle_status": "generally-available",
        "deprecation": {"inference": 1740000000},
        "created_at": 1686614400,
        "object": "model",
    },
]
BEDROCK_MODELS = [
    {
        "modelArn": f"arn:aws:bedrock:{AWS_REGION}::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": model_id.split(".")[1],
        "providerName": provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "modelLifecycle": {"status": status},
    }
    for model_id, provider, status in (
        ("anthropic.claude-3-haiku-20240307-v1:0", "Anthropic", "ACTIVE"),
        ("anthropic.claude-v2:1", "Anthropic", "LEGACY"),
        ("amazon.titan-text-express-v1", "Amazon", "ACTIVE"),
    )
]
