//! The web console's embedded files, served from the router's fallback: only a
//! path no API route matched reaches here, so the console can never shadow `/v1`,
//! `/metrics`, `/healthz` or `/openapi.json`. Hashed `assets/*` are cached as
//! immutable, `index.html` is `no-cache`; gzip is sent to clients that take it.

use crate::error::ApiError;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

/// The web console's embedded files: `/` is its index, `/assets/*` its scripts and
/// styles. Only paths no API route matched reach here, so the console can never
/// shadow `/v1`, `/metrics`, `/healthz` or `/openapi.json`; anything else is the
/// API's ordinary 404.
pub(crate) async fn console_asset(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers_in: HeaderMap,
) -> axum::response::Response {
    use axum::http::{Method, header};
    let asset = match method {
        Method::GET | Method::HEAD => suanwang_console::asset(uri.path()),
        _ => None,
    };
    let Some(asset) = asset else {
        return ApiError::NotFound(format!("no route for {method} {}", uri.path())).into_response();
    };
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::VARY, "accept-encoding"),
    ];
    match asset.gzip.filter(|_| accepts_gzip(&headers_in)) {
        Some(gzip) => (headers, [(header::CONTENT_ENCODING, "gzip")], gzip).into_response(),
        None => (headers, asset.bytes).into_response(),
    }
}

/// Whether `Accept-Encoding` takes gzip (named with a q-value above zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
        })
}
