"""openai + openinference-instrumentation-openai (Arize OpenInference).

OpenInference only traces model calls; the app adds an AGENT span and a TOOL
span by hand with openinference-instrumentation's OITracer helpers, and sets
session.id / user.id on every span with `using_attributes` (the documented
OpenInference context helper). First call non-streaming, second streaming with
include_usage.
"""

import json

from _common import MODEL, OPENAI_TOOL, PROMPT, SESSION_ID, SYSTEM, USER_ID, get_weather, setup_otel, shutdown

tp, _ = setup_otel("openinference-openai")

from openai import OpenAI  # noqa: E402
from openinference.instrumentation import OITracer, TraceConfig, using_attributes  # noqa: E402
from openinference.instrumentation.openai import OpenAIInstrumentor  # noqa: E402

OpenAIInstrumentor().instrument(tracer_provider=tp)
tracer = OITracer(tp.get_tracer("weather_app"), config=TraceConfig())

client = OpenAI()
messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]

with using_attributes(session_id=SESSION_ID, user_id=USER_ID, metadata={"app": "weather"}, tags=["capture"]):
    with tracer.start_as_current_span("weather-agent", openinference_span_kind="agent") as agent:
        agent.set_input(PROMPT)
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0)
        msg = first.choices[0].message
        messages.append(msg.model_dump(exclude_none=True))
        for call in msg.tool_calls or []:
            args = json.loads(call.function.arguments)
            with tracer.start_as_current_span(call.function.name, openinference_span_kind="tool") as tool:
                tool.set_tool(name=call.function.name, description=OPENAI_TOOL["function"]["description"],
                              parameters=OPENAI_TOOL["function"]["parameters"])
                tool.set_input(args)
                result = get_weather(**args)
                tool.set_output(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        stream = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0,
                                                stream=True, stream_options={"include_usage": True})
        answer = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        agent.set_output(answer)
print(answer)
shutdown(tp)
