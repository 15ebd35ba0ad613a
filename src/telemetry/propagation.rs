//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP
//! headers: extracted from every incoming gRPC call, injected into every
//! upstream request.
//!
//! The two small adapters between `http::HeaderMap` and the OpenTelemetry
//! propagator API are written here rather than pulled from
//! `opentelemetry-http`, which would bring a dependency for twenty lines.
//! Without `telemetry::init` the global propagator is a no-op and nothing
//! is read or written.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads propagation fields from request headers.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes propagation fields into request headers.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // A value the propagator built is always a valid header; skip it
        // rather than fail the request if it ever is not.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context from incoming headers (empty when absent or
/// malformed: the call then starts a new trace).
pub fn extract(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Adds the current span's `traceparent` (and `tracestate`) to `headers`,
/// so the upstream's spans join this trace as children of the current span.
pub fn inject_current(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}
