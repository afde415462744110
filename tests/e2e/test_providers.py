"""One config watching five providers side by side, each played by a local server
in its documented shape; a price change on OpenRouter is alerted with old and new."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import provider_fakes
import pytest
from conftest import Workspace
from servers import ProviderServer, ScriptedServer, WebhookServer

ANTHROPIC_KEY = "sk-ant-local-0123456789"
CLAUDE = [{"type": "model", "id": f"claude-{n}", "display_name": n} for n in ("a", "b", "c")]
ROUTER = [
    {
        "id": "deepseek/deepseek-v3",
        "pricing": {"prompt": "0.00000027", "completion": "0.0000011"},
        "context_length": 64000,
    },
    {
        "id": "qwen/qwen3-coder",
        "pricing": {"prompt": "0.0000002", "completion": "0.0000008"},
        "context_length": 262144,
    },
]


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {"openai": ProviderServer().start()}
    made["openai"].api_key = "sk-openai-local"
    made["openai"].set_ids(["gpt-5", "gpt-5-mini"])
    made["anthropic"] = ScriptedServer()
    made["openrouter"] = ScriptedServer()
    made["vllm"] = ScriptedServer()
    yield made
    for server in made.values():
        server.stop()


def anthropic(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
    if headers.get("x-api-key") != ANTHROPIC_KEY:
        return 401, {"type": "error", "error": {"message": "invalid x-api-key"}}
    after = query.get("after_id", [None])[0]
    start = 0 if after is None else [m["id"] for m in CLAUDE].index(after) + 1
    page = CLAUDE[start : start + 2]
    return 200, {"data": page, "has_more": start + 2 < len(CLAUDE), "last_id": page[-1]["id"]}


def test_five_providers_side_by_side(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    servers: dict[str, Any],
) -> None:
    router = [dict(m) for m in ROUTER]

    def openrouter(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if query.get("page") == ["2"]:
            return 200, {"data": router[1:]}
        return 200, {"data": router[:1], "links": {"next": "/api/v1/models?page=2"}}

    clock = itertools.count(1_760_000_000)
    servers["anthropic"].route = anthropic
    servers["openrouter"].route = openrouter
    # vLLM: "created" is the time of the request, every time
    servers["vllm"].route = lambda *_: (
        200,
        {
            "object": "list",
            "data": [{"id": "llama-local", "created": next(clock), "max_model_len": 8192}],
        },
    )
    workspace.env.update({"OPENAI_API_KEY": "sk-openai-local", "ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    workspace.write_config(
        [
            {"name": "dos-ai", "base_url": provider.base_url, "api_key_env": "DOS_API_KEY"},
            {
                "name": "openai",
                "base_url": servers["openai"].base_url,
                "api_key_env": "OPENAI_API_KEY",
            },
            {
                "name": "anthropic",
                "kind": "anthropic",
                "base_url": servers["anthropic"].base + "/v1",
                "api_key_env": "ANTHROPIC_API_KEY",
            },
            {
                "name": "openrouter",
                "kind": "openrouter",
                "base_url": servers["openrouter"].base + "/api/v1",
                "watch_fields": ["pricing", "context_length"],
            },
            {"name": "vllm", "base_url": servers["vllm"].base + "/v1"},
        ],
        notify_urls=[webhook.url],
    )
    first = workspace.run("check")
    assert first.code == 0, first.stdout + first.stderr
    assert first.stdout.count("first good poll (baseline)") == 5
    counts = {h["target"]: h["model_count"] for h in workspace.run("history", "--json").json()}
    assert counts == {"dos-ai": 4, "openai": 2, "anthropic": 3, "openrouter": 2, "vllm": 1}

    router[0] = {**router[0], "pricing": {"prompt": "0.00000014", "completion": "0.0000011"}}
    second = workspace.run("check")
    assert second.code == 0
    (post,) = webhook.wait_for(1)  # only the price: vLLM's new "created" is no change
    assert post["title"] == "openrouter: 1 model changed"
    assert (
        "- deepseek/deepseek-v3: pricing.prompt 0.27 → 0.14 per 1M tokens"
        in post["message"].splitlines()
    )
    (change,) = workspace.run("changes", "--json").json()
    assert change["changed"] == [
        {
            "id": "deepseek/deepseek-v3",
            "field": "pricing.prompt",
            "old": "0.00000027",
            "new": "0.00000014",
        }
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_preset_is_all_a_target_needs_with_its_key_in_the_presets_variable(
    workspace: Workspace, provider: ProviderServer
) -> None:
    from servers import SEED_KEY

    presets = {p["name"]: p for p in workspace.run("presets", "--json").json()}
    assert {"dos-ai", "openai", "anthropic", "mistral", "groq", "deepseek", "together"} <= set(
        presets
    )
    assert {"fireworks", "deepinfra", "xai", "cerebras", "openrouter"} <= set(presets)
    assert presets["openai"]["api_key_env"] == "OPENAI_API_KEY"
    # the preset's URL would reach the internet: the same preset pointed at the fake
    workspace.config_path.write_text(
        f'[database]\nurl = "{workspace.db_url}"\n\n[[targets]]\npreset = "openai"\n'
        f'base_url = "{provider.base_url}"\n'
    )
    missing = workspace.run("check")
    assert missing.code == 2 and 'environment variable "OPENAI_API_KEY" is not set' in (
        missing.stderr
    )
    workspace.env["OPENAI_API_KEY"] = SEED_KEY
    polled = workspace.run("check")
    assert polled.code == 0, polled.stderr
    assert polled.stdout.startswith("openai: 4 models")
    assert provider.requests[-1]["headers"]["Authorization"] == f"Bearer {SEED_KEY}"
    assert workspace.run("models", "--json").json()["target"] == "openai"


@pytest.fixture
def natives() -> Iterator[dict[str, ScriptedServer]]:
    made = {kind: ScriptedServer() for kind in ("gemini", "cohere", "ollama", "azure", "bedrock")}
    made["json"] = ScriptedServer()
    yield made
    for server in made.values():
        server.stop()


def test_one_target_of_every_kind_and_a_lifecycle_change_alerted(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    servers: dict[str, Any],
    natives: dict[str, ScriptedServer],
    tmp_path: Any,
) -> None:
    """Every kind in one config, each against a fake of its documented shape (the
    paginated ones over two pages or more); presets pointed at the fakes with an
    explicit base_url. Then Bedrock marks a model LEGACY: the alert says so."""
    from servers import SEED_KEY

    bedrock_models = [dict(m) for m in provider_fakes.BEDROCK_MODELS]
    servers["anthropic"].route = anthropic
    servers["openrouter"].route = lambda p, q, h: (
        (200, {"data": ROUTER[1:]})
        if q.get("page") == ["2"]
        else (200, {"data": ROUTER[:1], "links": {"next": "/api/v1/models?page=2"}})
    )
    natives["gemini"].route = provider_fakes.gemini(provider_fakes.GEMINI_MODELS, size=2)
    natives["cohere"].route = provider_fakes.cohere(provider_fakes.COHERE_MODELS, size=2)
    natives["ollama"].route = provider_fakes.ollama(provider_fakes.OLLAMA_MODELS)
    natives["azure"].route = provider_fakes.azure(provider_fakes.AZURE_MODELS)
    natives["bedrock"].route = lambda p, q, h: provider_fakes.bedrock(bedrock_models)(p, q, h)
    natives["json"].route = lambda p, q, h: (
        (200, {"items": [{"slug": "x/two"}], "after": None})
        if q.get("cursor") == ["c2"]
        else (200, {"items": [{"slug": "x/one"}], "after": "c2"})
    )
    workspace.env.update(
        {
            "OPENAI_API_KEY": SEED_KEY,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "GEMINI_API_KEY": provider_fakes.GEMINI_KEY,
            "CO_API_KEY": provider_fakes.COHERE_KEY,
            "AZURE_OPENAI_API_KEY": provider_fakes.AZURE_KEY,
            "AWS_ACCESS_KEY_ID": provider_fakes.AWS_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": provider_fakes.AWS_SECRET_KEY,
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    workspace.write_config(
        [
            {"preset": "openai", "base_url": provider.base_url},
            {"preset": "anthropic", "base_url": servers["anthropic"].base + "/v1"},
            {"preset": "openrouter", "base_url": servers["openrouter"].base + "/api/v1"},
            {"preset": "gemini", "base_url": natives["gemini"].base + "/v1beta"},
            {"preset": "cohere", "base_url": natives["cohere"].base + "/v1"},
            {"preset": "ollama", "base_url": natives["ollama"].base},
            {"preset": "azure", "base_url": natives["azure"].base},
            {
                "preset": "bedrock",
                "region": provider_fakes.AWS_REGION,
                "base_url": natives["bedrock"].base,
                "watch_fields": ["modelLifecycle.status"],
            },
            {
                "name": "gateway",
                "kind": "json",
                "base_url": natives["json"].base,
                "path": "/catalog",
                "items": "items",
                "id": "slug",
                "strip_prefix": "x/",
                "next": "after",
                "next_param": "cursor",
            },
        ],
        notify_urls=[webhook.url],
    )
    first = workspace.run("check")
    assert first.code == 0, first.stdout + first.stderr
    counts = {h["target"]: h["model_count"] for h in workspace.run("history", "--json").json()}
    assert counts == {
        "openai": 4,
        "anthropic": 3,
        "openrouter": 2,
        "gemini": 3,
        "cohere": 3,
        "ollama": 2,
        "azure": 2,
        "bedrock": 3,
        "gateway": 2,
    }
    listed = workspace.run("models", "--target", "gemini", "--json").json()
    assert sorted(m["id"] for m in listed["models"]) == [
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
    ]
    assert len(natives["gemini"].requests) == 2 and len(natives["cohere"].requests) == 2
    secret = provider_fakes.AWS_SECRET_KEY
    assert secret not in first.stdout + first.stderr

    bedrock_models[0] = {**bedrock_models[0], "modelLifecycle": {"status": "LEGACY"}}
    second = workspace.run("check")
    assert second.code == 0, second.stderr
    (post,) = webhook.wait_for(1)
    assert post["title"] == "bedrock: 1 model changed"
    assert (
        "- anthropic.claude-3-haiku-20240307-v1:0: modelLifecycle.status ACTIVE → LEGACY"
        in post["message"].splitlines()
    )
