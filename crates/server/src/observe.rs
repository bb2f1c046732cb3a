//! One tracing span per HTTP request, and its request id.
//!
//! [`trace`] is the router's outermost middleware. It gives every request an id —
//! the caller's `x-request-id` when that is sane (1 to [`MAX_REQUEST_ID`] visible
//! ASCII characters), else a fresh one — and echoes it in the response's
//! `x-request-id`, so that a caller can quote it and an operator can find the
//! request's log lines. The span `request` carries the method, the matched route
//! template (`/v1/jobs/{id}`, never the raw path with its ids or query), the
//! request id, and once answered the status and the latency; everything the
//! handler logs happens inside it. The span is at debug (`-v`, `RUST_LOG=debug`):
//! at info it would cost every request a tenth of its CPU time. One line per
//! request is logged when it is answered: at debug, or at warn for a 5xx other
//! than 500 and at error for a 500, then with the method, route, request id and
//! status as fields of the line itself, so that they show at any level.
//!
//! It never logs headers: the `Authorization` header (a bearer token) cannot leak
//! through here. It does no IO of its own and keeps no state besides the id
//! generator.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// Middleware: the request's span, its id (taken or made, and echoed) and its
/// log line, and the request's count and latency in the metrics. Install with
/// `.layer(axum::middleware::from_fn_with_state(metrics, observe::trace))` on the
/// router, where it sees the matched route. (One middleware for both: each layer
/// costs every request a few thousand instructions.)
///
/// It is on every request's path, so it allocates as little as it can: a
/// caller's id is the header value it came in (shared, not copied), a new one is
/// written on the stack.
pub async fn trace(
    State(metrics): State<Arc<crate::metrics::Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = match request.headers().get(&REQUEST_ID) {
        Some(given) if given.to_str().is_ok_and(is_sane) => given.clone(),
        _ => generate(),
    };
    // A cheap clone (a shared string), kept to name the route after the answer.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    // At debug: an enabled span costs every request a formatting of its fields,
    // about a tenth of a submit's CPU time (docs/BENCHMARKS.md). With debug on,
    // everything a handler logs carries it; the lines for a 5xx name the request
    // id and route themselves, so they carry them at any level.
    let span = tracing::debug_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %id.to_str().unwrap_or_default(),
        status = Empty,
        latency_ms = Empty,
    );
    let method = request.method().clone();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    metrics.record_request(
        route,
        method.as_str(),
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    let request_id = id.to_str().unwrap_or_default();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%method, %route, %request_id, status = status.as_u16(), latency_ms, "request failed");
    } else if status.is_server_error() {
        tracing::warn!(%method, %route, %request_id, status = status.as_u16(), latency_ms, "request not served");
    } else if !span.is_disabled() {
        span.record("status", status.as_u16());
        span.record("latency_ms", latency_ms);
        span.in_scope(|| tracing::debug!("request"));
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// Whether a caller's request id may be used as it is: short, and only visible
/// ASCII (no spaces or control characters to forge log lines with).
pub fn is_sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A fresh request id: 16 hex digits, distinct for every request of this process
/// (a counter through a bijective mix) and unlikely to repeat across processes
/// (a random start).
fn generate() -> HeaderValue {
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            // No random source: the start time still tells processes apart.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let value = mix(seed.wrapping_add(n.wrapping_mul(GOLDEN)));
    let mut hex = [0u8; 16];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(value >> (60 - 4 * i)) as usize & 0xf];
    }
    HeaderValue::from_bytes(&hex).expect("hex digits are a valid header value")
}

/// An odd constant (2^64 / golden ratio): steps of it visit every u64.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijection on u64, so distinct counters give
/// distinct ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_short_visible_ascii() {
        assert!(is_sane("abc-123_XYZ.~:/"));
        assert!(is_sane(&"x".repeat(MAX_REQUEST_ID)));
        assert!(!is_sane(""));
        assert!(!is_sane(&"x".repeat(MAX_REQUEST_ID + 1)));
        assert!(!is_sane("two words"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane("caf\u{e9}"));
    }

    #[test]
    fn generated_ids_are_distinct_hex() {
        let ids: std::collections::BTreeSet<String> = (0..10_000)
            .map(|_| generate().to_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter().all(|id| id.len() == 16
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && is_sane(id))
        );
    }
}
