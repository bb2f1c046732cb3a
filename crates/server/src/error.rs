//! The one mapping from error to HTTP status. Every handler returns [`ApiError`];
//! its body is `{code, message, field?}`. A client's mistake is never a 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use suanwang_store::StoreError;

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller's role may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there, or not the caller's to see (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is not valid JSON or has unknown fields (400).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// JSON pointer or header at fault.
        field: Option<String>,
    },
    /// Well-formed but invalid values (422).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// JSON pointer at fault.
        field: String,
    },
    /// The change conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// An agent reported under a lease that is no longer the job's (409, code
    /// `stale_lease`): it must stop the job and report nothing more for it.
    #[error("{0}")]
    StaleLease(String),
    /// A dependency (the database) is not available (503).
    #[error("{0}")]
    Unavailable(String),
    /// The server failed (500); the message is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: unauthorized, forbidden, not_found, bad_request,
    /// invalid, conflict, stale_lease, unavailable, internal.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// The JSON pointer, query parameter or header at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::StaleLease(_) => (StatusCode::CONFLICT, "stale_lease"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let (message, field) = match self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ("internal error".to_string(), None)
            }
            ApiError::BadRequest { message, field } => (message, field),
            ApiError::Invalid { message, field } => (message, Some(field)),
            other => (other.to_string(), None),
        };
        (
            status,
            Json(ErrorBody {
                code: code.to_string(),
                message,
                field,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} {id} not found"))
            }
            e @ StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            e @ StoreError::StaleLease { .. } => ApiError::StaleLease(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}
