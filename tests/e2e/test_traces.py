"""OpenTelemetry traces (docs/observability.md): with `--otlp-endpoint`, mlgate exports a server
span per request that continues the caller's W3C `traceparent`, with child spans for the stages
(authenticate, resolve, authorize, forward), to an OTLP/HTTP receiver this test runs (decoded with
the opentelemetry-proto package); the request MLflow gets carries mlgate's forward span as its
parent. Without `--otlp-endpoint` the caller's `traceparent` reaches MLflow unchanged."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Tuple

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support import RoundRobin, mlgate_stack

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
GET_DEFAULT = "/api/2.0/mlflow/experiments/get?experiment_id=0"
STAGES = {"authenticate", "resolve", "authorize", "forward"}


class OtlpReceiver:
    """An OTLP/HTTP trace receiver: keeps every span posted to /v1/traces."""

    def __init__(self) -> None:
        self.spans: List = []
        self.paths: List[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportTraceServiceRequest()
                export.ParseFromString(body)
                received.paths.append(self.path)
                for resource_spans in export.resource_spans:
                    service = {a.key: a.value.string_value
                               for a in resource_spans.resource.attributes}.get("service.name")
                    for scope_spans in resource_spans.scope_spans:
                        received.spans.extend((service, span) for span in scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def trace(self, trace_id: str, count: int, timeout: float = 20.0) -> list:
        """The spans of one trace, once at least `count` of them arrived (the exporter batches)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = [span for _, span in self.spans if span.trace_id.hex() == trace_id]
            if len(spans) >= count or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)


class RecordingRelay(RoundRobin):
    """A relay in front of MLflow that keeps the head of every request mlgate sends it."""

    def __init__(self, mlflow_port: int) -> None:
        self.heads: List[Dict[str, str]] = []
        super().__init__([mlflow_port])

    def _one_request(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")[1:]
        self.heads.append({k.strip().lower(): v.strip()
                           for k, v in (line.split(":", 1) for line in lines if ":" in line)})
        return RoundRobin._one_request(head)

    def traceparents(self) -> List[str]:
        return [h["traceparent"] for h in self.heads if "traceparent" in h]


def gateway_before_relay(stack, extra_args) -> Tuple[mlgate_stack.Stack, RecordingRelay]:
    relay = RecordingRelay(stack.mlflow_port)
    gateway = stack.replica()
    gateway.mlflow_port = relay.port
    gateway.start_gateway(extra_args=extra_args)
    return gateway, relay


@pytest.fixture(scope="module")
def traced(stack) -> Iterator[Tuple[mlgate_stack.Stack, RecordingRelay, OtlpReceiver]]:
    receiver = OtlpReceiver()
    gateway, relay = gateway_before_relay(stack, ["--otlp-endpoint", receiver.url])
    try:
        yield gateway, relay, receiver
    finally:
        gateway.stop_gateway()
        relay.close()
        receiver.server.shutdown()


def attributes(span) -> Dict[str, object]:
    def value(v):
        return v.string_value if v.HasField("string_value") else v.int_value
    return {a.key: value(a.value) for a in span.attributes}


def test_a_request_continues_the_callers_trace_through_mlgate_to_mlflow(traced, reader):
    gateway, relay, receiver = traced
    resp = requests.get(gateway.url + GET_DEFAULT, auth=reader.requests_auth(),
                        headers={"traceparent": TRACEPARENT}, timeout=30)
    assert resp.status_code == 200, resp.text
    spans = receiver.trace(TRACE_ID, count=1 + len(STAGES))
    by_name = {span.name: span for span in spans}
    server = by_name.get("GET GetExperiment")
    assert server is not None, sorted(by_name)
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    assert all(service == "mlgate" for service, _ in receiver.spans)
    # The server span is the caller's span's child; the stages are the server span's.
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert STAGES <= set(by_name), sorted(by_name)
    for stage in STAGES:
        assert by_name[stage].parent_span_id == server.span_id, stage
    assert server.kind == server.SPAN_KIND_SERVER
    assert by_name["forward"].kind == server.SPAN_KIND_CLIENT
    seen = attributes(server)
    assert seen["http.response.status_code"] == 200
    assert seen["mlgate.decision"] == "allow"
    assert seen["mlgate.request_id"] == resp.headers["x-request-id"]
    assert seen["enduser.id"].endswith(f":user/{reader.name}")
    # MLflow got mlgate's forward span as the parent, in the caller's trace.
    forwarded = [tp for tp in relay.traceparents() if TRACE_ID in tp]
    assert forwarded, relay.heads[-3:]
    assert forwarded[-1] == f"00-{TRACE_ID}-{by_name['forward'].span_id.hex()}-01"


def test_a_refused_request_is_traced_with_its_decision(traced, reader):
    gateway, relay, receiver = traced
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    before = len(relay.heads)
    resp = requests.post(gateway.url + "/api/2.0/mlflow/experiments/delete",
                         json={"experiment_id": "0"}, auth=reader.requests_auth(),
                         headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"}, timeout=30)
    assert resp.status_code == 403, resp.text
    spans = receiver.trace(trace_id, count=4)
    by_name = {span.name: span for span in spans}
    server = by_name["POST DeleteExperiment"]
    assert attributes(server)["mlgate.decision"] == "implicit_deny"
    assert "authorize" in by_name and "forward" not in by_name, sorted(by_name)
    assert by_name["authorize"].status.code == by_name["authorize"].status.STATUS_CODE_ERROR
    # A refusal is not a server error.
    assert server.status.code != server.status.STATUS_CODE_ERROR
    assert not [h for h in relay.heads[before:] if trace_id in h.get("traceparent", "")]


def test_without_an_endpoint_the_callers_traceparent_reaches_mlflow_unchanged(stack, reader):
    gateway, relay = gateway_before_relay(stack, [])
    try:
        resp = requests.get(gateway.url + GET_DEFAULT, auth=reader.requests_auth(),
                            headers={"traceparent": TRACEPARENT}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert relay.traceparents() == [TRACEPARENT]
    finally:
        gateway.stop_gateway()
        relay.close()
