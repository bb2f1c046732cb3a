//! API tokens and who is calling. A token is a high-entropy random string stored
//! only as its SHA-256 digest: 32 random bytes (256 bits), so a fast digest is
//! enough — checking one costs microseconds, unlike a password hash — and a stolen
//! database does not reveal tokens. [`authenticate`] turns a request's bearer token
//! into a [`Principal`], asking the store at most once per
//! [`TOKEN_CACHE_SECS`] per token; the extractors in [`crate::extract`] call it.

use crate::App;
use crate::error::ApiError;
use crate::limits;
use crate::tls::Peer;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use suanwang_store::{Actor, Change, Role, Store, Subject, TokenRecord};

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

    /// Forgets every token (a provider's sites changed).
    pub fn clear(&self) {
        if let Ok(mut cache) = self.0.write() {
            cache.clear();
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
///
/// Applies the abuse limits ([`crate::limits`]): an address that failed to
/// authenticate too often, or a token past its rate, gets 429. Over mutual TLS
/// it also checks an agent's client certificate against its credential's site
/// ([`crate::tls`]).
pub async fn authenticate<S: Store>(app: &App<S>, parts: &Parts) -> Result<Principal, ApiError> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|c| &c.0);
    let address = peer.map(|p| p.addr.ip());
    if let Some(wait) = address.and_then(|a| app.limits.blocked(a)) {
        return Err(ApiError::RateLimited {
            message: "too many failed authentications from this address; wait and try again".into(),
            retry_after: limits::retry_after_secs(wait),
        });
    }
    let principal = match bearer(app, &parts.headers).await {
        Ok(principal) => principal,
        Err(e @ ApiError::Unauthorized(_)) => {
            if let Some(address) = address {
                app.limits.failed(address);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if let Err(wait) = app.limits.spend(&principal.digest, principal.role) {
        app.metrics.rate_limited.inc();
        return Err(ApiError::RateLimited {
            message: format!(
                "{} is over its request rate; wait and try again",
                principal.describe()
            ),
            retry_after: limits::retry_after_secs(wait),
        });
    }
    if principal.role == Role::Agent {
        check_certificate(app, &principal, peer).await?;
    }
    Ok(principal)
}

/// Over mutual TLS, an agent's client certificate must name its credential's
/// site; where the server requires it, an agent without one is refused. A
/// refusal is counted, logged and audited (`identity.refused`), as
/// [`check_site`]'s are.
async fn check_certificate<S: Store>(
    app: &App<S>,
    who: &Principal,
    peer: Option<&Peer>,
) -> Result<(), ApiError> {
    let site = who.site.as_deref().unwrap_or_default();
    let refusal = match peer.and_then(|p| p.certificate_site.as_deref()) {
        Some(named) if named == site => return Ok(()),
        Some(named) => format!(
            "the client certificate names site {named:?} but this credential is for site {site:?}"
        ),
        None if app.require_agent_certificate => format!(
            "this control plane requires agents to present a client certificate naming their site (mutual TLS); none was presented for site {site:?}"
        ),
        None => return Ok(()),
    };
    app.metrics.identity_refusals.inc();
    tracing::warn!(who = %who.describe(), %refusal, "refused: the client certificate");
    let detail = serde_json::json!({ "tried": "present its client certificate", "why": refusal })
        .to_string();
    app.store
        .append_audit(
            Change {
                actor: who.actor(),
                action: "identity.refused".into(),
                subject: Subject::site(site),
                detail,
            },
            app.clock.now(),
        )
        .await?;
    Err(ApiError::Forbidden(refusal))
}

/// The principal of a request's bearer token: 401 if there is none or the
/// server does not know it.
pub(crate) async fn bearer<S: Store>(
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
    // A provider's sites are read with its token, so they are as fresh as the
    // cache: changing them forgets every cached token (`TokenCache::clear`).
    let sites: Arc<[String]> = match (record.role, record.provider_id) {
        (Role::Provider, Some(id)) => app.store.provider_sites(id).await?.into(),
        _ => Arc::from([]),
    };
    let principal = Principal {
        role: record.role,
        tenant_id: record.tenant_id,
        provider_id: record.provider_id,
        site: record.site,
        sites,
        digest: digest.clone(),
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

/// Whom a new token acts for, beside its role.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The tenant (tenant role), created if new.
    pub tenant: Option<&'a str>,
    /// The provider (provider role), created if new; for an agent's token, the
    /// provider issuing it.
    pub provider: Option<&'a str>,
    /// The site (agent role).
    pub site: Option<&'a str>,
}

/// Issues a new token with `role`, acting for `tenant` (created if new), stores its
/// digest and returns the token — the only time it exists in clear. The audit
/// log records the `system` actor (the command line, tests).
pub async fn issue_token<S: Store>(
    store: &S,
    role: Role,
    tenant: Option<&str>,
    now: i64,
) -> suanwang_store::Result<String> {
    let scope = Scope {
        tenant,
        ..Scope::default()
    };
    issue_scoped_token(store, &Actor::system(), role, scope, now).await
}

/// Issues a new token with `role` acting for `scope` (a tenant, a provider, a
/// site), stores its digest and returns the token, as [`issue_token`]; `actor`
/// is who issues it (the audit log's).
pub async fn issue_scoped_token<S: Store>(
    store: &S,
    actor: &Actor,
    role: Role,
    scope: Scope<'_>,
    now: i64,
) -> suanwang_store::Result<String> {
    let tenant_id = match scope.tenant {
        Some(name) => Some(store.tenant(name, now).await?.id),
        None => None,
    };
    let provider_id = match scope.provider {
        Some(name) => Some(store.provider(actor, name, now).await?.id),
        None => None,
    };
    let token = new_token();
    store
        .insert_token(
            actor,
            &TokenRecord {
                digest: digest(&token),
                tenant_id,
                role,
                provider_id,
                site: scope.site.map(str::to_string),
            },
            now,
        )
        .await?;
    Ok(token)
}

/// Refuses (403) unless `who` may act for `site` — `action` says what was
/// tried. A refusal is logged as a warning, counted
/// (`suanwang_identity_refusals_total`) and appended to the audit log
/// (`identity.refused`, on its own: it changes nothing else): one credential
/// speaking for another site is what site identity is there to stop. If the
/// audit entry cannot be written, the answer is that error (503 or 500), so
/// that no refusal goes unrecorded.
pub async fn check_site<S: Store>(
    app: &App<S>,
    who: &Principal,
    site: &str,
    action: &str,
) -> Result<(), ApiError> {
    if who.may_act_for(site) {
        return Ok(());
    }
    app.metrics.identity_refusals.inc();
    let whom = who.describe();
    tracing::warn!(who = %whom, %site, %action, "refused: not this caller's site");
    let detail = serde_json::json!({ "tried": action }).to_string();
    app.store
        .append_audit(
            Change {
                actor: who.actor(),
                action: "identity.refused".into(),
                subject: Subject::site(site),
                detail,
            },
            app.clock.now(),
        )
        .await?;
    Err(ApiError::Forbidden(format!(
        "{whom} may not {action} for site {site:?}: {}",
        match who.role {
            Role::Agent => "an agent's token is good for its own site only",
            Role::Provider => "a provider acts for the sites it owns only",
            _ => "not this caller's site",
        }
    )))
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Role.
    pub role: Role,
    /// Tenant, for the tenant role.
    pub tenant_id: Option<i64>,
    /// Provider, for the provider role (and an agent token a provider issued).
    pub provider_id: Option<i64>,
    /// The one site an agent's token acts for.
    pub site: Option<String>,
    /// The sites a provider owns, sorted (empty for the other roles).
    pub sites: Arc<[String]>,
    /// The digest of its token (for the audit trail; never the token).
    pub digest: String,
}

impl Principal {
    /// Whether the caller may see jobs of `tenant_id` with their commands,
    /// environment and logs: admins and operators all, a tenant its own,
    /// providers and agents none (they see a site's jobs without those).
    pub fn may_see(&self, tenant_id: i64) -> bool {
        match self.role {
            Role::Admin | Role::Operator => true,
            Role::Tenant => self.tenant_id == Some(tenant_id),
            Role::Provider | Role::Agent => false,
        }
    }

    /// Whether the caller may act for `site`: run its agents, edit and drain it,
    /// see its jobs. Admins and operators may for every site, a provider for the
    /// sites it owns, an agent's token for its one site, a tenant for none.
    pub fn may_act_for(&self, site: &str) -> bool {
        match self.role {
            Role::Admin | Role::Operator => true,
            Role::Provider => self
                .sites
                .binary_search_by(|s| s.as_str().cmp(site))
                .is_ok(),
            Role::Agent => self.site.as_deref() == Some(site),
            Role::Tenant => false,
        }
    }

    /// Who it is in the audit log: its role, its token's id (the first 16 hex
    /// digits of the digest) and whom it acts for.
    pub fn actor(&self) -> Actor {
        Actor {
            role: self.role.name().to_string(),
            id: self.digest[..self.digest.len().min(16)].to_string(),
            tenant_id: self.tenant_id,
            provider_id: self.provider_id,
            site: self.site.clone(),
        }
    }

    /// Who it is, for logs and refusals: `admin`, `tenant 3`, `provider 2`,
    /// `agent of hami`, with its token's id.
    pub fn describe(&self) -> String {
        let id = &self.digest[..self.digest.len().min(16)];
        match self.role {
            Role::Admin | Role::Operator => format!("{} (token {id})", self.role.name()),
            Role::Tenant => format!("tenant {} (token {id})", self.tenant_id.unwrap_or(0)),
            Role::Provider => format!("provider {} (token {id})", self.provider_id.unwrap_or(0)),
            Role::Agent => format!(
                "agent of {} (token {id})",
                self.site.as_deref().unwrap_or("?")
            ),
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
