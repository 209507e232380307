"""Pipecat with its built-in OpenTelemetry tracing, a text-only pipeline.

No transport and no audio: Pipeline([user aggregator, OpenAILLMService(base_url
=<fake>), assistant aggregator]) run by a PipelineWorker with
enable_tracing=True, enable_turn_tracking=True, conversation_id=SESSION_ID and
metrics on (enable_metrics, enable_usage_metrics);
get_weather registered with llm.register_function. The user's text goes in as
an LLMMessagesAppendFrame(run_llm=True), the way a text client feeds a bot;
EndFrame once the final answer is in the context. Tracing the documented way:
pipecat.utils.tracing.setup.setup_tracing(service_name, exporter=OTLPSpanExporter())
(BatchSpanProcessor), flushed at exit.
"""

import asyncio
import os

from _common import MODEL, OPENAI_TOOL, PROMPT, SESSION_ID, SYSTEM, TOOL_RESULT, service_name

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from pipecat.adapters.schemas.function_schema import FunctionSchema  # noqa: E402
from pipecat.adapters.schemas.tools_schema import ToolsSchema  # noqa: E402
from pipecat.frames.frames import EndFrame, LLMMessagesAppendFrame  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.runner import PipelineRunner  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair  # noqa: E402
from pipecat.services.openai.llm import OpenAILLMService  # noqa: E402
from pipecat.utils.tracing.setup import setup_tracing  # noqa: E402

setup_tracing(service_name=service_name("pipecat"), exporter=OTLPSpanExporter())


async def get_weather(params):
    await params.result_callback(TOOL_RESULT)


async def main():
    fn = OPENAI_TOOL["function"]
    schema = FunctionSchema(
        name=fn["name"],
        description=fn["description"],
        properties=fn["parameters"]["properties"],
        required=fn["parameters"]["required"],
    )
    llm = OpenAILLMService(
        api_key=os.environ["OPENAI_API_KEY"],
        base_url=os.environ["OPENAI_BASE_URL"],
        settings=OpenAILLMService.Settings(model=MODEL, system_instruction=SYSTEM),
    )
    llm.register_function("get_weather", get_weather)
    context = LLMContext(tools=ToolsSchema(standard_tools=[schema]))
    aggregators = LLMContextAggregatorPair(context)
    pipeline = Pipeline([aggregators.user(), llm, aggregators.assistant()])
    worker = PipelineWorker(
        pipeline,
        enable_tracing=True,
        enable_turn_tracking=True,
        conversation_id=SESSION_ID,
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        idle_timeout_secs=30,
    )
    done = asyncio.Event()

    @aggregators.assistant().event_handler("on_assistant_turn_stopped")
    async def on_turn(aggregator, message):
        if getattr(message, "content", None):
            done.set()

    async def drive():
        await worker.queue_frames([LLMMessagesAppendFrame([{"role": "user", "content": PROMPT}], run_llm=True)])
        await asyncio.wait_for(done.wait(), 30)
        await worker.queue_frame(EndFrame())

    runner = PipelineRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())
    print(context.get_messages())


asyncio.run(main())
provider = trace.get_tracer_provider()
provider.force_flush()
provider.shutdown()
