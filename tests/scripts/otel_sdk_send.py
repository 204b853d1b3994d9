"""Sends two spans to an OTLP/HTTP endpoint with the OpenTelemetry Python
SDK and its OTLP/HTTP (protobuf) exporter: a server span, and a client span
under it, with attributes of every scalar type and an array.

Usage: otel_sdk_send.py URL

Prints the ids it used as one JSON object (hex, as the SDK formats them),
so the test can compare them with what the receiver decoded. Exits 1 when
the exporter reports a failed export.
"""

import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


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
    endpoint = sys.argv[1]
    exporter = CheckedExporter(endpoint=endpoint, timeout=60)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "otel-python-check"})
    )
    # One export per span, as each ends: two requests on a kept-alive
    # connection.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("ringway-tests", "1.0")
    with tracer.start_as_current_span(
        "GET /items",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.path": "/items/42",
            "http.response.status_code": 200,
            "ringway.route": "items",
            "ringway.sampled": True,
            "ringway.ratio": 0.25,
            "ringway.tags": ["canary", "eu"],
        },
    ) as server:
        with tracer.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "network.peer.address": "10.0.0.7",
                "network.peer.port": 9000,
                "http.request.resend_count": 1,
                "error.type": "upstream_timeout",
            },
        ) as client:
            client.set_status(Status(StatusCode.ERROR, "the upstream did not answer"))
    provider.shutdown()

    failed = [r for r in exporter.results if r != SpanExportResult.SUCCESS]
    if len(exporter.results) != 2 or failed:
        print(f"exports: {exporter.results}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "trace_id": format(server.get_span_context().trace_id, "032x"),
                "server_id": format(server.get_span_context().span_id, "016x"),
                "client_id": format(client.get_span_context().span_id, "016x"),
            }
        )
    )


if __name__ == "__main__":
    main()
