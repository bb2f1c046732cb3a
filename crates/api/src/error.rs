//! The body of every error answer, and its machine-readable codes.

use serde::{Deserialize, Serialize};

/// What kind of error an answer is; each code has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no token, or one the server does not know.
    Unauthorized,
    /// 403: the caller's role may not do this.
    Forbidden,
    /// 404: nothing there, or not the caller's to see.
    NotFound,
    /// 400: the request is not well-formed (not JSON, an unknown field, a wrong
    /// type, a bad path or query parameter); `field` names it.
    BadRequest,
    /// 422: well-formed, but a value is not acceptable; `field` names it.
    Invalid,
    /// 409: the change conflicts with the current state.
    Conflict,
    /// 409: an agent spoke under a lease that is no longer the job's: it must stop
    /// the job and report nothing more for it.
    StaleLease,
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge,
    /// 429: too many requests from this token, or too many failed
    /// authentications from this address; the `Retry-After` header says how many
    /// seconds to wait.
    RateLimited,
    /// 503: a dependency (the database) does not answer; try again.
    Unavailable,
    /// 500: the server failed; the details are in its log, not in the answer.
    Internal,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Conflict => "conflict",
            ErrorCode::StaleLease => "stale_lease",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status it comes with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::BadRequest => 400,
            ErrorCode::Invalid => 422,
            ErrorCode::Conflict | ErrorCode::StaleLease => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What kind of error.
    pub code: ErrorCode,
    /// What is wrong, for people.
    pub message: String,
    /// What is at fault: a JSON pointer into the body (`/demand/0/count`), a query
    /// or path parameter (`limit`, `id`) or a header (`Idempotency-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
