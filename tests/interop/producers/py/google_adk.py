"""google-adk agent on a Gemini model (google-genai client pointed at the fake
via GOOGLE_GEMINI_BASE_URL), ADK's built-in OTel tracing.

Usage: google_adk.py 1|2
  1: ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1 (legacy gcp.vertex.agent.* attributes;
     content in spans, ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS defaults to true;
     OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true for the log events)
  2: ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=2 (GenAI semconv) with
     OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY
Both set here before ADK is imported. Global TracerProvider + LoggerProvider
(ADK emits gen_ai.client.inference.operation.details log records in schema 2).
Runner with InMemorySessionService: user_id=user-42, session_id=session-123.
"""

import asyncio
import os
import sys

schema = sys.argv[1] if len(sys.argv) > 1 else "2"
os.environ["ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN"] = schema
# Schema 2 reads the enum values; schema 1's v1.28-style log events (emitted by
# ADK's own generate_content span) only hold content for the legacy value "true".
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY" if schema == "2" else "true")

from _common import PROMPT, SESSION_ID, SYSTEM, TOOL_RESULT, USER_ID, setup_otel, shutdown  # noqa: E402

tp, lp = setup_otel(f"adk-schema{schema}", logs=True)

from google.adk.agents import Agent  # noqa: E402
from google.adk.runners import Runner  # noqa: E402
from google.adk.sessions import InMemorySessionService  # noqa: E402
from google.genai import types  # noqa: E402

GEMINI_MODEL = os.environ.get("CAPTURE_GEMINI_MODEL", "gemini-2.5-flash")


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: City name
    """
    return TOOL_RESULT


agent = Agent(
    name="weather_agent",
    model=GEMINI_MODEL,
    description="Answers weather questions.",
    instruction=SYSTEM,
    tools=[get_weather],
    generate_content_config=types.GenerateContentConfig(temperature=0),
)


async def main():
    sessions = InMemorySessionService()
    await sessions.create_session(app_name="weather_app", user_id=USER_ID, session_id=SESSION_ID)
    runner = Runner(agent=agent, app_name="weather_app", session_service=sessions)
    answer = ""
    async for event in runner.run_async(
        user_id=USER_ID, session_id=SESSION_ID,
        new_message=types.Content(role="user", parts=[types.Part(text=PROMPT)]),
    ):
        if event.is_final_response() and event.content and event.content.parts:
            answer = "".join(p.text or "" for p in event.content.parts)
    print(answer)


asyncio.run(main())
shutdown(tp, lp)
