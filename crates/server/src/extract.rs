//! Extractors: who is calling (the principals [`Caller`], [`Operator`], [`Admin`],
//! [`Tenant`]) and what a request carries ([`Body`], [`Query`], [`Path`]), each
//! refusing through [`ApiError`] — a JSON `{code, message, field}` naming what is
//! wrong — rather than the framework's plain-text rejections. Handlers name what
//! they need in their signature and never look at headers for it.

use crate::App;
use crate::auth::{Principal, authenticate};
use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use suanwang_store::{Role, Store};

/// Any authenticated caller (401 without a known token).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// An operator or an admin (403 for a tenant).
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

/// An admin (403 for the others).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

/// Someone who may act for some sites: an admin or operator (every site), a
/// provider (its own) or an agent's token (its one site). 403 for a tenant; the
/// handler checks the site with [`Principal::may_act_for`].
#[derive(Debug, Clone)]
pub struct SiteActor(pub Principal);

/// Someone who may issue and revoke tokens: an admin (any), or a provider (agent
/// tokens for its own sites). 403 for the others.
#[derive(Debug, Clone)]
pub struct Issuer(pub Principal);

/// A tenant, by id: the only role that owns jobs (403 for the others).
#[derive(Debug, Clone)]
pub struct Tenant(pub i64, pub Principal);

impl<S: Store> FromRequestParts<Arc<App<S>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        authenticate(app, parts).await.map(Caller)
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let principal = authenticate(app, parts).await?;
        match principal.role {
            Role::Admin | Role::Operator => Ok(Operator(principal)),
            _ => Err(ApiError::Forbidden(
                "this needs an operator or admin token".into(),
            )),
        }
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for SiteActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let principal = authenticate(app, parts).await?;
        match principal.role {
            Role::Tenant => Err(ApiError::Forbidden(
                "this needs a token of the site's agent or provider, or an operator's".into(),
            )),
            _ => Ok(SiteActor(principal)),
        }
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for Issuer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let principal = authenticate(app, parts).await?;
        match principal.role {
            Role::Admin | Role::Provider => Ok(Issuer(principal)),
            _ => Err(ApiError::Forbidden(
                "tokens are managed by admins (and providers, for their sites' agents)".into(),
            )),
        }
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let principal = authenticate(app, parts).await?;
        match principal.role {
            Role::Admin => Ok(Admin(principal)),
            _ => Err(ApiError::Forbidden(
                "tenants and tokens are managed with an admin token".into(),
            )),
        }
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let principal = authenticate(app, parts).await?;
        match (principal.role, principal.tenant_id) {
            (Role::Tenant, Some(tenant)) => Ok(Tenant(tenant, principal)),
            _ => Err(ApiError::Forbidden(
                "only a tenant token may do this (its tenant owns the job)".into(),
            )),
        }
    }
}

/// A JSON body: 400 naming the JSON pointer at fault when it is missing or does
/// not decode, 413 when it is larger than the route takes.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

/// A JSON body the route may go without: absent, empty or `null` is `None`.
#[derive(Debug, Clone)]
pub struct OptionalBody<T>(pub Option<T>);

async fn bytes<S: Send + Sync>(request: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|e| match e {
            axum::extract::rejection::BytesRejection::FailedToBufferBody(
                axum::extract::rejection::FailedToBufferBody::LengthLimitError(_),
            ) => ApiError::PayloadTooLarge(format!(
                "the body is larger than this route takes ({})",
                e.body_text()
            )),
            e => ApiError::BadRequest {
                message: e.body_text(),
                field: Some("/".into()),
            },
        })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest {
                message: "this route needs a JSON body".into(),
                field: Some("/".into()),
            });
        }
        decode(&bytes).map(Body)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        decode(&bytes).map(OptionalBody)
    }
}

/// Decodes a JSON body; a mistake is a 400 naming the field by JSON pointer
/// (RFC 6901), "/" for the body itself.
///
/// JSON does not tell integers from floats: `95.0` is the integer 95 to a JSON
/// Schema validator, and so to the OpenAPI document, though serde refuses it for
/// an integer field. A body that does not decode is therefore read once more with
/// such numbers written as integers; only the body that still fails is refused
/// (with the first error), so a well-formed body costs one decoding.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = match decode_exact(body) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Err(first);
    };
    if !integral_floats_to_integers(&mut value) {
        return Err(first);
    }
    serde_path_to_error::deserialize(value).map_err(|_| first)
}

/// Writes every number that is a whole float within `i64` (or `u64`) as an
/// integer; whether it changed anything.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let whole = x.fract() == 0.0;
            // Strictly inside the bounds: a literal just past one rounds onto it.
            let integer = if whole && x > i64::MIN as f64 && x < i64::MAX as f64 {
                Some(serde_json::Number::from(x as i64))
            } else if whole && x >= 0.0 && x < u64::MAX as f64 {
                Some(serde_json::Number::from(x as u64))
            } else {
                None
            };
            match integer {
                Some(integer) => {
                    *n = integer;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| integral_floats_to_integers(v) | changed),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |changed, v| integral_floats_to_integers(v) | changed),
        _ => false,
    }
}

fn decode_exact<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut pointer = String::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"))
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    pointer.push_str(&format!("/{variant}"))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        ApiError::BadRequest {
            message: e.inner().to_string(),
            field: Some(if pointer.is_empty() {
                "/".into()
            } else {
                pointer
            }),
        }
    })
}

/// Query parameters: 400 naming the parameter that does not decode (an unknown
/// one, a wrong type, a value not in its enum).
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                ApiError::BadRequest {
                    message: format!("query: {}", e.inner()),
                    field: (field != ".").then_some(field),
                }
            })
    }
}

/// Path parameters: 400 naming the parameter that does not parse (a job id that
/// is not a number).
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
                    _ => None,
                };
                Err(ApiError::BadRequest {
                    message: e.body_text(),
                    field,
                })
            }
            Err(e) => Err(ApiError::BadRequest {
                message: e.body_text(),
                field: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Lease {
        max: u32,
        #[serde(default)]
        wait_ms: u64,
    }

    fn field(e: ApiError) -> Option<String> {
        match e {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn whole_floats_are_integers_as_the_document_says() {
        let lease: Lease = decode(br#"{"max": 95.0, "wait_ms": 1e3}"#).unwrap();
        assert_eq!(
            lease,
            Lease {
                max: 95,
                wait_ms: 1000
            }
        );
        // A fraction, a value just past i64 (it rounds onto the bound) and a
        // negative for an unsigned field stay refused, with the first error.
        for (body, at) in [
            (&br#"{"max": 95.5}"#[..], "/max"),
            (
                br#"{"max": 1, "wait_ms": -9223372036854775809}"#,
                "/wait_ms",
            ),
            (br#"{"max": -1.0}"#, "/max"),
        ] {
            let e = decode::<Lease>(body).unwrap_err();
            assert_eq!(field(e).as_deref(), Some(at));
        }
    }

    #[test]
    fn a_bad_body_names_its_json_pointer() {
        let e = decode::<Lease>(br#"{"max": 1, "wait": 2}"#).unwrap_err();
        assert_eq!(field(e).as_deref(), Some("/wait"), "an unknown field");
        let e = decode::<Vec<Lease>>(br#"[{"max": 1}, {"max": "x"}]"#).unwrap_err();
        assert_eq!(field(e).as_deref(), Some("/1/max"));
        let e = decode::<Lease>(b"{").unwrap_err();
        assert_eq!(field(e).as_deref(), Some("/"));
    }
}
