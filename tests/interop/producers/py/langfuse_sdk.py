"""Langfuse Python SDK (OTel-based): an @observe agent calling the model
through Langfuse's OpenAI integration (generation observations) and an
@observe(as_type="tool") tool, with session/user/tags/metadata propagated.

The SDK's own span processor exports to Langfuse; here it is handed the
standard OTLP/HTTP exporter (OTEL_EXPORTER_OTLP_ENDPOINT, set by
capture-python.sh), so what is captured is exactly what the SDK sends.
"""

import json

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from _common import MODEL, OPENAI_TOOL, PROMPT, SESSION_ID, SYSTEM, USER_ID, get_weather

from langfuse import Langfuse, observe, propagate_attributes

langfuse = Langfuse(
    public_key="pk-lf-fake",
    secret_key="sk-lf-fake",
    base_url="http://127.0.0.1:9",  # never reached: spans go to span_exporter
    environment="capture",
    span_exporter=OTLPSpanExporter(),
)

from langfuse.openai import OpenAI  # noqa: E402  (after the client exists)

client = OpenAI()


@observe(as_type="tool", name="get_weather")
def run_tool(city):
    return get_weather(city)


@observe(name="weather-agent")
def agent(question):
    with propagate_attributes(
        session_id=SESSION_ID, user_id=USER_ID, tags=["capture"],
        metadata={"flow": "weather"}, trace_name="weather-flow",
    ):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        first = client.chat.completions.create(
            model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0
        )
        call = first.choices[0].message.tool_calls[0]
        result = run_tool(**json.loads(call.function.arguments))
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": result},
        ]
        stream = client.chat.completions.create(
            model=MODEL, messages=messages, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


print(agent(PROMPT))
langfuse.flush()
langfuse.shutdown()
