"""LiveKit Agents 1.x in its text-only test mode (no LiveKit server, no room):
AgentSession(llm=openai.LLM(base_url=<fake>)) runs one user turn; the agent
has one function tool. Telemetry the documented way:
livekit.agents.telemetry.set_tracer_provider(tracer_provider), content on
(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT unset = on). A global
LoggerProvider is set too, in case the framework logs through it (its
chat-history records go to LiveKit Cloud only, with a job context).
"""

import asyncio
import os

from _common import MODEL, PROMPT, SYSTEM, TOOL_DESCRIPTION, TOOL_RESULT, setup_otel, shutdown

from livekit.agents import Agent, AgentSession, function_tool, telemetry  # noqa: E402
from livekit.plugins import openai  # noqa: E402


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=SYSTEM)

    @function_tool(description=TOOL_DESCRIPTION)
    async def get_weather(self, city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: City name
        """
        return TOOL_RESULT


async def main(tp):
    telemetry.set_tracer_provider(tp)
    model = openai.LLM(model=MODEL, base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    async with AgentSession(llm=model) as session:
        await session.start(WeatherAgent())
        result = await session.run(user_input=PROMPT)
        for ev in result.events:
            print(type(ev).__name__, getattr(ev, "item", None))


tp, lp = setup_otel("livekit-agents", logs=True)
asyncio.run(main(tp))
shutdown(tp, lp)
