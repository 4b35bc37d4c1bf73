//! W3C trace context carried in NATS headers, so one complaint is one trace across services.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Writes the current span's context into `headers`.
pub fn inject_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// The context a message carries, or an empty one.
pub fn extract_context(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(h) => TraceContextPropagator::new().extract(&HeaderExtractor(h)),
        None => opentelemetry::Context::new(),
    }
}

/// Makes `span` a child of the trace the message carries.
pub fn set_parent_from_headers(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let cx = extract_context(headers);
    use opentelemetry::trace::TraceContextExt;
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` value of the current span, if it has a valid context.
pub fn current_traceparent() -> Option<String> {
    let mut h = HeaderMap::new();
    inject_context(&mut h);
    h.get("traceparent").map(|v| v.as_str().to_string())
}

/// The header that carries the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// A `traceparent` of a new, sampled trace: random trace and parent ids.
pub fn fresh_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{parent}-01")
}
