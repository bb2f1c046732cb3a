//! The audit log on the wire: `GET /v1/audit` (a page) and
//! `GET /v1/audit/export` (JSON lines). An entry is shown exactly as stored and
//! hashed — `detail` is the JSON text itself — so that an exported log can be
//! checked against its hashes (docs/AUDIT.md gives the encoding).

use serde::{Deserialize, Serialize};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditActor {
    /// A token's role (`admin`, `operator`, `tenant`, `provider`, `agent`), or
    /// `scheduler` or `system` for the control plane's own actions.
    pub role: String,
    /// The token's id (the first 16 hex digits of its digest), or `scheduler` /
    /// `system`.
    pub id: String,
    /// The tenant a tenant's token acts for.
    pub tenant_id: Option<i64>,
    /// The provider a provider's token acts for (or that issued an agent's).
    pub provider_id: Option<i64>,
    /// The one site an agent's token acts for.
    pub site: Option<String>,
}

/// What a change was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditSubject {
    /// The job; for an entry that covers a run of jobs, the first.
    pub job: Option<i64>,
    /// For an entry that covers a run of consecutive jobs — one kind of change
    /// by one actor to one tenant's jobs in one transaction, such as the
    /// submits of a group-commit batch — the last job: the entry is about every
    /// id from `job` to `job_last`, and its `detail` has `count` and, where
    /// each job has its own particular, a list of them in job order. Absent
    /// (null) for an entry about one job. Hashed after `prev_hash`, only when
    /// present (docs/AUDIT.md).
    #[serde(default)]
    pub job_last: Option<i64>,
    /// The tenant owning the job (or a token).
    pub tenant_id: Option<i64>,
    /// The site.
    pub site: Option<String>,
    /// Another key: a token's id, a link (`A--B`), a provider's name, an agent.
    pub key: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When, unix seconds (network time).
    pub at: i64,
    /// Who.
    pub actor: AuditActor,
    /// What was done: `job.submit`, `job.cancel`, `job.place`, `job.transition`,
    /// `job.lease`, `job.report`, `job.resume`, `job.expire`, `job.requeue`, `site.edit`,
    /// `link.edit`, `site.drain`, `site.undrain`, `agent.register`,
    /// `token.issue`, `token.revoke`, `provider.create`, `provider.sites`,
    /// `identity.refused`.
    pub action: String,
    /// To what.
    pub subject: AuditSubject,
    /// The particulars: a JSON object, as the text that was hashed.
    pub detail: String,
    /// The hash of the entry before (64 zeros for the first), lowercase hex.
    pub prev_hash: String,
    /// SHA-256 of the entry's canonical encoding, lowercase hex.
    pub hash: String,
}

/// Query of `GET /v1/audit` and `GET /v1/audit/export`. Admins and operators see
/// every entry, a provider the entries about its sites or made by their
/// agents, a tenant the entries about its jobs and tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries by this actor: a token's id, `scheduler` or `system`.
    pub actor: Option<String>,
    /// Only this action, e.g. `job.submit`.
    pub action: Option<String>,
    /// Only entries about this job: about it alone, or covering a run of jobs
    /// that includes it.
    pub job: Option<i64>,
    /// Only entries about this site or made by its agents.
    pub site: Option<String>,
    /// Only entries at or after this, unix seconds.
    pub since: Option<i64>,
    /// Only entries at or before this, unix seconds.
    pub until: Option<i64>,
    /// Only seqs above this: the cursor (`next` of the previous page).
    pub after: Option<i64>,
    /// Page size (default 100; `GET /v1/audit` only).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of audit entries, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The entries, by seq.
    pub entries: Vec<AuditEntry>,
    /// Cursor of the next page (`after`), if there may be one.
    pub next: Option<i64>,
}
