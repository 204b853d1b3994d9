"""Reads an OTLP/HTTP trace export body (protobuf) on standard input with the
OpenTelemetry Python protobuf classes, and prints its spans as JSON: one
object per span with its resource and scope, in protobuf's JSON mapping
(ids hex-encoded here, as OTLP/JSON has them, and enums by name).

Usage: otel_decode.py < body
"""

import json
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)


def main():
    request = ExportTraceServiceRequest()
    request.ParseFromString(sys.stdin.buffer.read())
    spans = []
    for resource_spans in request.resource_spans:
        resource = {
            kv.key: MessageToDict(kv.value) for kv in resource_spans.resource.attributes
        }
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.SpanKind.Name(span.kind),
                        "flags": span.flags,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "status": span.status.StatusCode.Name(span.status.code),
                        "attributes": {
                            kv.key: MessageToDict(kv.value) for kv in span.attributes
                        },
                    }
                )
    print(json.dumps(spans))


if __name__ == "__main__":
    main()
