//! Logs and traces: one `tracing` subscriber feeding a log formatter and,
//! through `tracing-opentelemetry`, OpenTelemetry spans exported over
//! OTLP/gRPC.
//!
//! It exists so the rest of the code only ever writes `tracing` spans and
//! events, and so the choices about them live in one place:
//! - Logs are human-readable lines by default and JSON objects with
//!   `--log-format json`; their level comes from `--log-level` or
//!   `RUST_LOG`. While an OpenTelemetry span is active every line carries
//!   its `trace_id` and `span_id`, so a log line leads to its trace.
//! - Spans are exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set: without them no exporter,
//!   thread or connection exists. Spans still get ids (for the log lines and
//!   the W3C `traceparent` sent upstream), which costs a few allocations per
//!   span and no I/O. `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//!   `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` are honoured by the
//!   SDK itself; `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none`
//!   turn export off.
//! - Only this crate's spans become OpenTelemetry spans: the h2, hyper and
//!   tower spans below them never leave the process. The log level does not
//!   decide what is traced, and tracing does not decide what is logged.
//!
//! `rpc` is the per-call server layer (span, status, metrics); `propagation`
//! carries the W3C trace context in and out.

pub mod propagation;

use std::{fmt, io, time::Duration};

use clap::{Args, ValueEnum};
use opentelemetry::{
    global,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::Targets,
    fmt::{
        FmtContext, FormatEvent, FormatFields, MakeWriter,
        format::{DefaultFields, JsonFields, Writer},
        writer::BoxMakeWriter,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
};

/// The canonical name of a gRPC status code number (metric labels, logs).
pub fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The service name when neither `OTEL_SERVICE_NAME` nor a `service.name`
/// in `OTEL_RESOURCE_ATTRIBUTES` gives one.
pub const DEFAULT_SERVICE_NAME: &str = "sslvpn-gateway";

/// The instrumentation scope of every span this crate exports.
const TRACER_NAME: &str = "sslvpn-gateway";

/// The target prefix of the spans that become OpenTelemetry spans.
const TRACED_TARGET: &str = "sslvpn_gateway";

/// `--log-format` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags, shared by every subcommand.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// Log line format: `text` (readable) or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "SSLVPN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Log level or filter directives (`debug`, `info,sslvpn_gateway=debug`,
    /// `audit=off`...). Without it `RUST_LOG` decides, else `info`.
    #[arg(long, global = true, env = "SSLVPN_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Everything `init` needs; `from_env` reads the process environment, tests
/// fill it in directly.
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// Filter directives for the logs (`info`, `debug,h2=warn`...).
    pub log_filter: String,
    /// Where log lines go (stderr by default).
    pub log_writer: BoxMakeWriter,
    /// The OTLP/gRPC endpoint spans go to; `None`: no export. With
    /// `Some("")` the exporter resolves the endpoint from the environment.
    pub otlp_endpoint: Option<String>,
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish_non_exhaustive()
    }
}

impl TelemetryConfig {
    /// The configuration from the flags and the standard variables.
    pub fn from_env(args: &LogArgs) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let log_filter = args
            .log_level
            .clone()
            .or_else(|| var("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let configured = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
        Self {
            log_format: args.log_format,
            log_filter,
            log_writer: BoxMakeWriter::new(io::stderr),
            // The exporter reads the variables itself (with their precedence).
            otlp_endpoint: (configured && !disabled).then(String::new),
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// The running pipeline; flushes and stops the exporter on `shutdown`.
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Telemetry {
    /// Whether spans leave the process.
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// Sends every finished span now (tests, and before a planned exit).
    pub async fn force_flush(&self) {
        let provider = self.provider.clone();
        // The SDK blocks; keep it off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }

    /// Flushes the spans still buffered and stops the exporter. Call after
    /// the server has drained, so the last calls' spans are included.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let result = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        })
        .await;
        if let Ok(Err(err)) = result {
            // The subscriber still works: say so where the operator looks.
            tracing::warn!(error = %err, "flushing the last spans failed");
        }
    }
}

/// The tracer provider: with a batch OTLP exporter when an endpoint is
/// configured, without any otherwise. Must run inside a Tokio runtime (the
/// exporter's channel lives there).
pub fn tracer_provider(otlp_endpoint: Option<&str>) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder();
    let env_names_service = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    if !env_names_service {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    // The sampler comes from OTEL_TRACES_SAMPLER(_ARG) through the SDK's
    // default configuration (parent-based, always on, when unset).
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if let Some(endpoint) = otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if !endpoint.is_empty() {
            exporter = exporter.with_endpoint(endpoint);
        }
        builder = builder.with_batch_exporter(exporter.build()?);
    }
    Ok(builder.build())
}

/// Installs the global subscriber, the W3C propagator and the tracer
/// provider. Call once, inside the Tokio runtime, before serving.
pub fn init(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let exporting = config.otlp_endpoint.is_some();
    let provider = tracer_provider(config.otlp_endpoint.as_deref())?;
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    let subscriber = subscriber(
        config.log_format,
        &config.log_filter,
        config.log_writer,
        &provider,
    )?;
    tracing_subscriber::util::SubscriberInitExt::try_init(subscriber)?;
    Ok(Telemetry {
        provider,
        exporting,
    })
}

/// The subscriber `init` installs, for callers (tests) that scope it.
pub fn subscriber<W>(
    format: LogFormat,
    log_filter: &str,
    writer: W,
    provider: &SdkTracerProvider,
) -> Result<impl Subscriber + Send + Sync + 'static, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(log_filter).map_err(|e| TelemetryError::Filter {
        filter: log_filter.to_owned(),
        reason: e.to_string(),
    })?;
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .event_format(WithTraceIds::new(
                tracing_subscriber::fmt::format().with_ansi(false),
            ))
            .fmt_fields(DefaultFields::new())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .event_format(WithTraceIds::new(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .fmt_fields(JsonFields::new())
            .with_filter(filter)
            .boxed(),
    };
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(TRACER_NAME))
        // File, line, thread and target attributes would only add noise.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        // Our spans and their events only: never h2/hyper/tower internals.
        .with_filter(Targets::new().with_target(TRACED_TARGET, Level::DEBUG));
    Ok(tracing_subscriber::registry().with(traces).with(logs))
}

/// Adds the active OpenTelemetry span's `trace_id` and `span_id` to every
/// log line written while one is active: as the last `key=value` pairs of a
/// text line, as two more members of a JSON object.
///
/// The ids come from the OpenTelemetry context the tracing layer activates
/// when a span is entered, so they are exactly those exported and sent
/// upstream in `traceparent`.
pub struct WithTraceIds<F> {
    inner: F,
}

impl<F> WithTraceIds<F> {
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        let (trace_id, span_id) = (ids.trace_id(), ids.span_id());
        match body.strip_prefix('{') {
            Some(rest) => {
                let sep = if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                writeln!(
                    writer,
                    "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{sep}{rest}"
                )
            }
            None => writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn capture(format: LogFormat) -> String {
        let provider = tracer_provider(None).unwrap();
        let buffer = Buffer::default();
        let subscriber = subscriber(format, "info", buffer.clone(), &provider).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("work", item = 7);
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside a span");
        });
        buffer.text()
    }

    fn is_hex(s: &str, len: usize) -> bool {
        s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
    }

    #[test]
    fn text_lines_end_with_the_ids_inside_spans_only() {
        let out = capture(LogFormat::Text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].ends_with("outside any span"), "{out}");
        assert!(!lines[0].contains("trace_id"), "{out}");
        let (head, ids) = lines[1].split_once(" trace_id=").expect("ids appended");
        assert!(
            head.contains("inside a span") && head.contains("answer=42"),
            "{out}"
        );
        let (trace_id, span_id) = ids.split_once(" span_id=").unwrap();
        assert!(is_hex(trace_id, 32) && is_hex(span_id, 16), "{out}");
    }

    #[test]
    fn json_objects_carry_the_ids_inside_spans_only() {
        let out = capture(LogFormat::Json);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["message"], "inside a span");
        assert_eq!(lines[1]["answer"], 42);
        assert_eq!(lines[1]["span"]["name"], "work");
        assert!(is_hex(lines[1]["trace_id"].as_str().unwrap(), 32), "{out}");
        assert!(is_hex(lines[1]["span_id"].as_str().unwrap(), 16), "{out}");
    }

    #[test]
    fn a_bad_filter_is_reported() {
        let provider = tracer_provider(None).unwrap();
        let err = subscriber(LogFormat::Text, "[[[", io::sink, &provider)
            .err()
            .expect("rejected");
        assert!(matches!(err, TelemetryError::Filter { .. }));
    }
}
