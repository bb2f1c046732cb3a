//! The one mapping from error to HTTP status. Every handler and extractor returns
//! [`ApiError`]; its body is the API's [`ErrorBody`] (`{code, message, field?}`).
//! A client's mistake is never a 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use suanwang_api::{ErrorBody, ErrorCode};
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
    /// The request is not well-formed: not JSON, an unknown field, a wrong type,
    /// a bad path or query parameter (400).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// JSON pointer, parameter or header at fault.
        field: Option<String>,
    },
    /// Well-formed but invalid values (422).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// JSON pointer or parameter at fault.
        field: String,
    },
    /// The change conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// An agent reported under a lease that is no longer the job's (409, code
    /// `stale_lease`): it must stop the job and report nothing more for it.
    #[error("{0}")]
    StaleLease(String),
    /// The body is larger than the route takes (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many requests (429): the answer carries `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// What was exceeded.
        message: String,
        /// Whole seconds to wait before trying again (at least 1).
        retry_after: u64,
    },
    /// A dependency (the database) is not available (503).
    #[error("{0}")]
    Unavailable(String),
    /// The server failed (500); the message is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            message: message.into(),
            field: field.into(),
        }
    }

    /// The code it is sent with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::BadRequest { .. } => ErrorCode::BadRequest,
            ApiError::Invalid { .. } => ErrorCode::Invalid,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::StaleLease(_) => ErrorCode::StaleLease,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut retry_after = None;
        let (message, field) = match self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ("internal error".to_string(), None)
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "unavailable");
                (detail, None)
            }
            ApiError::BadRequest { message, field } => (message, field),
            ApiError::Invalid { message, field } => (message, Some(field)),
            ApiError::RateLimited {
                message,
                retry_after: seconds,
            } => {
                retry_after = Some(seconds.max(1));
                (message, None)
            }
            other => (other.to_string(), None),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                code,
                message,
                field,
            }),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} {id} not found"))
            }
            e @ (StoreError::Conflict { .. } | StoreError::SiteTaken { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            e @ StoreError::StaleLease { .. } => ApiError::StaleLease(e.to_string()),
            e if e.is_unavailable() => ApiError::Unavailable(format!("the database: {e}")),
            e => ApiError::Internal(e.to_string()),
        }
    }
}
