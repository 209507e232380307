"""openai + opentelemetry-instrumentation-openai-v2 (official OTel contrib).

Usage: openai_v2.py span|event
  span : OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY  (content on the chat spans)
  event: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=EVENT_ONLY (content in OTLP log records)
The capture mode is set here before the instrumentation is imported; the driver
also sets OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.

The openai-v2 instrumentation only traces model calls, so the app wraps the run
in an invoke_agent span and the tool call in an execute_tool span made with
opentelemetry-util-genai's TelemetryHandler (the official helper for that),
(util-genai 1.1b0; gen_ai.conversation.id=session-123 lands on invoke_agent only).
First call non-streaming, second streaming with include_usage.
"""

import json
import os
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "span"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = {
    "span": "SPAN_ONLY", "event": "EVENT_ONLY"}[mode]
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

from _common import (MODEL, OPENAI_TOOL, PROMPT, SESSION_ID, SYSTEM, TOOL_DESCRIPTION,  # noqa: E402
                     get_weather, setup_otel, shutdown)

tp, lp = setup_otel(f"openai-v2-{mode}", logs=True)

from openai import OpenAI  # noqa: E402
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.util.genai.handler import TelemetryHandler  # noqa: E402

OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)
handler = TelemetryHandler(tracer_provider=tp, logger_provider=lp)

client = OpenAI()  # OPENAI_BASE_URL / OPENAI_API_KEY from the driver
messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]

with handler.invoke_local_agent(agent_name="weather-agent", request_model=MODEL) as agent:
    agent.conversation_id = SESSION_ID
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0)
    msg = first.choices[0].message
    messages.append(msg.model_dump(exclude_none=True))
    for call in msg.tool_calls or []:
        args = json.loads(call.function.arguments)
        with handler.tool(call.function.name, tool_call_id=call.id, tool_type="function",
                          tool_description=TOOL_DESCRIPTION) as tool:
            tool.arguments = args
            result = get_weather(**args)
            tool.tool_result = result
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    answer = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
print(answer)
shutdown(tp, lp)
