// Vercel AI SDK 7 producer (@ai-sdk/otel): one generateText and one streamText run,
// each with one tool call (getWeather) followed by a final answer, exported as
// OTLP/HTTP protobuf.
//
// Usage: node capture.mjs [otel|legacy]
//   otel    (default) registerTelemetry(new OpenTelemetry({ runtimeContext: true })):
//           GenAI-semconv spans, tracer "gen_ai".
//   legacy  registerTelemetry(new LegacyOpenTelemetry()): the AI SDK 6 style `ai.*`
//           spans, tracer "ai".
//
// Session and user travel as runtime context (AI SDK 7 dropped telemetry.metadata):
// `runtimeContext: { sessionId, userId }` plus `telemetry.includeRuntimeContext`
// marking both keys, exported as `ai.settings.context.sessionId` / `.userId`.
// The generateText call uses the current `telemetry` option; the streamText call uses
// the deprecated `experimental_telemetry` alias and still passes the AI SDK 6
// `metadata` object, as an application migrated without changes would.
//
// Environment:
//   FAKE_MODEL_URL  base URL of the fake OpenAI-compatible server, e.g. http://127.0.0.1:8123
//   OTLP_ENDPOINT   base URL of the OTLP/HTTP capture server (spans go to /v1/traces)
//   MODEL           model id sent to the fake (default gpt-4o-mini)
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
} from '@opentelemetry/sdk-trace-node';
import { createOpenAI } from '@ai-sdk/openai';
import { LegacyOpenTelemetry, OpenTelemetry } from '@ai-sdk/otel';
import {
  generateText,
  registerTelemetry,
  stepCountIs,
  streamText,
  tool,
} from 'ai';
import { z } from 'zod';

const mode = process.argv[2] || 'otel';
if (mode !== 'otel' && mode !== 'legacy') {
  console.error(`capture.mjs: unknown mode ${mode} (otel|legacy)`);
  process.exit(2);
}
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
    'service.name':
      mode === 'otel'
        ? 'tracebridge-producer-ai-sdk-7'
        : 'tracebridge-producer-ai-sdk-7-legacy',
    'service.version': '1.0.0',
  }),
  spanProcessors: [
    new BatchSpanProcessor(
      new OTLPTraceExporter({ url: `${otlpEndpoint}/v1/traces` }),
    ),
  ],
});
provider.register();

registerTelemetry(
  mode === 'otel'
    ? new OpenTelemetry({ runtimeContext: true })
    : new LegacyOpenTelemetry(),
);

const openai = createOpenAI({
  baseURL: `${fakeUrl}/v1`,
  apiKey: 'sk-fake-tracebridge',
});
// openai(id) is the Responses API; the fake speaks Chat Completions.
const model = openai.chat(modelId);

const tools = {
  getWeather: tool({
    description: 'Get the current weather for a city',
    inputSchema: z.object({ city: z.string().describe('The city name') }),
    execute: async ({ city }) => 'sunny, 22°C',
  }),
};

const runtimeContext = { sessionId: 'session-123', userId: 'user-42' };
const includeRuntimeContext = { sessionId: true, userId: true };

let failed = false;
try {
  const generated = await generateText({
    model,
    instructions: 'You are a helpful weather assistant.',
    prompt: 'What is the weather in Paris?',
    tools,
    stopWhen: stepCountIs(5),
    runtimeContext,
    telemetry: { functionId: 'weather-flow', includeRuntimeContext },
  });
  console.error(
    `generateText: steps=${generated.steps.length} text=${JSON.stringify(generated.text)}`,
  );
  if (generated.steps.length < 2) failed = true;

  const streamed = streamText({
    model,
    instructions: 'You are a helpful weather assistant.',
    prompt: 'What is the weather in Paris?',
    tools,
    stopWhen: stepCountIs(5),
    runtimeContext,
    experimental_telemetry: {
      isEnabled: true,
      functionId: 'weather-flow-stream',
      // AI SDK 6 style; ignored by AI SDK 7 (kept to show what migrated apps emit).
      metadata: { sessionId: 'session-123', userId: 'user-42' },
      includeRuntimeContext,
    },
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
  await provider.shutdown();
}
process.exit(failed ? 1 : 0);
