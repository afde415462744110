"""Presets: a provider in one line of config (``preset = "openai"``). A preset fills a
target's ``kind``, ``base_url`` and default ``api_key_env``; anything the target sets
itself wins, and ``name`` defaults to the preset's name. The URLs are the providers'
documented OpenAI-compatible (or native) list endpoints' bases; see docs/providers.md.
``azure`` and ``bedrock`` name no host: a target gives its resource's endpoint as
``base_url`` (azure) or its ``region`` (bedrock)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.shapes import BEDROCK_URL


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    base_url: str  # with a {placeholder}: the target supplies it (azure's resource
    # endpoint as base_url, bedrock's region)
    api_key_env: str | None  # None: the list needs no key (or, on bedrock, AWS's chain)
    watch: tuple[str, ...] = ()  # fields worth watch_fields on this provider

    def fill(self) -> dict[str, object]:
        """The target keys this preset supplies."""
        keys: dict[str, object] = {"kind": self.kind}
        if "{" not in self.base_url:
            keys["base_url"] = self.base_url
        if self.api_key_env is not None:
            keys["api_key_env"] = self.api_key_env
        return keys


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("dos-ai", "openai", "https://api.dos.ai/v1", "DOS_API_KEY"),
        Preset("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        Preset("anthropic", "anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
        Preset(
            "mistral",
            "openai",
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            ("deprecation", "max_context_length"),
        ),
        Preset(
            "groq",
            "openai",
            "https://api.groq.com/openai/v1",
            "GROQ_API_KEY",
            ("context_window",),
        ),
        Preset("deepseek", "openai", "https://api.deepseek.com", "DEEPSEEK_API_KEY"),
        Preset(
            "together",
            "openai",
            "https://api.together.xyz/v1",
            "TOGETHER_API_KEY",
            ("pricing", "context_length"),
        ),
        Preset("fireworks", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        Preset("deepinfra", "openai", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
        Preset("xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY"),
        Preset("cerebras", "openai", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
        Preset(
            "openrouter",
            "openrouter",
            "https://openrouter.ai/api/v1",
            None,
            ("pricing", "context_length", "expiration_date"),
        ),
        Preset(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "GEMINI_API_KEY",
            ("version", "inputTokenLimit", "outputTokenLimit", "supportedGenerationMethods"),
        ),
        Preset(
            "cohere",
            "cohere",
            "https://api.cohere.com/v1",
            "CO_API_KEY",
            ("endpoints", "context_length"),
        ),
        Preset("ollama", "ollama", "http://127.0.0.1:11434", None, ("digest",)),
        Preset(
            "azure",
            "azure",
            "https://{resource}.openai.azure.com",
            "AZURE_OPENAI_API_KEY",
            ("lifecycle_status", "deprecation"),
        ),
        Preset(
            "bedrock",
            "bedrock",
            BEDROCK_URL,
            None,
            ("modelLifecycle.status",),
        ),
    )
}
