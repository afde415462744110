"""How a provider's model list is asked for and read: its :class:`Shape`.

Every kind is a shape: where the list is (a path under ``base_url`` and query
parameters), how the key is sent (a header and a scheme), where the models are in
the answer (a dotted path to a list), which field is a model's ID, and how the next
page is found (a cursor sent back in a query parameter, or a next-page URL).
``kind = "json"`` lets a user spell a shape out; the built-in kinds are shapes with
names (:data:`KIND_SHAPES`). Reading a page is pure: the functions here take the
parsed JSON and return entries, IDs and cursors, or raise :class:`FetchError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from monitor import jsonsafe
from monitor.errors import FetchError
from monitor.text import one_line

ANTHROPIC_VERSION = "2023-06-01"
AZURE_API_VERSION = "2024-10-21"  # the GA version of Azure OpenAI's data-plane REST API
PAGE_SIZE = "1000"  # the largest page the paginated lists allow
BEDROCK_URL = "https://bedrock.{region}.amazonaws.com"  # a bedrock target's base_url


@dataclass(frozen=True)
class Shape:
    """What a kind asks and how its answer reads."""

    path: str = "/models"  # appended to base_url
    params: tuple[tuple[str, str], ...] = ()  # query parameters of every page
    items: str = "data"  # dotted path to the list of models; "" when the answer is the list
    bare: bool = False  # a bare JSON list is accepted too (OpenAI-compatible servers)
    id: str = "id"  # dotted path, in a model, to its ID
    strip_prefix: str = ""  # taken off the front of an ID ("models/" on Gemini)
    next: str = ""  # dotted path to the next page's cursor (with next_param) or URL
    next_param: str = ""  # the query parameter that carries the cursor back
    more: str = ""  # dotted path to a boolean "there are more pages" (Anthropic)
    auth_header: str = "Authorization"  # "" sends no key
    auth_scheme: str = "Bearer"  # "" sends the key as it is
    headers: tuple[tuple[str, str], ...] = ()  # fixed headers of the kind
    signed: bool = False  # AWS SigV4 (bedrock) instead of a key

    @property
    def label(self) -> str:
        """How a model's place in the answer is named in reasons: ``data[3]``."""
        return self.items or "items"

    def with_params(self, **params: str) -> Shape:
        return replace(self, params=tuple({**dict(self.params), **params}.items()))


OPENAI = Shape(bare=True)

KIND_SHAPES: dict[str, Shape] = {
    "openai": OPENAI,
    "anthropic": Shape(
        params=(("limit", PAGE_SIZE),),
        bare=True,
        next="last_id",
        next_param="after_id",
        more="has_more",
        auth_header="x-api-key",
        auth_scheme="",
        headers=(("anthropic-version", ANTHROPIC_VERSION),),
    ),
    "openrouter": Shape(bare=True, next="links.next"),
    "gemini": Shape(
        params=(("pageSize", PAGE_SIZE),),
        items="models",
        id="name",
        strip_prefix="models/",
        next="nextPageToken",
        next_param="pageToken",
        auth_header="x-goog-api-key",
        auth_scheme="",
    ),
    "cohere": Shape(
        params=(("page_size", PAGE_SIZE),),
        items="models",
        id="name",
        next="next_page_token",
        next_param="page_token",
    ),
    "ollama": Shape(path="/api/tags", items="models", id="name"),
    "azure": Shape(
        path="/openai/models",
        params=(("api-version", AZURE_API_VERSION),),
        bare=True,
        auth_header="api-key",
        auth_scheme="",
    ),
    "bedrock": Shape(
        path="/foundation-models",
        items="modelSummaries",
        id="modelId",
        auth_header="",
        auth_scheme="",
        signed=True,
    ),
    "json": Shape(),
}
KINDS = tuple(KIND_SHAPES)


def dotted(document: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` at a dotted path through JSON objects."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def entries(
    document: Any, shape: Shape, redact: Callable[[str], str] = lambda text: text
) -> list[Any]:
    """The model entries of one page. ``redact`` masks secrets in what the provider
    sent before a reason shows it (and before it is cut short, so no part is left)."""
    if isinstance(document, list) and (shape.bare or not shape.items):
        return document
    if not shape.items:
        raise FetchError(
            f"JSON of the wrong shape: expected a list, got {json_type(document)}", status=200
        )
    if not isinstance(document, dict):
        raise FetchError(
            f"JSON of the wrong shape: expected an object, got {json_type(document)}",
            status=200,
        )
    found, listed = dotted(document, shape.items)
    if not found:
        names = sorted(map(str, document))[:6]
        keys = ", ".join(one_line(redact(k), 40) for k in names) or "none"
        raise FetchError(
            f'JSON of the wrong shape: no "{shape.items}" list (keys: {keys})', status=200
        )
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise FetchError(
            f'JSON of the wrong shape: "{shape.items}" is {json_type(listed)}, not a list',
            status=200,
        )
    return listed


def model_id(entry: dict[str, Any], shape: Shape, index: int) -> str:
    """A model's ID: the field the shape names, its prefix taken off."""
    where = f"{shape.label}[{index}]"
    found, value = dotted(entry, shape.id)
    if not found:
        raise FetchError(f'model entry {where} has no "{shape.id}"', status=200)
    if isinstance(value, str) and shape.strip_prefix and value.startswith(shape.strip_prefix):
        value = value[len(shape.strip_prefix) :]
    if not isinstance(value, str) or not value.strip():
        raise FetchError(
            f'model entry {where} has an invalid "{shape.id}" ({json_type(value)}); '
            "expected a non-empty string",
            status=200,
        )
    return value


def cursor(document: Any, shape: Shape) -> str | None:
    """The next page's cursor (or URL) an answer gives; None on the last page."""
    if not shape.next or not isinstance(document, dict):
        return None
    if shape.more:
        _, more = dotted(document, shape.more)
        if more is not True:
            return None
    _, value = dotted(document, shape.next)
    if shape.next_param and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a numeric cursor (an offset); a next-page URL is a string
    if value is None or value == "":
        if shape.more:
            raise FetchError(
                f'"{shape.more}" without a "{shape.next}" to continue from', status=200
            )
        return None
    if not isinstance(value, str):
        raise FetchError(
            f'invalid "{shape.next}" ({json_type(value)}); expected a string', status=200
        )
    if not jsonsafe.is_text(value):
        raise FetchError(f'invalid string in "{shape.next}" (not valid Unicode)', status=200)
    return value


def json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
