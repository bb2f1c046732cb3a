//! API tokens and who is calling. A token is a high-entropy random string stored
//! only as its SHA-256 digest: 32 random bytes (256 bits), so a fast digest is
//! enough — checking one costs microseconds, unlike a password hash — and a stolen
//! database does not reveal tokens. [`authenticate`] turns a request's bearer token
//! into a [`Principal`], asking the store at most once per
//! [`TOKEN_CACHE_SECS`] per token; the extractors in [`crate::extract`] call it.

use crate::App;
use crate::error::ApiError;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use suanwang_store::{Role, Store, TokenRecord};

/// How long a looked-up token is trusted without asking the database again.
pub const TOKEN_CACHE_SECS: u64 = 30;

/// Tokens seen recently: digest → (principal, when looked up). Saves a database
/// read per request; a revoked token is dropped from it at once.
#[derive(Debug, Default)]
pub struct TokenCache(RwLock<HashMap<String, (Principal, Instant)>>);

impl TokenCache {
    fn get(&self, digest: &str) -> Option<Principal> {
        let cache = self.0.read().ok()?;
        let (principal, at) = cache.get(digest)?;
        (at.elapsed() < Duration::from_secs(TOKEN_CACHE_SECS)).then(|| principal.clone())
    }

    fn put(&self, digest: String, principal: Principal) {
        if let Ok(mut cache) = self.0.write() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(digest, (principal, Instant::now()));
        }
    }

    /// Forgets the token with `digest` (revoked).
    pub fn forget(&self, digest: &str) {
        if let Ok(mut cache) = self.0.write() {
            cache.remove(digest);
        }
    }
}

/// The caller of a request, from its `Authorization: Bearer TOKEN` header.
pub async fn authenticate<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be \"Bearer TOKEN\"".into()))?;
    let digest = digest(token);
    if let Some(principal) = app.tokens.get(&digest) {
        return Ok(principal);
    }
    let record = app
        .store
        .token(&digest)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
    let principal = Principal {
        role: record.role,
        tenant_id: record.tenant_id,
    };
    app.tokens.put(digest, principal.clone());
    Ok(principal)
}

/// Prefix of every token, so that one found in a log is recognisable.
pub const TOKEN_PREFIX: &str = "sw_";

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The hex SHA-256 digest of a token, as stored.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a new token with `role`, acting for `tenant` (created if new), stores its
/// digest and returns the token — the only time it exists in clear.
pub async fn issue_token<S: Store>(
    store: &S,
    role: Role,
    tenant: Option<&str>,
    now: i64,
) -> suanwang_store::Result<String> {
    let tenant_id = match tenant {
        Some(name) => Some(store.tenant(name, now).await?.id),
        None => None,
    };
    let token = new_token();
    store
        .insert_token(
            &TokenRecord {
                digest: digest(&token),
                tenant_id,
                role,
            },
            now,
        )
        .await?;
    Ok(token)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Role.
    pub role: Role,
    /// Tenant, for the tenant role.
    pub tenant_id: Option<i64>,
}

impl Principal {
    /// Whether the caller may see jobs of `tenant_id`.
    pub fn may_see(&self, tenant_id: i64) -> bool {
        match self.role {
            Role::Admin | Role::Operator => true,
            Role::Tenant => self.tenant_id == Some(tenant_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(digest(&a), digest(&a));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
