//! One tracing span per HTTP request, and its request id.
//!
//! [`trace`] is the router's outermost middleware. It gives every request an id —
//! the caller's `x-request-id` when that is sane (1 to [`MAX_REQUEST_ID`] visible
//! ASCII characters), else a fresh one — and echoes it in the response's
//! `x-request-id`, so that a caller can quote it and an operator can find the
//! request's log lines. The span `request` carries the method, the matched route
//! template (`/v1/jobs/{id}`, never the raw path with its ids or query), the
//! request id, and once answered the status and the latency; everything the
//! handler logs happens inside it. One line per request is logged when it is
//! answered: at debug, at warn for a 5xx other than 500, at error for a 500.
//!
//! It never logs headers: the `Authorization` header (a bearer token) cannot leak
//! through here. It does no IO of its own and keeps no state besides the id
//! generator.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// The id of the request being handled, for handlers that want to quote it
/// (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Middleware: the request's span, its id (taken or made, and echoed) and its
/// log line. Install with `.layer(axum::middleware::from_fn(observe::trace))` on
/// the router, where it sees the matched route.
pub async fn trace(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(generate, str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    // At info, so that what a handler logs at info or above carries the request
    // id; the per-request line itself is at debug.
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %id,
        status = Empty,
        latency_ms = Empty,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    span.record("status", status.as_u16());
    span.record("latency_ms", latency_ms);
    span.in_scope(|| {
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("request failed");
        } else if status.is_server_error() {
            tracing::warn!("request not served");
        } else {
            tracing::debug!("request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
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
fn generate() -> String {
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
    format!("{:016x}", mix(seed.wrapping_add(n.wrapping_mul(GOLDEN))))
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
        let ids: std::collections::BTreeSet<String> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter().all(|id| id.len() == 16
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && is_sane(id))
        );
    }
}
