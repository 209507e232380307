// Vercel AI SDK 6 producer: one generateText and one streamText run, each with one
// tool call (getWeather) followed by a final answer, exported as OTLP/HTTP protobuf.
//
// Environment:
//   FAKE_MODEL_URL  base URL of the fake OpenAI-compatible server, e.g. http://127.0.0.1:8123
//   OTLP_ENDPOINT   base URL of the OTLP/HTTP capture server, e.g. http://127.0.0.1:4318
//                   (spans go to $OTLP_ENDPOINT/v1/traces)
//   MODEL           model id sent to the fake (default gpt-4o-mini)
//
// Driven by tests/interop/producers/capture-node.sh; runnable on its own too.
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
} from '@opentelemetry/sdk-trace-node';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const fakeUrl = required('FAKE_MODEL_URL').replace(/\/$/, '');
const otlpEndpoint = required('OTLP_ENDPOINT').replace(/\/$/, '');
const modelId = process.env.MODEL || 'gpt-4o-mini';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`capture.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'tracebridge-producer-ai-sdk-6',
    'service.version': '1.0.0',
  }),
  spanProcessors: [
    new BatchSpanProcessor(
      new OTLPTraceExporter({ url: `${otlpEndpoint}/v1/traces` }),
    ),
  ],
});
// register() installs the global tracer provider, the AsyncLocalStorage context
// manager and the W3C propagator; AI SDK 6 uses the global tracer named "ai".
provider.register();

const openai = createOpenAI({
  baseURL: `${fakeUrl}/v1`,
  apiKey: 'sk-fake-tracebridge',
});
// openai(id) is the Responses API in @ai-sdk/openai 3.x; the fake speaks Chat Completions.
const model = openai.chat(modelId);

const tools = {
  getWeather: tool({
    description: 'Get the current weather for a city',
    inputSchema: z.object({ city: z.string().describe('The city name') }),
    execute: async ({ city }) => 'sunny, 22°C',
  }),
};

const telemetry = (functionId) => ({
  isEnabled: true,
  functionId,
  metadata: { sessionId: 'session-123', userId: 'user-42' },
});

let failed = false;
try {
  const generated = await generateText({
    model,
    system: 'You are a helpful weather assistant.',
    prompt: 'What is the weather in Paris?',
    tools,
    stopWhen: stepCountIs(5),
    experimental_telemetry: telemetry('weather-flow'),
  });
  console.error(
    `generateText: steps=${generated.steps.length} text=${JSON.stringify(generated.text)}`,
  );
  if (generated.steps.length < 2) failed = true;

  const streamed = streamText({
    model,
    system: 'You are a helpful weather assistant.',
    prompt: 'What is the weather in Paris?',
    tools,
    stopWhen: stepCountIs(5),
    experimental_telemetry: telemetry('weather-flow-stream'),
  });
  let text = '';
  for await (const delta of streamed.textStream) text += delta;
  const steps = await streamed.steps;
  console.error(`streamText: steps=${steps.length} text=${JSON.stringify(text)}`);
  if (steps.length < 2) failed = true;
} catch (err) {
  console.error('capture.mjs: AI SDK call failed:', err);
  failed = true;
} finally {
  // Flushes the batch processor: every span is exported before the process exits.
  await provider.shutdown();
}
process.exit(failed ? 1 : 0);
