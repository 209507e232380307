"""strands-agents with its built-in OTel tracing, OpenAI-compatible model.

Usage: strands.py default|latest
  default: Strands' default GenAI conventions (gen_ai.system=strands-agents, span events)
  latest : OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (set by the driver)
Telemetry set up the documented way: StrandsTelemetry().setup_otlp_exporter()
(BatchSpanProcessor, endpoint from OTEL_EXPORTER_OTLP_ENDPOINT), flushed at exit.
session.id / user.id go through Agent(trace_attributes=...).
"""

import os
import sys

from _common import MODEL, PROMPT, SESSION_ID, SYSTEM, TOOL_RESULT, USER_ID, service_name

mode = sys.argv[1] if len(sys.argv) > 1 else "default"
os.environ.setdefault("OTEL_SERVICE_NAME", service_name(f"strands-{mode}"))

from strands import Agent, tool  # noqa: E402
from strands.models.openai import OpenAIModel  # noqa: E402
from strands.telemetry import StrandsTelemetry  # noqa: E402

telemetry = StrandsTelemetry().setup_otlp_exporter()


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: City name
    """
    return TOOL_RESULT


model = OpenAIModel(
    client_args={"api_key": os.environ["OPENAI_API_KEY"], "base_url": os.environ["OPENAI_BASE_URL"]},
    model_id=MODEL,
    params={"temperature": 0},
)
agent = Agent(
    name="weather-agent",
    model=model,
    system_prompt=SYSTEM,
    tools=[get_weather],
    callback_handler=None,
    trace_attributes={"session.id": SESSION_ID, "user.id": USER_ID},
)
result = agent(PROMPT)
print(str(result).strip())
telemetry.tracer_provider.force_flush()
telemetry.tracer_provider.shutdown()
