"""Export spans to a running tracebridge with the official OpenTelemetry
Python SDK, over every transport an SDK user would pick; then logs and
metrics, which an SDK configured with one OTLP endpoint sends too and which
must be acknowledged, not refused.

Usage: otel_python_export.py GRPC_ADDR HTTP_ADDR IDS_OUT
Writes the hex span id of every span that was exported, one per line.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from grpc import Compression as GrpcCompression

SPANS_PER_TRANSPORT = 50


class Recording:
    """Wraps an exporter and remembers which spans it reported as exported."""

    def __init__(self, inner):
        self.inner = inner
        self.ids = []
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.ids.extend(format(s.context.span_id, "016x") for s in spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def run(name, exporter):
    recording = Recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": f"interop-{name}"}))
    provider.add_span_processor(BatchSpanProcessor(recording, max_export_batch_size=16))
    tracer = provider.get_tracer("tracebridge.interop")
    for i in range(SPANS_PER_TRANSPORT // 5):
        with tracer.start_as_current_span(f"invoke_agent {name}") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            for j in range(4):
                with tracer.start_as_current_span(f"chat gpt-4o {i}.{j}") as llm:
                    llm.set_attribute("gen_ai.operation.name", "chat")
                    llm.set_attribute("gen_ai.request.model", "gpt-4o")
                    llm.set_attribute("gen_ai.usage.input_tokens", 10 + j)
                    llm.set_attribute("gen_ai.usage.output_tokens", 3)
                    llm.set_attribute("gen_ai.response.finish_reasons", ["stop"])
    provider.force_flush()
    provider.shutdown()
    if recording.failures:
        sys.exit(f"{name}: {recording.failures} export calls failed")
    if len(recording.ids) != SPANS_PER_TRANSPORT:
        sys.exit(f"{name}: exported {len(recording.ids)} spans, expected {SPANS_PER_TRANSPORT}")
    print(f"{name}: exported {len(recording.ids)} spans", flush=True)
    return recording.ids


def export_logs_and_metrics(grpc_addr, http_addr):
    """Every log and metric export must succeed on both transports."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter as GrpcMetrics,
    )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetrics,
    )
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    class Checked:
        def __init__(self, inner):
            self.inner = inner
            self.results = []

        def export(self, batch):
            result = self.inner.export(batch)
            self.results.append(result)
            return result

        def shutdown(self):
            self.inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    http = f"http://{http_addr}"
    for name, exporter in [
        ("grpc", GrpcLogs(endpoint=grpc_addr, insecure=True)),
        ("http", HttpLogs(endpoint=f"{http}/v1/logs")),
    ]:
        checked = Checked(exporter)
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(checked))
        logger = logging.getLogger(f"interop-{name}")
        logger.propagate = False
        logger.addHandler(LoggingHandler(logger_provider=provider))
        for i in range(3):
            logger.warning("interop log record %d", i)
        provider.shutdown()
        # The result enum was renamed across SDK versions; its member name was not.
        if not checked.results or any(r.name != "SUCCESS" for r in checked.results):
            sys.exit(f"logs over {name}: {checked.results}")
        print(f"logs over {name}: {len(checked.results)} exports acknowledged", flush=True)

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("tracebridge.interop")
    meter.create_counter("gen_ai.client.token.usage").add(42, {"gen_ai.token.type": "input"})
    data = reader.get_metrics_data()
    for name, exporter in [
        ("grpc", GrpcMetrics(endpoint=grpc_addr, insecure=True)),
        ("http", HttpMetrics(endpoint=f"{http}/v1/metrics")),
    ]:
        result = exporter.export(data)
        if result != MetricExportResult.SUCCESS:
            sys.exit(f"metrics over {name}: {result}")
        print(f"metrics over {name}: acknowledged", flush=True)


def main():
    grpc_addr, http_addr, ids_out = sys.argv[1:4]
    http_url = f"http://{http_addr}/v1/traces"
    ids = []
    ids += run("grpc", GrpcExporter(endpoint=grpc_addr, insecure=True))
    ids += run(
        "grpc-gzip",
        GrpcExporter(endpoint=grpc_addr, insecure=True, compression=GrpcCompression.Gzip),
    )
    ids += run("http-protobuf", HttpExporter(endpoint=http_url))
    ids += run("http-gzip", HttpExporter(endpoint=http_url, compression=HttpCompression.Gzip))
    with open(ids_out, "w") as f:
        f.write("\n".join(ids) + "\n")
    export_logs_and_metrics(grpc_addr, http_addr)


if __name__ == "__main__":
    main()
