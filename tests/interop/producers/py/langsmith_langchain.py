"""LangChain (langchain-core + langchain-openai ChatOpenAI) traced by LangSmith's
OTel exporter only (LANGSMITH_TRACING=true, LANGSMITH_TRACING_MODE=otel, both
set by the driver). LangSmith uses the already-set global TracerProvider
(SimpleSpanProcessor); wait_for_all_tracers() drains LangSmith's background queue.

Agent loop: a RunnableLambda "weather_agent" (chain run) calls the bound chat
model, runs the @tool get_weather on the returned tool call (tool run), then
calls the model again. Thread/user via run metadata thread_id / user_id.
"""

import os

from _common import MODEL, PROMPT, SESSION_ID, SYSTEM, TOOL_RESULT, USER_ID, setup_otel, shutdown

os.environ.setdefault("LANGSMITH_TRACING", "true")
os.environ.setdefault("LANGSMITH_TRACING_MODE", "otel")
tp, _ = setup_otel("langsmith-langchain")

from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_core.tracers.langchain import wait_for_all_tracers  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return TOOL_RESULT


llm = ChatOpenAI(model=MODEL, temperature=0).bind_tools([get_weather])


def run_agent(question: str) -> str:
    messages = [SystemMessage(SYSTEM), HumanMessage(question)]
    ai = llm.invoke(messages)
    messages.append(ai)
    for call in ai.tool_calls:
        messages.append(get_weather.invoke(call))
    return llm.invoke(messages).content


agent = RunnableLambda(run_agent).with_config(run_name="weather_agent")
print(agent.invoke(PROMPT, config={"metadata": {"thread_id": SESSION_ID, "user_id": USER_ID},
                                   "tags": ["capture"]}))
wait_for_all_tracers()
shutdown(tp)
