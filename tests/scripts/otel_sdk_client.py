"""Plays an application instrumented with the OpenTelemetry Python SDK that
calls a service through ringway: it starts a client span, writes its
context into the request with the SDK's W3C propagator, sends the request
to URL, and exports its span to the OTLP/HTTP endpoint COLLECTOR.

The origin behind ringway echoes the traceparent it received in the
response header `x-seen-traceparent`; the SDK's propagator reads that
back, so the test learns how the reference implementation understands
what ringway sent upstream.

Usage: otel_sdk_client.py URL COLLECTOR

Prints one JSON object: the client span's ids, the traceparent it sent,
the response status, and the context the SDK extracted from the echoed
traceparent. Exits 1 when the export of the client span failed.
"""

import json
import sys
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


class CheckedExporter(OTLPSpanExporter):
    """The SDK's exporter, remembering what each export returned."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.results = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result)
        return result


def main():
    url, collector = sys.argv[1], sys.argv[2]
    exporter = CheckedExporter(endpoint=collector, timeout=60)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "otel-python-client"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("ringway-tests", "1.0")
    propagator = TraceContextTextMapPropagator()

    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
        headers = {}
        propagator.inject(headers)
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
            echoed = response.headers.get("x-seen-traceparent")
            response.read()
    provider.shutdown()

    if exporter.results != [SpanExportResult.SUCCESS]:
        print(f"exports: {exporter.results}", file=sys.stderr)
        sys.exit(1)

    seen = get_current_span(
        propagator.extract({"traceparent": echoed} if echoed else {})
    ).get_span_context()
    ours = span.get_span_context()
    print(
        json.dumps(
            {
                "trace_id": format(ours.trace_id, "032x"),
                "span_id": format(ours.span_id, "016x"),
                "sent": headers.get("traceparent"),
                "status": status,
                "echoed": echoed,
                "seen": {
                    "valid": seen.is_valid,
                    "remote": seen.is_remote,
                    "trace_id": format(seen.trace_id, "032x"),
                    "span_id": format(seen.span_id, "016x"),
                    "sampled": seen.trace_flags.sampled,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
