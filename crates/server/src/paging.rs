//! Paging of the short lists read whole from the store and filtered by who
//! asks (`GET /v1/agents`, `GET /v1/tokens`): id order, an `after` cursor, a
//! `limit`, and a `Link` header naming the next page when more follow.

use crate::error::ApiError;
use axum::http::HeaderValue;
use suanwang_api::PageQuery;
use suanwang_api::jobs::MAX_PAGE;

/// Default page size.
const DEFAULT_PAGE: u32 = 100;

/// Longest `after` cursor, bytes (an id is far shorter).
const MAX_CURSOR: usize = 256;

/// The page `query` asks for of `items`, each known by `id`, and the `Link`
/// header of the next page (under `path`) when more follow. 422 for a
/// `limit` out of range or an `after` longer than any id.
pub(crate) fn page<T>(
    mut items: Vec<T>,
    id: impl Fn(&T) -> &str,
    query: &PageQuery,
    path: &str,
) -> Result<(Vec<T>, Option<HeaderValue>), ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    if query
        .after
        .as_ref()
        .is_some_and(|after| after.len() > MAX_CURSOR)
    {
        return Err(ApiError::invalid(
            "after",
            format!("after must be at most {MAX_CURSOR} bytes"),
        ));
    }
    items.sort_by(|a, b| id(a).cmp(id(b)));
    if let Some(after) = &query.after {
        let from = items.partition_point(|item| id(item) <= after.as_str());
        items.drain(..from);
    }
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let link = match items.last() {
        Some(last) if more => {
            let value = format!(
                "<{path}?after={}&limit={limit}>; rel=\"next\"",
                encode(id(last))
            );
            Some(HeaderValue::from_str(&value).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        _ => None,
    };
    Ok((items, link))
}

/// `text` percent-encoded for a query string: all but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("a{i:03}")).collect()
    }

    fn query(after: Option<&str>, limit: Option<u32>) -> PageQuery {
        PageQuery {
            after: after.map(str::to_string),
            limit,
        }
    }

    #[test]
    fn pages_follow_one_another_to_the_end() {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (items, link) =
                page(ids(7), |s| s, &query(after.as_deref(), Some(3)), "/v1/x").unwrap();
            seen.extend(items.iter().cloned());
            match link {
                Some(link) => {
                    let link = link.to_str().unwrap().to_string();
                    let last = items.last().unwrap();
                    assert_eq!(link, format!("</v1/x?after={last}&limit=3>; rel=\"next\""));
                    after = Some(last.clone());
                }
                None => break,
            }
        }
        assert_eq!(seen, ids(7));
    }

    #[test]
    fn a_full_last_page_has_no_next() {
        let (items, link) = page(ids(3), |s| s, &query(None, Some(3)), "/v1/x").unwrap();
        assert_eq!(items.len(), 3);
        assert!(link.is_none());
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        for limit in [0, MAX_PAGE + 1] {
            assert!(page(ids(1), |s| s, &query(None, Some(limit)), "/v1/x").is_err());
        }
    }

    #[test]
    fn overlong_cursors_are_refused() {
        let long = "a".repeat(MAX_CURSOR + 1);
        assert!(page(ids(1), |s| s, &query(Some(&long), None), "/v1/x").is_err());
        let longest = "a".repeat(MAX_CURSOR);
        assert!(page(ids(1), |s| s, &query(Some(&longest), None), "/v1/x").is_ok());
    }

    #[test]
    fn cursors_are_encoded() {
        assert_eq!(encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }
}
