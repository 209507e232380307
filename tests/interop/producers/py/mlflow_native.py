"""mlflow-tracing with its native mlflow.* span attributes, exported via OTLP.

MLflow switches to its OTLP exporter when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
(or OTEL_EXPORTER_OTLP_ENDPOINT) is set; MLFLOW_ENABLE_OTEL_GENAI_SEMCONV is left
unset (native mode). mlflow.openai.autolog() traces the two OpenAI calls
(CHAT_MODEL spans), @mlflow.trace makes the AGENT root and the TOOL span;
session/user go into trace metadata (mlflow.trace.session / mlflow.trace.user).
"""

import json

import mlflow
from mlflow.entities import SpanType

from _common import MODEL, OPENAI_TOOL, PROMPT, SESSION_ID, SYSTEM, USER_ID
from _common import get_weather as _get_weather

from openai import OpenAI  # noqa: E402

mlflow.openai.autolog()
client = OpenAI()


@mlflow.trace(span_type=SpanType.TOOL)
def get_weather(city: str) -> str:
    return _get_weather(city)


@mlflow.trace(name="weather_agent", span_type=SpanType.AGENT)
def run_agent(question: str) -> str:
    # No trace tags: with tags set, mlflow 3.17.2's OtelSpanProcessor.on_end writes
    # mlflow.traceTag.* into the ended root span's immutable attributes, raises,
    # and the root span is never exported.
    mlflow.update_current_trace(metadata={"mlflow.trace.session": SESSION_ID, "mlflow.trace.user": USER_ID})
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0)
    msg = first.choices[0].message
    messages.append(msg.model_dump(exclude_none=True))
    for call in msg.tool_calls or []:
        result = get_weather(**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=[OPENAI_TOOL], temperature=0)
    return final.choices[0].message.content


print(run_agent(PROMPT))
from mlflow.tracing.provider import provider  # noqa: E402

provider.get().force_flush()
provider.get().shutdown()
