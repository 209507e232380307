"""pydantic-ai agent with its own OTel instrumentation (no logfire), OpenAI chat model.

Agent.instrument_all(InstrumentationSettings(...)) with the default data format
version and include_content=True; plain OTel SDK TracerProvider (SimpleSpanProcessor).
conversation_id=session-123, metadata={"user_id": "user-42"} on the run.
"""

import os

from _common import MODEL, PROMPT, SESSION_ID, SYSTEM, TOOL_RESULT, USER_ID, setup_otel, shutdown

tp, _ = setup_otel("pydantic-ai")

from pydantic_ai import Agent, InstrumentationSettings  # noqa: E402
from pydantic_ai.models.openai import OpenAIChatModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402

Agent.instrument_all(InstrumentationSettings(tracer_provider=tp))

model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"],
                                                       api_key=os.environ["OPENAI_API_KEY"]))
agent = Agent(model, name="weather_agent", instructions=SYSTEM, model_settings={"temperature": 0})


@agent.tool_plain
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: City name
    """
    return TOOL_RESULT


result = agent.run_sync(PROMPT, conversation_id=SESSION_ID, metadata={"user_id": USER_ID})
print(result.output)
shutdown(tp)
