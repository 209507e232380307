"""Shared bits of the capture scripts: the scenario and OTel SDK setup.

Scenario (every script): system prompt SYSTEM, one user prompt PROMPT, one tool
get_weather(city) returning TOOL_RESULT; the fake model first asks for the tool,
then answers with the final text. Session/user ids SESSION_ID / USER_ID where the
library has a place for them.

The OTLP endpoint comes from the standard OTEL_EXPORTER_OTLP_* variables set by
capture-python.sh; spans go through SimpleSpanProcessor so nothing is lost.
"""

import os

SYSTEM = "You are a helpful weather assistant. Use the get_weather tool."
PROMPT = "What is the weather in Paris?"
TOOL_RESULT = "sunny, 22°C"
TOOL_DESCRIPTION = "Get the current weather for a city."
SESSION_ID = "session-123"
USER_ID = "user-42"
MODEL = os.environ.get("CAPTURE_MODEL", "gpt-4o-mini")

OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": TOOL_DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return TOOL_RESULT


def service_name(default):
    return os.environ.get("OTEL_SERVICE_NAME", default)


def setup_otel(name, logs=False):
    """Global TracerProvider (+ LoggerProvider when logs) exporting OTLP/HTTP."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": service_name(name)})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tp)
    lp = None
    if logs:
        from opentelemetry import _logs
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter()))
        _logs.set_logger_provider(lp)
    return tp, lp


def shutdown(*providers):
    for p in providers:
        if p is not None:
            p.force_flush()
            p.shutdown()
