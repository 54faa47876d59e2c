"""Traces stay with their team, point at their own data, and name who wrote them.

Two teams (the `team-x/*` experiment-name policies of test_isolation.py). The attacks, as team b:
* an OTLP export (`POST /v1/traces`, protobuf, JSON or gzip) with its own experiment in the
  header and a span whose trace id is team a's trace: MLflow writes the span and its
  `mlflow.traceTag.*` attributes into team a's trace;
* writing the tags MLflow reads a trace's data from (`mlflow.artifactLocation`, ...) on its own
  trace, through every route that writes trace tags, so that `get-trace-artifact` reads team a's
  spans or any server directory;
* a trace whose `mlflow.user` metadata, or a human assessment whose `source_id`, names someone
  else.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from mlflow.entities import AssessmentSource, AssessmentSourceType

from support import acting_as, assert_mlflow_error, mlflow
from test_isolation import teams  # noqa: F401  (the two team users, a session fixture)

ARTIFACT_LOCATION = "mlflow.artifactLocation"


@pytest.fixture(scope="module")
def traces(teams):  # noqa: F811
    """Each team: an experiment `team-x/traces-<tag>` holding one trace logged by the client."""
    tag = uuid.uuid4().hex[:6]
    out = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        for team in ("team-a", "team-b"):
            with acting_as(teams[team]) as client:
                experiment = client.create_experiment(f"{team}/traces-{tag}")
                # (explicitly: an earlier test may have set the process's active experiment)
                span = mlflow.start_span_no_context(name=f"{team}-span", experiment_id=experiment)
                span.set_outputs({"secret": team})
                span.end()
                (trace,) = client.search_traces(locations=[experiment], include_spans=False)
            out[team] = {"experiment": experiment, "trace": trace.info.trace_id,
                         "identity": teams[team]}
    return out


def _otlp_span(trace_id: str, attributes: dict) -> Span:
    now = time.time_ns()
    return Span(
        trace_id=bytes.fromhex(trace_id.removeprefix("tr-")),
        span_id=os.urandom(8),
        name="injected",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )


def _otlp_protobuf(trace_id: str, attributes: dict) -> bytes:
    request = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(scope_spans=[ScopeSpans(spans=[_otlp_span(trace_id, attributes)])])
    ])
    return request.SerializeToString()


def _otlp_json(trace_id: str, attributes: dict) -> dict:
    """The OTLP/JSON encoding: ids in hex."""
    now = time.time_ns()
    span = {
        "traceId": trace_id.removeprefix("tr-"),
        "spanId": os.urandom(8).hex(),
        "name": "injected",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1000),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def _export(stack, who: dict, experiment: str, body: bytes, content_type: str,
            encoding: str | None = None) -> requests.Response:
    headers = {"Content-Type": content_type, "x-mlflow-experiment-id": experiment}
    if encoding:
        headers["Content-Encoding"] = encoding
    return requests.post(f"{stack.url}/v1/traces", data=body, headers=headers,
                         auth=who["identity"].requests_auth(), timeout=30)


def test_an_otlp_span_cannot_write_another_teams_trace(stack, traces):
    a, b = traces["team-a"], traces["team-b"]
    theirs = a["trace"]
    attributes = {"mlflow.traceTag.owner": "team-b"}
    protobuf = _otlp_protobuf(theirs, attributes)
    for body, content_type, encoding in [
        (protobuf, "application/x-protobuf", None),
        (gzip.compress(protobuf), "application/x-protobuf", "gzip"),
        (json.dumps(_otlp_json(theirs, attributes)).encode(),
         "application/json; charset=utf-8", None),
    ]:
        r = _export(stack, b, b["experiment"], body, content_type, encoding)
        message = assert_mlflow_error(r, 403, "PERMISSION_DENIED")["message"]
        assert "mlflow:ExportTraces" in message and f"trace/{theirs}" in message, message
    with acting_as(a["identity"]) as client:
        trace = client.get_trace(theirs)
        assert "owner" not in trace.info.tags
        assert [s.name for s in trace.data.spans] == ["team-a-span"]
        assert trace.info.experiment_id == a["experiment"]

    # A body mlgate cannot read as MLflow would is refused before anything is decided.
    for body, content_type, encoding in [
        (b"\x0a\xff", "application/x-protobuf", None),
        (protobuf, "application/x-protobuf", "br"),
        (b"not gzip", "application/x-protobuf", "gzip"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
         "application/json", None),
    ]:
        r = _export(stack, b, b["experiment"], body, content_type, encoding)
        assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")

    # Their own traces, new and then existing, are exported as before.
    new = f"tr-{uuid.uuid4().hex}"
    for _ in range(2):
        r = _export(stack, b, b["experiment"], _otlp_protobuf(new, attributes),
                    "application/x-protobuf")
        assert r.status_code == 200, r.text
    with acting_as(b["identity"]) as client:
        assert client.get_trace(new).info.tags["owner"] == "team-b"
        assert client.get_trace(new).info.experiment_id == b["experiment"]


def test_tags_that_locate_trace_data_cannot_be_written(stack, traces):
    a, b = traces["team-a"], traces["team-b"]
    with acting_as(a["identity"]) as client:
        their_location = client.get_trace(a["trace"]).info.tags[ARTIFACT_LOCATION]
    mine = b["trace"]
    auth = b["identity"].requests_auth()
    api2, api3 = f"{stack.url}/api/2.0/mlflow/traces", f"{stack.url}/api/3.0/mlflow/traces"
    reserved = {"key": ARTIFACT_LOCATION, "value": their_location}
    attempts = [
        ("PATCH", f"{api2}/{mine}/tags", reserved),
        ("PATCH", f"{api3}/{mine}/tags", reserved),
        ("PATCH", f"{api3}/{mine}/tags", {"key": "mlflow.trace.spansLocation", "value": "X"}),
        ("DELETE", f"{api3}/{mine}/tags", {"key": ARTIFACT_LOCATION}),
        ("POST", api2, {"experiment_id": b["experiment"], "timestamp_ms": 1, "tags": [reserved]}),
        ("PATCH", f"{api2}/{mine}", {"timestamp_ms": 2, "status": "OK", "tags": [reserved]}),
        ("POST", api3, {"trace": {"trace_info": {
            "trace_id": f"tr-{uuid.uuid4().hex}",
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": b["experiment"]}},
            "request_time": "2026-01-01T00:00:00Z", "state": "OK",
            "tags": {"mlflow.trace.archiveLocation": "file:///"}}}}),
    ]
    for method, url, body in attempts:
        r = requests.request(method, url, json=body, auth=auth, timeout=30)
        message = assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
        assert "reserved" in message, (method, url, message)
    r = _export(stack, b, b["experiment"],
                _otlp_protobuf(mine, {f"mlflow.traceTag.{ARTIFACT_LOCATION}": their_location}),
                "application/x-protobuf")
    assert "reserved" in assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]

    with acting_as(b["identity"]) as client:
        assert client.get_trace(mine).info.tags[ARTIFACT_LOCATION] != their_location
    # The spans get-trace-artifact serves are still their own.
    r = requests.get(f"{stack.url}/ajax-api/3.0/mlflow/get-trace-artifact",
                     params={"request_id": mine}, auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    names = {span["name"] for span in r.json()["spans"]}
    assert "team-b-span" in names and "team-a-span" not in names, names
    # Ordinary tags, and clearing an archival failure (which MLflow allows), still work.
    ok = [("PATCH", f"{api3}/{mine}/tags", {"key": "team", "value": "b"}),
          ("DELETE", f"{api3}/{mine}/tags", {"key": "mlflow.trace.archivalFailure"})]
    for method, url, body in ok:
        r = requests.request(method, url, json=body, auth=auth, timeout=30)
        assert r.status_code in (200, 404), (method, url, r.text)
    with acting_as(b["identity"]) as client:
        assert client.get_trace(mine).info.tags["team"] == "b"


def _trace_user(stack, who: dict, trace_id: str) -> str:
    """The `mlflow.user` metadata of a trace (one without spans, which the client cannot load)."""
    r = requests.get(f"{stack.url}/api/3.0/mlflow/traces/{trace_id}",
                     auth=who["identity"].requests_auth(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["trace"]["trace_info"]["trace_metadata"]["mlflow.user"]


def test_a_trace_and_a_human_assessment_name_their_real_author(stack, traces):
    a, b = traces["team-a"], traces["team-b"]
    someone_else = a["identity"].name
    me = b["identity"].name
    with acting_as(b["identity"]) as client:
        # The client's own trace: MLflow's client records the machine's login as `mlflow.user`.
        assert client.get_trace(b["trace"]).info.trace_metadata["mlflow.user"] == me

        # A forged `mlflow.user` in StartTrace (v3 and the deprecated v2).
        forged_v3 = f"tr-{uuid.uuid4().hex}"
        r = requests.post(f"{stack.url}/api/3.0/mlflow/traces", auth=b["identity"].requests_auth(),
                          timeout=30, json={"trace": {"trace_info": {
                              "trace_id": forged_v3,
                              "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
                                  "experiment_id": b["experiment"]}},
                              "request_time": "2026-01-01T00:00:00Z", "state": "OK",
                              "trace_metadata": {"mlflow.user": someone_else}}}})
        assert r.status_code == 200, r.text
        assert _trace_user(stack, b, forged_v3) == me
        r = requests.post(f"{stack.url}/api/2.0/mlflow/traces", auth=b["identity"].requests_auth(),
                          timeout=30, json={"experiment_id": b["experiment"], "timestamp_ms": 1,
                                            "request_metadata": [{"key": "mlflow.user",
                                                                  "value": someone_else}]})
        assert r.status_code == 200, r.text
        forged_v2 = r.json()["trace_info"]["request_id"]
        assert _trace_user(stack, b, forged_v2) == me

        # Feedback claimed in someone else's name is recorded in the caller's; a judge's stays.
        human = mlflow.log_feedback(trace_id=b["trace"], name="quality", value=True,
                                    source=AssessmentSource(AssessmentSourceType.HUMAN, someone_else))
        judge = mlflow.log_feedback(trace_id=b["trace"], name="judged", value=True,
                                    source=AssessmentSource(AssessmentSourceType.LLM_JUDGE, "gpt-x"))
        assert mlflow.get_assessment(b["trace"], human.assessment_id).source.source_id == me
        assert mlflow.get_assessment(b["trace"], judge.assessment_id).source.source_id == "gpt-x"
