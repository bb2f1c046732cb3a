//! The audit log over HTTP: `GET /v1/audit` (a page, filtered, by seq) and
//! `GET /v1/audit/export` (every matching entry as JSON lines, streamed page by
//! page). Who sees what: admins and operators every entry, a provider the
//! entries about its sites or made by their agents, a tenant the entries about
//! its jobs and tokens, an agent none (403). The entries themselves are written
//! by the store, in the transaction of each change (`suanwang_store::audit`).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Caller, Query};
use crate::{App, Shared};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use std::sync::Arc;
use suanwang_api::audit::{AuditActor, AuditEntry, AuditPage, AuditQuery, AuditSubject};
use suanwang_store::audit::WALK_PAGE;
use suanwang_store::{AuditFilter, Role, Store};

/// Most entries on one page.
pub const MAX_AUDIT_PAGE: u32 = WALK_PAGE;

/// A stored entry as the API shows it.
pub fn audit_doc(entry: suanwang_store::AuditEntry) -> AuditEntry {
    AuditEntry {
        seq: entry.seq,
        at: entry.at,
        actor: AuditActor {
            role: entry.actor.role,
            id: entry.actor.id,
            tenant_id: entry.actor.tenant_id,
            provider_id: entry.actor.provider_id,
            site: entry.actor.site,
        },
        action: entry.action,
        subject: AuditSubject {
            job: entry.subject.job,
            tenant_id: entry.subject.tenant_id,
            site: entry.subject.site,
            key: entry.subject.key,
            job_last: entry.subject.job_last,
        },
        detail: entry.detail,
        prev_hash: entry.prev_hash,
        hash: entry.hash,
    }
}

/// The store's filter for `query` as `who` may see it.
fn scoped(who: &Principal, query: AuditQuery, limit: u32) -> Result<AuditFilter, ApiError> {
    let mut filter = AuditFilter {
        after_seq: query.after,
        actor: query.actor,
        action: query.action,
        job: query.job,
        site: query.site,
        tenant_id: None,
        sites: None,
        since: query.since,
        until: query.until,
        limit,
    };
    match who.role {
        Role::Admin | Role::Operator => {}
        Role::Provider => filter.sites = Some(who.sites.to_vec()),
        Role::Tenant => match who.tenant_id {
            Some(tenant) => filter.tenant_id = Some(tenant),
            None => {
                return Err(ApiError::Forbidden(
                    "a tenant token without a tenant".into(),
                ));
            }
        },
        Role::Agent => {
            return Err(ApiError::Forbidden(
                "an agent's token does not read the audit log: use the provider's".into(),
            ));
        }
    }
    Ok(filter)
}

#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "a page of the audit log, oldest first: every entry for an admin or operator, a provider's sites' entries, a tenant's jobs' and tokens' entries", body = AuditPage),
        (status = 403, description = "agents do not read the audit log", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(app): Shared<S>,
    Caller(who): Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_size(&query)?;
    let filter = scoped(&who, query, limit)?;
    let entries = app.store.audit(&filter).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(audit_doc).collect(),
        next,
    }))
}

/// The page size asked (default 100): 422 outside 1..=[`MAX_AUDIT_PAGE`].
fn page_size(query: &AuditQuery) -> Result<u32, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1..={MAX_AUDIT_PAGE}"),
        ));
    }
    Ok(limit)
}

/// The JSON lines of `entries`, one entry a line.
fn lines(entries: Vec<suanwang_store::AuditEntry>) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(entries.len() * 400);
    for entry in entries {
        serde_json::to_writer(&mut out, &audit_doc(entry))?;
        out.push(b'\n');
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/audit/export", operation_id = "export_audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "every entry of the audit log the caller may see and the query matches, oldest first, as JSON lines (one `AuditEntry` a line), streamed", content_type = "application/x-ndjson", body = AuditEntry),
        (status = 403, description = "agents do not read the audit log", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range (it is checked, though the export is not paged)", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export<S: Store + 'static>(
    State(app): Shared<S>,
    Caller(who): Caller,
    Query(query): Query<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    page_size(&query)?;
    let mut filter = scoped(&who, query, WALK_PAGE)?;
    // The first page before the answer's head, so that a database that does not
    // answer is a 503 rather than a cut stream.
    let first = app.store.audit(&filter).await?;
    let done = first.len() < WALK_PAGE as usize;
    filter.after_seq = first.last().map(|e| e.seq).or(filter.after_seq);
    let head = lines(first).map_err(|e| ApiError::Internal(e.to_string()))?;
    let rest = futures_util::stream::unfold(
        (!done).then_some((app, filter)),
        |state: Option<(Arc<App<S>>, AuditFilter)>| async move {
            let (app, mut filter) = state?;
            match app.store.audit(&filter).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let more = page.len() == WALK_PAGE as usize;
                    filter.after_seq = page.last().map(|e| e.seq);
                    let chunk = lines(page).map_err(std::io::Error::other);
                    Some((chunk, more.then_some((app, filter))))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export cut short");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        },
    );
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(rest);
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    ))
}
