"""Deterministic model lists of two shapes, shared by the provider server and the generators.

- ``seed``: the DOS AI seed page, ``{"id", "object", "created", "owned_by"}`` (about 80 bytes).
- ``or``: OpenRouter-like, about 1 KB each: name, description, context length,
  architecture, pricing (strings), top provider, supported parameters.

A list is named by its shape and size (``seed4``, ``or400``) and a revision ``"A"`` or
``"A.B"``: the list holds the models of a sliding window ``[A, A + size)`` of an endless
pool of IDs, so going from revision A to A+1 removes one model and adds one; ``B``
changes the window's first model (its prompt price; ``owned_by`` in the seed shape): a
metadata-only change. A trailing ``e`` (``"0e"``) makes the provider send an ``ETag``
and answer ``304 Not Modified`` to a matching ``If-None-Match``; a trailing ``c``
(``"0c"``) makes it answer the next revision at every request (see
:mod:`bench.provider`).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

SEED_IDS = ("dos-ai", "llama-3.3-70b", "deepseek-v3", "llama-3.1-8b")
_VENDORS = ("meta-llama", "qwen", "deepseek", "mistralai", "google", "anthropic", "openai", "x-ai")
_FAMILIES = ("chat", "instruct", "coder", "vision", "reasoner", "mini", "large", "flash")
_PARAMETERS = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "structured_outputs",
)
_SHAPE = re.compile(r"^(seed|or)(\d+)$")


def parse_shape(shape: str) -> tuple[str, int]:
    """``"or400"`` -> ``("or", 400)``; ValueError for anything else."""
    match = _SHAPE.match(shape)
    if not match:
        raise ValueError(f"unknown list shape {shape!r}; use seedN or orN")
    return match.group(1), int(match.group(2))


def parse_rev(rev: str) -> tuple[int, int]:
    start, _, price = rev.removesuffix("e").partition(".")
    return int(start), int(price or 0)


def seed_model(index: int, owner_rev: int = 0) -> dict[str, Any]:
    model_id = SEED_IDS[index] if index < len(SEED_IDS) else f"model-{index:05d}"
    owner = f"dos-ai-{owner_rev}" if owner_rev else "dos-ai"
    return {"id": model_id, "object": "model", "created": 1711000000, "owned_by": owner}


def or_model(index: int, price_rev: int = 0) -> dict[str, Any]:
    vendor = _VENDORS[index % len(_VENDORS)]
    family = _FAMILIES[(index // len(_VENDORS)) % len(_FAMILIES)]
    slug = f"{vendor}/{family}-{index:05d}"
    context = (8192, 32768, 131072, 200000, 1048576)[index % 5]
    prompt = (index % 97 + 1 + price_rev) / 10_000_000
    return {
        "id": slug,
        "canonical_slug": f"{slug}-20250101",
        "hugging_face_id": f"{vendor}/{family.title()}-{index:05d}",
        "name": f"{vendor.title()}: {family.title()} {index:05d}",
        "created": 1700000000 + index * 3600,
        "description": (
            f"{family.title()} {index} is a general-purpose model by {vendor} tuned for "
            "instruction following, multi-turn dialogue, tool use and structured output. "
            "It handles long documents, code in many languages and multilingual chat, and "
            "supports function calling with JSON schemas. Context and pricing vary by "
            "provider; see the model page for details and rate limits."
        ),
        "context_length": context,
        "architecture": {
            "modality": "text+image->text" if index % 3 == 0 else "text->text",
            "input_modalities": ["text", "image"] if index % 3 == 0 else ["text"],
            "output_modalities": ["text"],
            "tokenizer": ("Llama3", "Qwen", "DeepSeek", "Mistral", "Gemini")[index % 5],
            "instruct_type": None,
        },
        "pricing": {
            "prompt": f"{prompt:.10f}".rstrip("0"),
            "completion": f"{prompt * 4:.10f}".rstrip("0"),
            "request": "0",
            "image": "0",
            "web_search": "0",
            "internal_reasoning": "0",
        },
        "top_provider": {
            "context_length": context,
            "max_completion_tokens": 16384,
            "is_moderated": index % 4 == 0,
        },
        "per_request_limits": None,
        "supported_parameters": list(_PARAMETERS[: 6 + index % 6]),
    }


def model_objects(shape: str, rev: str = "0") -> list[dict[str, Any]]:
    """The model objects of one list revision."""
    kind, size = parse_shape(shape)
    start, price = parse_rev(rev)
    if kind == "seed":
        return [seed_model(i, price if i == start else 0) for i in range(start, start + size)]
    return [or_model(i, price if i == start else 0) for i in range(start, start + size)]


@lru_cache(maxsize=4096)
def body(shape: str, rev: str = "0") -> bytes:
    """The JSON a provider answers for this list."""
    return json.dumps({"object": "list", "data": model_objects(shape, rev)}).encode()
