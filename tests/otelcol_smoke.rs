//! The OTLP test chain on its own, without the library: a hand-written OTLP/JSON export sent to
//! a real OpenTelemetry Collector (tests/otelcol, `make collector`) arrives at the receiver's
//! /v1/logs as the Collector re-encodes it; and the receiver's /v1/logs answers (partial
//! success, gzip, bad bodies, bad tokens, Retry-After as a date) when posted to directly.
mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const KEY: &str = "otelcol-smoke-key";

/// One export: a resource with service.name, a scope, and one record with every kind of value
/// the library's mapping uses (non-ASCII, an int64 past 2^53, a double, nesting, an empty value).
fn export(message: &str) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "smoke-svc"}}]},
        "scopeLogs": [{
            "scope": {"name": "smoke.logger"},
            "logRecords": [{
                "timeUnixNano": "1700000000123456789",
                "observedTimeUnixNano": "1700000000200000000",
                "severityNumber": 13,
                "severityText": "WARN",
                "body": {"stringValue": message},
                "attributes": [
                    {"key": "user_id", "value": {"stringValue": "u-1"}},
                    {"key": "request_id", "value": {"stringValue": "4f1c2d3e-0000-4000-8000-000000000001"}},
                    {"key": "context", "value": {"kvlistValue": {"values": [
                        {"key": "big", "value": {"intValue": "9007199254740993"}},
                        {"key": "neg", "value": {"intValue": "-42"}},
                        {"key": "ratio", "value": {"doubleValue": 0.25}},
                        {"key": "ok", "value": {"boolValue": true}},
                        {"key": "nothing", "value": {}},
                        {"key": "list", "value": {"arrayValue": {"values": [
                            {"intValue": "1"}, {"stringValue": "zwei"}, {"kvlistValue": {"values": []}}
                        ]}}},
                        {"key": "nested", "value": {"kvlistValue": {"values": [
                            {"key": "ünï", "value": {"stringValue": "çödé ☃"}}
                        ]}}}
                    ]}}}
                ]
            }]
        }]
    }]})
}

fn post_json(
    url: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, String, Vec<(String, String)>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut req = agent.post(url).header("Content-Type", "application/json");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body.as_bytes()).expect("an answer");
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
        headers,
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn attr<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of attributes: {list}"))
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
        .unwrap_or_else(|| panic!("no attribute {key} in {list}"))
}

/// What the Collector (otlpreceiver -> batch -> otlphttp, encoding: json; v0.165.0) makes of the
/// export, as observed:
/// - the record's fields come back as sent: int64s (timeUnixNano, observedTimeUnixNano,
///   intValue) as decimal strings, exact past 2^53; severityNumber as a JSON integer; doubles as
///   JSON numbers; non-ASCII as UTF-8, not \u escapes; the attributes in the order sent;
/// - observedTimeUnixNano is passed on as received (the Collector does not set it; a record
///   without it arrives without it), and empty fields (traceId, spanId, flags, a zero
///   observedTimeUnixNano) are left out, not sent as "" or 0;
/// - an empty value (JSON null in the library's mapping) arrives as `{}`; an empty kvlist as
///   `{"kvlistValue":{}}` (no "values" key);
/// - the resource and the scope are re-encoded the same way (an empty scope version is left out);
/// - it is lenient in what it takes: snake_case keys (`time_unix_nano`) and an intValue as a JSON
///   number are accepted and sent on as lowerCamelCase and a decimal string; an empty
///   `stringValue` stays `{"stringValue":""}`;
/// - its own answer to an export is `{"partialSuccess":{}}` (not `{}`), and it answers 200 as
///   soon as the batch processor has the records: what the receiver behind it answers (a 503, a
///   partial success) never reaches the sender. The otlp_http exporter's User-Agent is
///   "OpenTelemetry Collector for the rarch-logging tests/0.165.0 (linux/amd64)".
#[test]
fn a_record_through_the_collector_arrives_as_sent() {
    let receiver = Receiver::start(KEY);
    let collector = Collector::start(&receiver);
    let sent = export("héllo \"wörld\" ☃ \\ 日本");
    let (status, body, _) = post_json(&collector.url(), &sent.to_string(), &[]);
    assert_eq!(status, 200, "the Collector answered {status}: {body}");

    let records = wait_until(
        Duration::from_secs(20),
        "the record at the receiver",
        || {
            let r = receiver.otlp_records();
            (!r.is_empty()).then_some(r)
        },
    );
    assert_eq!(records.len(), 1, "{records:?}\n{}", collector.log_tail());
    let got = &records[0];
    eprintln!("as the Collector sent it: {got}");
    let want = &sent["resourceLogs"][0];
    assert_eq!(
        attr(&got["resource"]["attributes"], "service.name"),
        &json!({"stringValue": "smoke-svc"})
    );
    assert_eq!(got["scope"]["name"], "smoke.logger");
    let rec = &got["record"];
    let want_rec = &want["scopeLogs"][0]["logRecords"][0];
    for k in [
        "timeUnixNano",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "body",
    ] {
        assert_eq!(rec[k], want_rec[k], "field {k}: {rec}");
    }
    assert_eq!(rec["timeUnixNano"], "1700000000123456789");
    assert_eq!(rec["severityNumber"], 13);
    assert_eq!(rec["body"]["stringValue"], "héllo \"wörld\" ☃ \\ 日本");
    assert_eq!(
        attr(&rec["attributes"], "user_id"),
        &json!({"stringValue": "u-1"})
    );
    let ctx = &attr(&rec["attributes"], "context")["kvlistValue"]["values"];
    assert_eq!(attr(ctx, "big"), &json!({"intValue": "9007199254740993"}));
    assert_eq!(attr(ctx, "neg"), &json!({"intValue": "-42"}));
    assert_eq!(attr(ctx, "ratio"), &json!({"doubleValue": 0.25}));
    assert_eq!(attr(ctx, "ok"), &json!({"boolValue": true}));
    assert_eq!(attr(ctx, "nothing"), &json!({}));
    let list = &attr(ctx, "list")["arrayValue"]["values"];
    assert_eq!(list[0], json!({"intValue": "1"}));
    assert_eq!(list[1], json!({"stringValue": "zwei"}));
    assert_eq!(list[2], json!({"kvlistValue": {}}));
    let nested = &attr(ctx, "nested")["kvlistValue"]["values"];
    assert_eq!(attr(nested, "ünï"), &json!({"stringValue": "çödé ☃"}));
    // nothing that was not sent
    assert!(
        rec.get("traceId").is_none() && rec.get("spanId").is_none(),
        "{rec}"
    );

    let stats = receiver.otlp_stats();
    assert_eq!(stats["records"], 1, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    assert_eq!(
        stats["headers"]["content-type"], "application/json",
        "{stats}"
    );
}

/// The Collector stopped (SIGTERM) and started again on the same port takes exports again.
#[test]
fn the_collector_restarts_on_its_port() {
    let receiver = Receiver::start(KEY);
    let mut collector = Collector::start(&receiver);
    collector.stop();
    let down = ureq::post(&collector.url())
        .header("Content-Type", "application/json")
        .send(export("x").to_string());
    assert!(down.is_err(), "a stopped Collector answered");
    collector.start_again();
    let (status, body, _) = post_json(&collector.url(), &export("after restart").to_string(), &[]);
    assert_eq!(status, 200, "{body}");
    wait_until(
        Duration::from_secs(20),
        "the record after the restart",
        || (receiver.otlp_stats()["records"] == 1).then_some(()),
    );
}

/// Posted straight to the receiver: a partial fault rejects the matching records, gzip bodies
/// are read and counted, a bad bearer token is 401, an absent one is fine, a body that is not
/// OTLP/JSON is 400, and Retry-After can be an HTTP date.
#[test]
fn the_receivers_otlp_endpoint() {
    let receiver = Receiver::start(KEY);
    let url = receiver.otlp_url();
    let mut req = export("keep me");
    let recs = req["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .unwrap();
    let mut poison = recs[0].clone();
    poison["body"]["stringValue"] = json!("a poison pill");
    recs.push(poison.clone());
    recs.push(poison);

    receiver.fault(r#"{"mode":"partial","match":"poison"}"#);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .send(&gzip(req.to_string().as_bytes())[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], "2",
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("poison"),
        "{answer}"
    );
    let records = receiver.otlp_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record"]["body"]["stringValue"], "keep me");
    // the record exactly as posted, int64 strings and all
    assert_eq!(
        records[0]["record"],
        export("keep me")["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    );
    let stats = receiver.otlp_stats();
    assert_eq!(stats["records"], 1, "{stats}");
    assert_eq!(stats["rejected"], 2, "{stats}");
    assert_eq!(stats["gzip_requests"], 1, "{stats}");
    assert_eq!(stats["headers"]["content-encoding"], "gzip", "{stats}");
    receiver.fault(r#"{"mode":"none"}"#);

    // tokens: a good one passes, a bad one is 401, and the header never shows in the stats
    let good = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "smoke-svc", "iat": now(), "exp": now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    let body = export("with a token").to_string();
    let (status, text, _) = post_json(&url, &body, &[("Authorization", &format!("Bearer {good}"))]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        receiver.otlp_stats()["headers"]["authorization"],
        "<present>"
    );
    let (status, _, _) = post_json(&url, &body, &[("Authorization", "Bearer not.a.token")]);
    assert_eq!(status, 401);
    let (status, _, _) = post_json(&url, &body, &[("Authorization", "Basic eDp5")]);
    assert_eq!(status, 401);
    assert_eq!(receiver.otlp_stats()["unauthorized"], 2);

    // bodies that are not OTLP/JSON
    for bad in [
        "not json",
        "[1,2]",
        r#"{"resourceLogs":{}}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[1]}]}]}"#,
    ] {
        let (status, text, _) = post_json(&url, bad, &[]);
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("OTLP/JSON"), "{bad}: {text}");
    }
    assert_eq!(receiver.otlp_stats()["records"], 2);

    // a 503 with Retry-After as an HTTP date, then as seconds
    receiver.fault(
        r#"{"mode":"status","status":503,"retry_after":5,"retry_after_date":true,"count":1}"#,
    );
    let (status, _, headers) = post_json(&url, &body, &[]);
    assert_eq!(status, 503);
    let ra = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.clone())
        .expect("a Retry-After");
    assert!(ra.ends_with(" GMT"), "Retry-After {ra}");
    let format = time::format_description::parse_borrowed::<2>(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]",
    )
    .unwrap();
    let when = time::PrimitiveDateTime::parse(ra.trim_end_matches(" GMT"), &format);
    let when = when.unwrap_or_else(|e| panic!("Retry-After {ra}: {e}"));
    let ahead = when.assume_utc().unix_timestamp() - now() as i64;
    assert!(
        (3..=6).contains(&ahead),
        "Retry-After {ra} is {ahead} s ahead"
    );
    receiver.fault(r#"{"mode":"status","status":429,"retry_after":7,"count":1}"#);
    let (status, _, headers) = post_json(&url, &body, &[]);
    assert_eq!(status, 429);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("retry-after") && v == "7"));
    let (status, _, _) = post_json(&url, &body, &[]);
    assert_eq!(status, 200);
    // the partial fault, the 503 and the 429
    assert_eq!(receiver.otlp_stats()["faults"], 3);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// With -otlp-count-only the receiver counts the records (by walking the export's bytes) and
/// keeps none; a record that is not an object is still a 400.
#[test]
fn the_receiver_counts_only() {
    let receiver = Receiver::start_with(KEY, &["-otlp-count-only"]);
    let url = receiver.otlp_url();
    let mut req = export("one");
    let rl = req["resourceLogs"][0].clone();
    let recs = req["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .unwrap();
    let rec = recs[0].clone();
    recs.push(rec);
    req["resourceLogs"].as_array_mut().unwrap().push(rl);
    let (status, text, _) = post_json(&url, &req.to_string(), &[]);
    assert_eq!(status, 200, "{text}");
    let (status, _, _) = post_json(
        &url,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":["x"]}]}]}"#,
        &[],
    );
    assert_eq!(status, 400);
    assert_eq!(receiver.otlp_stats()["records"], 3);
    assert!(receiver.otlp_records().is_empty());
}
