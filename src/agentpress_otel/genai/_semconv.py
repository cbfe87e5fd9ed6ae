"""The GenAI semantic-convention names we emit, both sets, owned here and nowhere else.

Two sets exist because the GenAI conventions (Development stability) renamed their client metrics after
the release consumers read today:

* **Baseline A** (default): semantic-conventions-genai main through PR #424 on core v1.43.0, what
  ``opentelemetry-util-genai`` 1.3b0 emits: ``gen_ai.client.token.usage`` (histogram keyed by
  ``gen_ai.token.type``), ``gen_ai.client.operation.duration`` and ``gen_ai.client.operation.*`` chunk
  timings, ``gen_ai.usage.cache_creation.input_tokens``.
* **Latest** (``OTEL_SEMCONV_STABILITY_OPT_IN`` contains ``gen_ai_latest_experimental``, the standard
  opt-in value): ``gen_ai.client.inference.usage.*`` counters keyed by ``gen_ai.token.modality``,
  ``gen_ai.client.inference.operation.{input,output}_tokens`` histograms, ``gen_ai.client.inference.duration``
  and ``gen_ai.client.inference.*`` chunk timings, ``gen_ai.usage.cache_write.input_tokens``.

The GenAI conventions define no ``gen_ai_latest_experimental/dup`` (dual emission) value, so there is none.
The choice is read when GenAI telemetry is configured (``instrument()``), not per call.
"""

from __future__ import annotations

import os
from typing import Final

OPT_IN_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_OPT_IN: Final = "gen_ai_latest_experimental"

#: Schema URL of Baseline A (semantic-conventions-genai ``model/manifest.yaml`` at the baseline commit);
#: it defines every gen_ai.* name of the default set.
SCHEMA_URL_BASELINE: Final = "https://opentelemetry.io/schemas/gen-ai-dev/1.42.0-dev"
#: The first standalone semantic-conventions-genai release, which defines the latest names.
SCHEMA_URL_LATEST: Final = "https://opentelemetry.io/schemas/gen-ai/0.1.0"

# --- shared by both sets (unchanged across the rename)
EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"  # non-inference operations in latest

# --- Baseline A
TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # noqa: S105 - a metric name
TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105
OPERATION_TTFC: Final = "gen_ai.client.operation.time_to_first_chunk"
OPERATION_TPOC: Final = "gen_ai.client.operation.time_per_output_chunk"
CACHE_CREATION_ATTR: Final = "gen_ai.usage.cache_creation.input_tokens"

# --- latest
INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
INFERENCE_TTFC: Final = "gen_ai.client.inference.time_to_first_chunk"
INFERENCE_TPOC: Final = "gen_ai.client.inference.time_per_output_chunk"
USAGE_INPUT: Final = "gen_ai.client.inference.usage.input_tokens"
USAGE_OUTPUT: Final = "gen_ai.client.inference.usage.output_tokens"
USAGE_CACHE_READ: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
USAGE_REASONING: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
TOKEN_MODALITY: Final = "gen_ai.token.modality"  # noqa: S105
CACHE_WRITE_ATTR: Final = "gen_ai.usage.cache_write.input_tokens"

#: Operations the latest conventions call inference (their duration moves to gen_ai.client.inference.*).
INFERENCE_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})

#: Metric names of each set (docs/telemetry.md lists both; tests compare against these).
BASELINE_METRICS: Final = (TOKEN_USAGE, CLIENT_OPERATION_DURATION, OPERATION_TTFC, OPERATION_TPOC)
LATEST_METRICS: Final = (INFERENCE_DURATION, INFERENCE_TTFC, INFERENCE_TPOC, USAGE_INPUT, USAGE_OUTPUT,
                         USAGE_CACHE_READ, USAGE_CACHE_WRITE, USAGE_REASONING, OPERATION_INPUT_TOKENS,
                         OPERATION_OUTPUT_TOKENS)


def latest_requested(value: str | None = None) -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` (or ``value``) asks for the latest GenAI names.

    The variable is a comma-separated list shared with other domains (``http``, ``database``...).

    Example::

        latest_requested("http,gen_ai_latest_experimental")  # True
    """
    raw = os.environ.get(OPT_IN_ENV, "") if value is None else value
    return LATEST_OPT_IN in {p.strip().lower() for p in raw.split(",")}


def schema_url(latest: bool) -> str:
    """The schema URL declared on GenAI tracers, meters and loggers for the chosen set."""
    return SCHEMA_URL_LATEST if latest else SCHEMA_URL_BASELINE
