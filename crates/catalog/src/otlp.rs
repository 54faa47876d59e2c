//! Reading an OTLP/HTTP trace export (`POST /v1/traces`) as MLflow 3.17.2 does
//! (`mlflow/server/otel_api.py::export_traces`), for the two things it decides: which MLflow
//! traces the spans write, and which trace tags their attributes set.
//!
//! * `Content-Type` (before any `;`, trimmed) is `application/x-protobuf` or
//!   `application/json`; anything else is refused, as MLflow refuses it.
//! * `Content-Encoding` `gzip` (every member) or `deflate` (zlib, else raw deflate),
//!   compared lower-cased; any other coding is refused. The decoded body is bounded.
//! * Protobuf: an `ExportTraceServiceRequest`, walked on the wire with prost's decoding
//!   primitives (nothing but the trace ids and attribute keys is kept, so memory does not
//!   grow with the number of attributes): `resource_spans` (1) → `scope_spans` (2) → `spans`
//!   (2) → `trace_id` (1, the last occurrence wins) and `attributes` (9) → `key` (1).
//! * JSON: MLflow first rewrites `traceId` from hex to base64, but only in
//!   `resourceSpans[].scopeSpans[].spans[]` spelled exactly so; protobuf's JSON parser then
//!   reads every other spelling (`resource_spans`, `trace_id`, …) as base64. Both are
//!   mirrored; values MLflow's lenient decoders would read with characters skipped are
//!   refused instead.
//! * A span's MLflow trace id is `tr-` and its OTLP trace id as an unsigned big-endian
//!   integer in at least 32 lower-case hex digits (`Span.from_otel_proto`). A span without
//!   a trace id makes MLflow refuse the whole export; it names no trace.
//! * A span attribute `mlflow.traceTag.<key>` sets the trace tag `<key>` (MLflow reads it
//!   from root spans; every span's is read here). Resource attributes under `mlflow.` are
//!   never tags.
//!
//! The result is a [`Params`] with `trace_ids` (each trace id once, in order) and `tags`
//! (`{key, value}` objects, values left empty), so the route's identifiers and trace tag
//! fields are read like any other request's.

use std::collections::HashSet;
use std::io::Read;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use serde_json::{Map, Value};

use crate::params::{ParamError, ParamSource, Params, get_either_spelling, parse_strict_json};

/// Spans one export may hold (OpenTelemetry's batch span processor sends 512 by default).
pub const MAX_OTLP_SPANS: usize = 10_000;
/// Distinct traces one export may name: each is looked up in MLflow before the export is sent.
pub const MAX_OTLP_TRACES: usize = 512;
/// Distinct trace tags one export may set (MLflow's client sets a trace's few tags on its root span).
pub const MAX_OTLP_TRACE_TAGS: usize = 1_000;

/// The span attribute prefix that makes MLflow set a trace tag (`SpanAttributeKey.TRACE_TAG_PREFIX`).
const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";
/// MLflow's trace id prefix for traces created from OTLP trace ids (`TRACE_REQUEST_ID_PREFIX`).
const TRACE_ID_PREFIX: &str = "tr-";

/// Reads an OTLP trace export. `max_decoded` bounds the body after its content coding is undone.
pub fn read_otlp(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    max_decoded: usize,
) -> Result<Params, ParamError> {
    let media_type = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim());
    let decoded;
    let body = match content_encoding.filter(|coding| !coding.is_empty()) {
        None => body,
        Some(coding) => {
            decoded = decode_content(&coding.to_ascii_lowercase(), body, max_decoded)?;
            decoded.as_slice()
        }
    };
    let mut spans = Spans::default();
    match media_type {
        Some("application/x-protobuf") => read_protobuf(body, &mut spans)?,
        Some("application/json") => read_json(body, &mut spans)?,
        _ => return Err(ParamError::UnsupportedOtlpContentType),
    }
    Ok(spans.into_params())
}

/// What the spans of an export name, each once, in order.
#[derive(Default)]
struct Spans {
    count: usize,
    trace_ids: Distinct,
    tag_keys: Distinct,
}

impl Spans {
    fn span(&mut self, trace_id: &[u8]) -> Result<(), ParamError> {
        self.count += 1;
        if self.count > MAX_OTLP_SPANS {
            return Err(ParamError::TooMuchInOtlpExport {
                what: "spans",
                max: MAX_OTLP_SPANS,
            });
        }
        if trace_id.is_empty() {
            return Ok(());
        }
        self.trace_ids
            .add(mlflow_trace_id(trace_id), "traces", MAX_OTLP_TRACES)
    }

    fn attribute(&mut self, key: &str) -> Result<(), ParamError> {
        match key.strip_prefix(TRACE_TAG_PREFIX) {
            Some(tag) => self
                .tag_keys
                .add(tag.to_owned(), "trace tags", MAX_OTLP_TRACE_TAGS),
            None => Ok(()),
        }
    }

    fn into_params(self) -> Params {
        let tags = self
            .tag_keys
            .order
            .into_iter()
            .map(|key| {
                let mut tag = Map::new();
                tag.insert("key".into(), Value::String(key));
                tag.insert("value".into(), Value::String(String::new()));
                Value::Object(tag)
            })
            .collect();
        let mut fields = Map::new();
        fields.insert("trace_ids".into(), Value::from(self.trace_ids.order));
        fields.insert("tags".into(), Value::Array(tags));
        Params::from_fields(fields, ParamSource::Body)
    }
}

/// Strings kept once each, in the order first seen, up to a bound.
#[derive(Default)]
struct Distinct {
    order: Vec<String>,
    seen: HashSet<String>,
}

impl Distinct {
    fn add(&mut self, value: String, what: &'static str, max: usize) -> Result<(), ParamError> {
        if self.seen.contains(&value) {
            return Ok(());
        }
        if self.order.len() == max {
            return Err(ParamError::TooMuchInOtlpExport { what, max });
        }
        self.seen.insert(value.clone());
        self.order.push(value);
        Ok(())
    }
}

/// `tr-` + `format(int.from_bytes(id, "big"), "032x")`.
fn mlflow_trace_id(trace_id: &[u8]) -> String {
    let hex = hex::encode(trace_id);
    let digits = hex.trim_start_matches('0');
    format!("{TRACE_ID_PREFIX}{digits:0>32}")
}

/// `decompress_otlp_body`: gzip (all members), or deflate as zlib and else raw.
fn decode_content(coding: &str, body: &[u8], max: usize) -> Result<Vec<u8>, ParamError> {
    let fail = || ParamError::UndecodableOtlpBody;
    match coding {
        "gzip" => {
            let mut out = Vec::new();
            let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|_| fail())?;
            if out.len() > max {
                return Err(ParamError::OtlpBodyTooLarge(max));
            }
            Ok(out)
        }
        "deflate" => match inflate(body, true, max) {
            Err(ParamError::UndecodableOtlpBody) => inflate(body, false, max),
            decoded => decoded,
        },
        _ => Err(ParamError::UnsupportedContentEncoding),
    }
}

/// One complete deflate stream (zlib-wrapped or raw) at the start of `body`; data after its end
/// is ignored, as `zlib.decompress` ignores it; a truncated stream is refused.
fn inflate(body: &[u8], zlib: bool, max: usize) -> Result<Vec<u8>, ParamError> {
    const CHUNK: usize = 64 * 1024;
    let mut inflater = flate2::Decompress::new(zlib);
    let mut out = Vec::new();
    loop {
        if out.len() == out.capacity() {
            out.reserve(CHUNK);
        }
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let progress = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(
                body.get(consumed..).unwrap_or_default(),
                &mut out,
                flate2::FlushDecompress::None,
            )
            .map_err(|_| ParamError::UndecodableOtlpBody)?;
        if out.len() > max {
            return Err(ParamError::OtlpBodyTooLarge(max));
        }
        if status == flate2::Status::StreamEnd {
            return Ok(out);
        }
        if progress == (inflater.total_in(), inflater.total_out()) && out.len() < out.capacity() {
            return Err(ParamError::UndecodableOtlpBody);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Protobuf
// ---------------------------------------------------------------------------------------

fn read_protobuf(body: &[u8], spans: &mut Spans) -> Result<(), ParamError> {
    each_message(body, 1, &mut |resource_spans| {
        each_message(resource_spans, 2, &mut |scope_spans| {
            each_message(scope_spans, 2, &mut |span| read_span(span, spans))
        })
    })
}

fn read_span(span: &[u8], spans: &mut Spans) -> Result<(), ParamError> {
    let mut trace_id: &[u8] = &[];
    each_field(span, &mut |number, bytes| {
        match number {
            1 => trace_id = bytes,
            9 => {
                let mut key: &[u8] = &[];
                each_message(bytes, 1, &mut |bytes| {
                    key = bytes;
                    Ok(())
                })?;
                spans.attribute(
                    std::str::from_utf8(key).map_err(|_| ParamError::UndecodableOtlpBody)?,
                )?;
            }
            _ => {}
        }
        Ok(())
    })?;
    spans.span(trace_id)
}

/// Calls `on` with each length-delimited field numbered `number`.
fn each_message<'a>(
    message: &'a [u8],
    number: u32,
    on: &mut dyn FnMut(&'a [u8]) -> Result<(), ParamError>,
) -> Result<(), ParamError> {
    each_field(message, &mut |n, bytes| {
        if n == number { on(bytes) } else { Ok(()) }
    })
}

/// Calls `on` with the number and bytes of each length-delimited field of `message`, skipping
/// the others (a known field sent with another wire type is unknown to protobuf too).
fn each_field<'a>(
    mut message: &'a [u8],
    on: &mut dyn FnMut(u32, &'a [u8]) -> Result<(), ParamError>,
) -> Result<(), ParamError> {
    let invalid = |_| ParamError::UndecodableOtlpBody;
    while !message.is_empty() {
        let (number, wire_type) = decode_key(&mut message).map_err(invalid)?;
        if wire_type != WireType::LengthDelimited {
            skip_field(wire_type, number, &mut message, DecodeContext::default())
                .map_err(invalid)?;
            continue;
        }
        let len = decode_varint(&mut message).map_err(invalid)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= message.len())
            .ok_or(ParamError::UndecodableOtlpBody)?;
        let (bytes, rest) = message.split_at(len);
        message = rest;
        on(number, bytes)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

fn read_json(body: &[u8], spans: &mut Spans) -> Result<(), ParamError> {
    let Value::Object(request) = parse_strict_json(body)? else {
        return Err(ParamError::UndecodableOtlpBody);
    };
    let (resource_spans, hex_ids) = repeated(&request, "resource_spans", "resourceSpans")?;
    for resource_span in resource_spans {
        let (scope_spans, hex_ids) = repeated(object(resource_span)?, "scope_spans", "scopeSpans")
            .map(|(items, exact)| (items, hex_ids && exact))?;
        for scope_span in scope_spans {
            for span in repeated(object(scope_span)?, "spans", "spans")?.0 {
                read_json_span(object(span)?, hex_ids, spans)?;
            }
        }
    }
    Ok(())
}

/// A repeated field in either spelling, and whether MLflow's hex rewrite reaches into it
/// (spelled exactly `camel`).
fn repeated<'a>(
    message: &'a Map<String, Value>,
    snake: &str,
    camel: &str,
) -> Result<(&'a [Value], bool), ParamError> {
    let exact = message.get(camel).is_some_and(|v| !v.is_null());
    match get_either_spelling(message, snake)? {
        None | Some(Value::Null) => Ok((&[], exact)),
        Some(Value::Array(items)) => Ok((items, exact)),
        Some(_) => Err(ParamError::UndecodableOtlpBody),
    }
}

fn object(value: &Value) -> Result<&Map<String, Value>, ParamError> {
    value.as_object().ok_or(ParamError::UndecodableOtlpBody)
}

fn read_json_span(
    span: &Map<String, Value>,
    hex_ids: bool,
    spans: &mut Spans,
) -> Result<(), ParamError> {
    let id = match (span.get("traceId"), get_either_spelling(span, "trace_id")?) {
        (_, None | Some(Value::Null)) => Vec::new(),
        (Some(Value::String(hex)), _) if hex_ids && !hex.is_empty() => strict_hex(hex)?,
        (_, Some(Value::String(text))) => protobuf_base64(text)?,
        (_, Some(_)) => return Err(ParamError::UndecodableOtlpBody),
    };
    spans.span(&id)?;
    for attribute in repeated(span, "attributes", "attributes")?.0 {
        match object(attribute)?.get("key") {
            None | Some(Value::Null) => {}
            Some(Value::String(key)) => spans.attribute(key)?,
            Some(_) => return Err(ParamError::UndecodableOtlpBody),
        }
    }
    Ok(())
}

/// `bytes.fromhex`, without the whitespace it skips.
fn strict_hex(text: &str) -> Result<Vec<u8>, ParamError> {
    hex::decode(text).map_err(|_| ParamError::UndecodableOtlpBody)
}

/// protobuf's JSON `bytes` (`urlsafe_b64decode` after padding): both alphabets, padding
/// optional, unused trailing bits ignored. Characters it would skip are refused.
fn protobuf_base64(text: &str) -> Result<Vec<u8>, ParamError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let data = text.trim_end_matches('=');
    if text.len() - data.len() > 2 {
        return Err(ParamError::UndecodableOtlpBody);
    }
    let standard: String = data
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    ENGINE
        .decode(standard)
        .map_err(|_| ParamError::UndecodableOtlpBody)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(number << 3 | 2), &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    /// An export with one resource and one scope holding `spans`.
    fn export(spans: &[Vec<u8>]) -> Vec<u8> {
        let scope: Vec<u8> = spans.iter().flat_map(|s| field(2, s)).collect();
        field(1, &field(2, &scope))
    }

    fn span(trace_id: &[u8], keys: &[&str]) -> Vec<u8> {
        let mut out = field(1, trace_id);
        out.extend(field(2, &[1; 8]));
        out.extend(field(5, b"name"));
        // a varint field (start time) is skipped
        out.extend([7 << 3, 42]);
        for key in keys {
            let mut attribute = field(1, key.as_bytes());
            attribute.extend(field(2, &field(1, b"value")));
            out.extend(field(9, &attribute));
        }
        out
    }

    fn ids(params: &Params) -> Vec<&str> {
        params.try_str_values("trace_ids").expect("strings")
    }

    fn tag_keys(params: &Params) -> Vec<String> {
        let keys = params.str_values_at("tags[].key").expect("strings");
        keys.into_iter().map(|key| key.into_owned()).collect()
    }

    const PROTOBUF: Option<&str> = Some("application/x-protobuf");
    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn protobuf_spans_name_mlflow_trace_ids_and_tags() {
        let id = [0xab; 16];
        let body = export(&[
            span(&id, &["mlflow.traceTag.team", "other"]),
            span(&id, &["mlflow.traceTag.mlflow.artifactLocation"]),
            span(&[0, 0, 1], &[]),
            span(&[], &[]),
        ]);
        let params = read_otlp(PROTOBUF, None, &body, 1 << 20).expect("reads");
        assert_eq!(
            ids(&params),
            [
                "tr-abababababababababababababababab",
                "tr-00000000000000000000000000000001"
            ]
        );
        assert_eq!(tag_keys(&params), ["team", "mlflow.artifactLocation"]);
        // a trace id longer than 16 bytes keeps every digit of its integer
        let params =
            read_otlp(PROTOBUF, None, &export(&[span(&[0x0f; 17], &[])]), 1 << 20).expect("reads");
        assert_eq!(ids(&params), [format!("tr-f{}", "0f".repeat(16))]);
    }

    #[test]
    fn the_last_trace_id_of_a_span_wins_and_broken_messages_are_refused() {
        let mut twice = span(&[1; 16], &[]);
        twice.extend(field(1, &[2; 16]));
        let params = read_otlp(PROTOBUF, None, &export(&[twice]), 1 << 20).expect("reads");
        assert_eq!(ids(&params), ["tr-02020202020202020202020202020202"]);
        let mut truncated = export(&[span(&[1; 16], &[])]);
        truncated.pop();
        assert_eq!(
            read_otlp(PROTOBUF, None, &truncated, 1 << 20),
            Err(ParamError::UndecodableOtlpBody)
        );
        let bad_key = export(&[span(&[1; 16], &[])])
            .into_iter()
            .chain(field(
                1,
                &field(2, &field(2, &field(9, &field(1, &[0xff])))),
            ))
            .collect::<Vec<_>>();
        assert!(read_otlp(PROTOBUF, None, &bad_key, 1 << 20).is_err());
    }

    /// `body` compressed as `gzip`, `zlib` or raw deflate.
    fn compressed(format: &str, body: &[u8]) -> Vec<u8> {
        let level = flate2::Compression::best();
        let mut encoder: Box<dyn Read + '_> = match format {
            "gzip" => Box::new(flate2::read::GzEncoder::new(body, level)),
            "zlib" => Box::new(flate2::read::ZlibEncoder::new(body, level)),
            _ => Box::new(flate2::read::DeflateEncoder::new(body, level)),
        };
        let mut out = Vec::new();
        encoder.read_to_end(&mut out).expect("compress");
        out
    }

    #[test]
    fn content_types_and_codings_are_mlflows() {
        let body = export(&[span(&[7; 16], &[])]);
        for content_type in [Some("text/plain"), None] {
            assert_eq!(
                read_otlp(content_type, None, &body, 1 << 20),
                Err(ParamError::UnsupportedOtlpContentType)
            );
        }
        let read = read_otlp(PROTOBUF, Some("GZIP"), &compressed("gzip", &body), 1 << 20)
            .expect("gzip reads");
        assert_eq!(ids(&read).len(), 1);
        for format in ["zlib", "raw"] {
            let deflated = compressed(format, &body);
            let mut with_trailer = deflated.clone();
            with_trailer.extend_from_slice(b"ignored");
            let read = read_otlp(PROTOBUF, Some("deflate"), &with_trailer, 1 << 20)
                .expect("deflate reads");
            assert_eq!(ids(&read).len(), 1);
            let truncated = &deflated[..deflated.len() / 2];
            assert_eq!(
                read_otlp(PROTOBUF, Some("deflate"), truncated, 1 << 20),
                Err(ParamError::UndecodableOtlpBody)
            );
        }
        assert_eq!(
            read_otlp(PROTOBUF, Some("br"), &body, 1 << 20),
            Err(ParamError::UnsupportedContentEncoding)
        );
    }

    #[test]
    fn a_decompression_bomb_is_bounded() {
        let zeros = vec![0u8; 1 << 22];
        for (coding, format) in [("deflate", "zlib"), ("gzip", "gzip")] {
            assert_eq!(
                read_otlp(PROTOBUF, Some(coding), &compressed(format, &zeros), 1 << 16),
                Err(ParamError::OtlpBodyTooLarge(1 << 16))
            );
        }
    }

    #[test]
    fn too_many_spans_traces_or_tags_are_refused() {
        let many: Vec<Vec<u8>> = (0..=MAX_OTLP_TRACES)
            .map(|n| span(&(n as u64 + 1).to_be_bytes(), &[]))
            .collect();
        assert!(matches!(
            read_otlp(PROTOBUF, None, &export(&many), 1 << 24),
            Err(ParamError::TooMuchInOtlpExport { .. })
        ));
        let keys: Vec<String> = (0..=MAX_OTLP_TRACE_TAGS)
            .map(|n| format!("{TRACE_TAG_PREFIX}{n}"))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert!(matches!(
            read_otlp(PROTOBUF, None, &export(&[span(&[1; 16], &keys)]), 1 << 24),
            Err(ParamError::TooMuchInOtlpExport { .. })
        ));
        let same: Vec<Vec<u8>> = (0..=MAX_OTLP_SPANS).map(|_| span(&[1; 16], &[])).collect();
        assert!(matches!(
            read_otlp(PROTOBUF, None, &export(&same), 1 << 24),
            Err(ParamError::TooMuchInOtlpExport { .. })
        ));
    }

    #[test]
    fn json_ids_are_hex_only_where_mlflow_rewrites_them() {
        let hex = "0102030405060708090a0b0c0d0e0f10";
        let camel = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{hex}","attributes":[{{"key":"mlflow.traceTag.mlflow.user","value":{{"stringValue":"x"}}}}]}}]}}]}}]}}"#
        );
        let params = read_otlp(JSON, None, camel.as_bytes(), 1 << 20).expect("reads");
        assert_eq!(ids(&params), [format!("tr-{hex}")]);
        assert_eq!(tag_keys(&params), ["mlflow.user"]);
        // `resource_spans` escapes MLflow's hex rewrite: protobuf reads the id as base64
        let snake = format!(
            r#"{{"resource_spans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{hex}"}}]}}]}}]}}"#
        );
        let params = read_otlp(JSON, None, snake.as_bytes(), 1 << 20).expect("reads");
        let base64_read = protobuf_base64(hex).expect("base64");
        assert_eq!(ids(&params), [mlflow_trace_id(&base64_read)]);
        // so does `trace_id`, whatever the path
        let field = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"trace_id":"AQ-_"}]}]}]}"#;
        let params = read_otlp(JSON, None, field.as_bytes(), 1 << 20).expect("reads");
        assert_eq!(ids(&params), [mlflow_trace_id(&[0x01, 0x0f, 0xbf])]);
    }

    #[test]
    fn ambiguous_or_lenient_json_is_refused() {
        for body in [
            r#"{"resourceSpans":[],"resource_spans":[]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","trace_id":"AQ=="}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0 1"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":7}]}]}]}"#,
            r#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"A!Q="}]}]}]}"#,
            r#"{"resourceSpans":{"scopeSpans":[]}}"#,
            r#"{"resourceSpans":[],"resourceSpans":[]}"#,
            r#"[]"#,
        ] {
            assert!(
                read_otlp(JSON, None, body.as_bytes(), 1 << 20).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn protobuf_base64_reads_like_pythons_urlsafe_decoder() {
        // Expected values from `base64.urlsafe_b64decode(v + "=" * (4 - len(v) % 4))`.
        for (text, bytes) in [
            ("AAAA", &[0u8, 0, 0][..]),
            ("AAA", &[0, 0]),
            ("AA=", &[0]),
            ("AAAA==", &[0, 0, 0]),
            ("ab+/", &[0x69, 0xbf, 0xbf]),
            ("ab-_", &[0x69, 0xbf, 0xbf]),
            ("AB==", &[0]),
            ("AR==", &[1]),
        ] {
            assert_eq!(protobuf_base64(text).expect(text), bytes, "{text}");
        }
        assert!(protobuf_base64("A").is_err());
        assert!(protobuf_base64("AA===").is_err());
    }
}
