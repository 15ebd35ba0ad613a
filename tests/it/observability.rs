//! Traces, metrics, logs and the audit record of one modify + watch, as an
//! operator would collect them: spans through a real OTLP/gRPC export to an
//! in-process collector, `/metrics` from the admin listener (checked by
//! `promtool check metrics`), every log line through the JSON formatter.
//! Then none of it may contain the configured credentials.
//!
//! The test runs in a process of its own (`support::in_own_process`): it
//! installs the process-wide subscriber, tracer provider and propagator.
//! The metrics are the started gateway's own, read from its admin listener.

use std::{
    io::Write as _,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind},
};
use sslvpn_gateway::{
    cloud::Credentials,
    emulator::{EmulatorConfig, fixtures::AccessKey},
    pb,
    server::config::CredentialSource,
    telemetry::{self, LogFormat, TelemetryConfig},
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::support::{Capture, harness::*, in_own_process, sample, scrape};

// Credentials only this test uses, so finding them anywhere is a leak.
const AK_ID: &str = "LTAI5tOBSERVEKEYID9Q";
const AK_SECRET: &str = "ObsSecretZq81mX0vT4wY6pL3nB7cK2";
const STS_TOKEN: &str = "CAIS.ObsToken+Zq81/mX0vT4==";

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_A: &str = "00f067aa0ba902b7";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_B: &str = "b7ad6b7169203331";

const MODIFY: &str = "sslvpn.v1.SslVpnService/ModifySslVpnServer";
const WATCH: &str = "sslvpn.v1.SslVpnService/WatchSslVpnServer";

/// Every export request the collector received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    fn spans(&self) -> Vec<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    fn service_names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .filter_map(|r| r.resource.as_ref())
            .flat_map(|r| &r.attributes)
            .filter(|kv| kv.key == "service.name")
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

fn attr_str(span: &Span, key: &str) -> Option<String> {
    match attr(span, key)? {
        Value::StringValue(s) => Some(s),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn in_trace<'a>(spans: &'a [Span], trace: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| hex(&s.trace_id) == trace).collect()
}

fn one<'a>(spans: &[&'a Span], what: &str, pred: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&&Span> = spans.iter().filter(|s| pred(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what}, found {}", found.len());
    found[0]
}

fn with_traceparent<T>(message: T, trace: &str, parent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{parent}-01").parse().unwrap(),
    );
    request
}

fn promtool_check(metrics: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if std::env::var_os("SSLVPN_SKIP_PROMTOOL").is_some() => {
            eprintln!("promtool not run ({err}); SSLVPN_SKIP_PROMTOOL is set");
            return;
        }
        Err(err) => panic!(
            "promtool is needed ({err}): apt-get install prometheus, or set SSLVPN_SKIP_PROMTOOL=1"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modify_and_its_watch_are_traced_measured_logged_and_audited() {
    if !in_own_process(
        "observability::a_modify_and_its_watch_are_traced_measured_logged_and_audited",
    )
    .await
    {
        return;
    }
    // The collector, then telemetry exporting to it.
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let logs = Capture::default();
    let telemetry = telemetry::init(TelemetryConfig {
        log_format: LogFormat::Json,
        // Everything, third-party crates included: the secret scan below
        // covers the most verbose logs an operator can turn on.
        log_filter: "trace".into(),
        log_writer: BoxMakeWriter::new(logs.clone()),
        otlp_endpoint: Some(format!("http://{collector_addr}")),
    })
    .expect("telemetry starts");
    assert!(telemetry.is_exporting());

    // An emulator that knows only this test's STS key, and a gateway using it.
    let mut emulator_config = EmulatorConfig {
        timings: timings(150, 150),
        ..EmulatorConfig::default()
    };
    let mut key = AccessKey::new(AK_ID, AK_SECRET);
    key.security_token = Some(STS_TOKEN.into());
    emulator_config.fixtures.access_keys = vec![key];
    let emulator = start_emulator(emulator_config).await;
    let mut config = gateway_config(&emulator);
    config.credentials =
        CredentialSource::Static(Credentials::new(AK_ID, AK_SECRET).with_security_token(STS_TOKEN));
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let (server, mut client) = start_gateway(config).await;
    let admin = server.admin_addr().expect("admin listener");
    let http = reqwest::Client::new();
    let before = scrape(&http, admin).await;

    // A modify under the caller's trace A.
    let reply = client
        .modify_ssl_vpn_server(with_traceparent(
            port_change(SERVER, 1195),
            TRACE_A,
            PARENT_A,
        ))
        .await
        .expect("modify accepted")
        .into_inner();
    let operation = reply.operation.clone().expect("an operation");
    assert!(!operation.done);
    // A refused one, for the code label and the audit outcome.
    let refused = client
        .modify_ssl_vpn_server(port_change(SERVER, 443))
        .await
        .expect_err("port 443 is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // Its watch under trace B, to the end.
    let stream = client
        .watch_ssl_vpn_server(with_traceparent(
            watch(SERVER, &operation.id),
            TRACE_B,
            PARENT_B,
        ))
        .await
        .expect("watch starts")
        .into_inner();
    let messages = collect(stream).await;
    assert_eq!(
        messages.last().map(|m| m.phase()),
        Some(pb::Phase::Succeeded)
    );
    // The shared poller stops once its last watcher has left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sample(&scrape(&http, admin).await, "sslvpn_watch_pollers_active") != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: the poller stops"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // --- metrics: the admin listener serves them, promtool accepts them,
    // and the series moved.
    let response = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let after = response.text().await.unwrap();
    promtool_check(&after);
    let moved = |series: &str| {
        sample(&after, series).unwrap_or(0.0) - sample(&before, series).unwrap_or(0.0)
    };
    assert_eq!(
        moved(&format!(
            "sslvpn_rpc_requests_total{{method=\"{MODIFY}\",code=\"OK\"}}"
        )),
        1.0
    );
    assert_eq!(
        moved(&format!(
            "sslvpn_rpc_requests_total{{method=\"{MODIFY}\",code=\"INVALID_ARGUMENT\"}}"
        )),
        1.0
    );
    assert_eq!(
        moved(&format!(
            "sslvpn_rpc_requests_total{{method=\"{WATCH}\",code=\"OK\"}}"
        )),
        1.0
    );
    assert_eq!(
        moved(&format!(
            "sslvpn_rpc_duration_seconds_count{{method=\"{WATCH}\"}}"
        )),
        1.0
    );
    assert_eq!(
        moved("sslvpn_upstream_requests_total{action=\"ModifySslVpnServer\",outcome=\"success\"}"),
        1.0
    );
    assert!(
        moved("sslvpn_upstream_requests_total{action=\"DescribeVpnGateway\",outcome=\"success\"}")
            >= 2.0,
        "the modify's pre-flight and the poller's rounds"
    );
    assert!(
        moved("sslvpn_upstream_request_duration_seconds_count{action=\"DescribeSslVpnServers\"}")
            >= 2.0
    );
    assert_eq!(
        moved("sslvpn_modifications_total{result=\"accepted\"}"),
        1.0
    );
    assert_eq!(moved("sslvpn_modifications_total{result=\"invalid\"}"), 1.0);
    assert_eq!(
        moved("sslvpn_modification_completion_seconds_count{phase=\"succeeded\"}"),
        1.0
    );
    assert_eq!(sample(&after, "sslvpn_watch_streams_active"), Some(0.0));
    assert_eq!(sample(&after, "sslvpn_watch_pollers_active"), Some(0.0));
    assert_eq!(
        sample(&after, "sslvpn_gateways{status=\"active\"}"),
        Some(0.0),
        "no gateway is polled any more"
    );
    assert_eq!(
        moved("sslvpn_credential_refresh_failures_total{provider=\"static_sts\"}"),
        0.0
    );
    assert_eq!(
        sample(
            &after,
            &format!(
                "sslvpn_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );

    // --- the upstream saw trace A, from a client span.
    let traceparents = emulator.counters().traceparents;
    let upstream_a: Vec<&String> = traceparents
        .iter()
        .filter(|t| t.starts_with(&format!("00-{TRACE_A}-")))
        .collect();
    assert_eq!(
        upstream_a.len(),
        3,
        "the modify's DescribeSslVpnServers, DescribeVpnGateway and ModifySslVpnServer: {traceparents:?}"
    );

    // --- spans: stop the server (ending every span), flush, read.
    server.shutdown().await.expect("clean shutdown");
    telemetry.force_flush().await;
    let spans = collector.spans();
    assert!(
        collector
            .service_names()
            .iter()
            .all(|n| n == "sslvpn-gateway"),
        "{:?}",
        collector.service_names()
    );
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    for name in &names {
        assert!(
            [
                MODIFY,
                WATCH,
                "DescribeSslVpnServers",
                "DescribeVpnGateway",
                "ModifySslVpnServer",
                "POST",
                "watch stream",
                "sweep region",
            ]
            .contains(name),
            "unexpected span {name:?}: only the gateway's own spans are exported"
        );
    }

    // The modify: server span under the caller's span, the cloud calls
    // below it, an HTTP client span per attempt, each the upstream's parent.
    let a = in_trace(&spans, TRACE_A);
    let rpc = one(&a, "modify server span", |s| s.name == MODIFY);
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(hex(&rpc.parent_span_id), PARENT_A);
    assert_eq!(attr_str(rpc, "rpc.system.name").as_deref(), Some("grpc"));
    assert_eq!(attr_str(rpc, "rpc.method").as_deref(), Some(MODIFY));
    assert_eq!(
        attr_str(rpc, "rpc.response.status_code").as_deref(),
        Some("OK")
    );
    assert_eq!(attr_str(rpc, "error.type"), None);
    assert_eq!(
        attr_str(rpc, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    let calls: Vec<&&Span> = a
        .iter()
        .filter(|s| s.parent_span_id == rpc.span_id)
        .collect();
    let mut call_names: Vec<&str> = calls.iter().map(|s| s.name.as_str()).collect();
    call_names.sort_unstable();
    assert_eq!(
        call_names,
        [
            "DescribeSslVpnServers",
            "DescribeVpnGateway",
            "ModifySslVpnServer"
        ]
    );
    let modify_call = calls
        .iter()
        .find(|s| s.name == "ModifySslVpnServer")
        .unwrap();
    assert_eq!(
        attr_str(modify_call, "acs.request_id").as_deref(),
        Some(reply.request_id.as_str())
    );
    let http_spans: Vec<&&Span> = a.iter().filter(|s| s.name == "POST").collect();
    assert_eq!(http_spans.len(), 3);
    for span in &http_spans {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert!(calls.iter().any(|c| c.span_id == span.parent_span_id));
        assert_eq!(
            attr_str(span, "http.request.method").as_deref(),
            Some("POST")
        );
        assert_eq!(
            attr(span, "http.response.status_code"),
            Some(Value::IntValue(200))
        );
        assert_eq!(
            attr_str(span, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        let parent = format!("00-{TRACE_A}-{}-01", hex(&span.span_id));
        assert!(
            upstream_a.contains(&&parent),
            "the upstream's parent is this client span: {parent} not in {upstream_a:?}"
        );
    }

    // The refused modify: its own trace, the code, no server error.
    let invalid = one(
        &spans.iter().collect::<Vec<_>>(),
        "refused modify span",
        |s| {
            s.name == MODIFY
                && attr_str(s, "rpc.response.status_code").as_deref() == Some("INVALID_ARGUMENT")
        },
    );
    assert_ne!(hex(&invalid.trace_id), TRACE_A);
    assert!(invalid.parent_span_id.is_empty(), "a new trace");
    assert_eq!(attr_str(invalid, "error.type"), None);

    // The watch: server span under the caller's, the producer below it with
    // an event per phase, linked to the poller; the poller a root of its
    // own, linked back to the watch, with an event per state change.
    let b = in_trace(&spans, TRACE_B);
    let watch_rpc = one(&b, "watch server span", |s| s.name == WATCH);
    assert_eq!(watch_rpc.kind, SpanKind::Server as i32);
    assert_eq!(hex(&watch_rpc.parent_span_id), PARENT_B);
    assert_eq!(
        attr_str(watch_rpc, "rpc.response.status_code").as_deref(),
        Some("OK")
    );
    assert!(
        watch_rpc.end_time_unix_nano - watch_rpc.start_time_unix_nano >= 150_000_000,
        "the server span covers the whole stream"
    );
    let producer = one(&b, "watch producer span", |s| s.name == "watch stream");
    assert_eq!(producer.kind, SpanKind::Producer as i32);
    assert_eq!(producer.parent_span_id, watch_rpc.span_id);
    let phases: Vec<String> = producer
        .events
        .iter()
        .filter(|e| e.name == "watch phase changed")
        .filter_map(|e| {
            e.attributes
                .iter()
                .find(|kv| kv.key == "phase")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
        })
        .collect();
    assert!(phases.len() >= 2, "{phases:?}");
    assert_eq!(phases.last().map(String::as_str), Some("Succeeded"));

    let pollers: Vec<&Span> = spans.iter().filter(|s| s.name == "sweep region").collect();
    assert_eq!(pollers.len(), 1);
    let poller = pollers[0];
    assert_eq!(poller.kind, SpanKind::Internal as i32);
    assert!(poller.parent_span_id.is_empty(), "the poller is a root");
    assert_ne!(hex(&poller.trace_id), TRACE_B);
    assert!(
        poller
            .links
            .iter()
            .any(|l| l.span_id == watch_rpc.span_id && hex(&l.trace_id) == TRACE_B),
        "the poller links to the watch call that started it"
    );
    assert!(
        producer
            .links
            .iter()
            .any(|l| l.span_id == poller.span_id && l.trace_id == poller.trace_id),
        "the producer links to the poller"
    );
    let changes = poller
        .events
        .iter()
        .filter(|e| e.name == "gateway state changed")
        .count();
    assert!(changes >= 2, "active → updating → active: {changes}");
    // The poller's cloud calls are its children.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "DescribeVpnGateway" && s.parent_span_id == poller.span_id)
    );

    // --- logs: JSON lines; the ids of the active span on those inside one;
    // the audit record.
    let log_text = logs.text();
    let lines: Vec<serde_json::Value> = log_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // The audit target also carries the access decisions of the auth layer;
    // the modify records are those naming the action.
    let audits: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "audit" && l["action"] == "ModifySslVpnServer")
        .collect();
    assert_eq!(audits.len(), 2, "one record per modify");
    let audit = audits
        .iter()
        .find(|l| l["outcome"] == "accepted")
        .expect("the accepted modify's record");
    assert_eq!(audit["trace_id"], TRACE_A);
    assert_eq!(audit["caller"], "anonymous");
    assert_eq!(audit["region_id"], REGION);
    assert_eq!(audit["ssl_vpn_server_id"], SERVER);
    assert_eq!(audit["fields"], "port");
    assert_eq!(audit["changes"], "{\"port\":1195}");
    assert_eq!(audit["client_token"], reply.client_token.as_str());
    assert_eq!(audit["request_id"], reply.request_id.as_str());
    assert_eq!(audit["code"], "OK");
    assert!(audit["duration_ms"].is_u64());
    let refused_audit = audits
        .iter()
        .find(|l| l["outcome"] == "invalid")
        .expect("the refused modify's record");
    assert_eq!(refused_audit["code"], "INVALID_ARGUMENT");
    assert_eq!(refused_audit["changes"], "{\"port\":443}");
    // Every line logged inside the modify's server span carries its ids.
    let rpc_id = hex(&rpc.span_id);
    assert!(
        lines
            .iter()
            .filter(|l| l["span_id"] == rpc_id.as_str())
            .all(|l| l["trace_id"] == TRACE_A)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["trace_id"] == TRACE_B && l["message"] == "watch complete")
    );

    // --- no secret anywhere.
    let exported = format!("{:?}", collector.0.lock().unwrap());
    let encoded_token = STS_TOKEN
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    for secret in [AK_ID, AK_SECRET, STS_TOKEN, encoded_token.as_str()] {
        assert!(!log_text.contains(secret), "a log line holds {secret}");
        assert!(!exported.contains(secret), "a span holds {secret}");
        assert!(!after.contains(secret), "a metric holds {secret}");
    }
    // The scan is not vacuous: the run was logged in detail.
    assert!(lines.len() > 50, "{} log lines", lines.len());

    telemetry.shutdown().await;
}
