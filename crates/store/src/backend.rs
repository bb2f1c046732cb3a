//! The two backends, written once. [`SqlStore`] implements [`Store`] over an sqlx
//! pool of either database; [`SqliteStore`] and [`PostgresStore`] are its two
//! instances. Each method is written once, each statement is one text shared by
//! both (numbered `$N` parameters, `ON CONFLICT` and `RETURNING` work in both),
//! and the shared suite checks that they behave alike.
//!
//! Where the backends must differ, the difference is named once per database: how
//! a store connects and migrates (`SqlStore::<Sqlite>::connect`,
//! `SqlStore::<Postgres>::connect`), how `lease` keeps agents that lease at once
//! apart (`Backend::LEASE_SQL`) and how a statement's changed rows are counted
//! (`Backend::rows_affected`). Everything else is generic over the database.

use crate::audit::{Actor, AuditEntry, AuditFilter, Change, GENESIS, MAX_RUN, Subject, WALK_PAGE};
use crate::{
    AgentRecord, DecisionRecord, Drain, HeldVerdict, JobFilter, JobRecord, JobState, NewJob,
    PreemptionFilter, PreemptionRecord, Provider, QuotaRecord, Result, Role, Sample, ShareRecord,
    SpillRecord, Store, StoreError, Tenant, TokenInfo, TokenRecord, TopologyEdit, Transition,
    WaitChange, WaitEntry, WaitRecord,
};
use sqlx::postgres::{PgPoolOptions, PgQueryResult, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use suanwang_model::PriorityClass;

/// The store over a pool of `DB`, which is [`Sqlite`] or [`Postgres`].
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    /// The audit chain's head as this process last wrote or read it.
    head: HeadCache,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            head: self.head.clone(),
        }
    }
}

/// The audit chain's head (seq, hash) as this process last saw it: a guess that
/// lets an append be one statement, checked by that statement against the
/// database's head (see [`append_audit_in`]). Shared by a store's clones.
#[derive(Debug, Clone, Default)]
struct HeadCache(Arc<Mutex<Option<(i64, String)>>>);

impl HeadCache {
    fn get(&self) -> Option<(i64, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, head: Option<(i64, String)>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = head;
    }
}

/// SQLite in WAL mode. `synchronous = NORMAL`: a committed transaction survives a
/// crash of the process (`kill -9`), though not necessarily of the machine.
pub type SqliteStore = SqlStore<Sqlite>;

/// PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://PATH`).
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(SqlStore {
            pool,
            head: HeadCache::default(),
        })
    }
}

impl SqlStore<Postgres> {
    /// Connects to and migrates the database at `url` (`postgres://…`).
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(SqlStore {
            pool,
            head: HeadCache::default(),
        })
    }
}

// A macro rather than a const, so that `concat!` builds each statement as a static
// string (sqlx accepts only static SQL unless told otherwise).
macro_rules! job_columns {
    () => {
        "id, tenant_id, idempotency_key, spec, state, site, start_at, exit_code, version, \
         created_at, updated_at, lease_token, lease_agent, lease_expires_at, started_at, \
         finished_at"
    };
}

/// The columns of an agent.
macro_rules! agent_columns {
    () => {
        "id, site, info, registered_at, last_seen, telemetry"
    };
}

/// Hands the placed jobs of a site whose start has come out under new leases, in
/// one statement (so that SQLite takes its write lock at once, and PostgreSQL
/// re-checks `state` on rows another agent's statement changed meanwhile). `$lock`
/// ends the inner `SELECT`: see [`Backend::LEASE_SQL`].
macro_rules! lease_sql {
    ($open:literal, $lock:literal, $close:literal) => {
        concat!(
            "UPDATE jobs SET state = 'Dispatched', lease_token = lease_token + 1, ",
            "lease_agent = $1, lease_expires_at = $2, version = version + 1, updated_at = $3 ",
            "WHERE state = 'Placed' AND id ",
            $open,
            "SELECT id FROM jobs WHERE site = $4 ",
            "AND state = 'Placed' AND start_at <= $3 ORDER BY start_at, id LIMIT $5",
            $lock,
            $close,
            " RETURNING ",
            job_columns!()
        )
    };
}

/// Inserts a Pending job unless the tenant used the idempotency key before.
const SUBMIT_SQL: &str = concat!(
    "INSERT INTO jobs (tenant_id, idempotency_key, spec, state, version, created_at, updated_at) ",
    "VALUES ($1, $2, $3, 'Pending', 1, $4, $4) ",
    "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING ",
    "RETURNING ",
    job_columns!()
);

/// The head of [`Store::submit_many`]'s multi-row insert; the `VALUES` follow.
const SUBMIT_MANY_HEAD: &str =
    "INSERT INTO jobs (tenant_id, idempotency_key, spec, state, version, created_at, updated_at) ";

/// The tail of [`Store::submit_many`]'s multi-row insert. Only the id comes back:
/// the rest of the row is what was sent.
const SUBMIT_MANY_TAIL: &str = " ON CONFLICT (tenant_id, idempotency_key) \
    WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id, tenant_id, idempotency_key";

/// Rows per multi-row insert (5 parameters each; SQLite allows 32,766).
const MULTI_INSERT_ROWS: usize = 512;

/// The job a tenant submitted with an idempotency key.
const SUBMITTED_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
);

/// One job.
const JOB_SQL: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");

/// The head of [`Store::list_jobs`]' query; the filters follow.
const LIST_JOBS_HEAD: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id ");

/// Applies a change if the job is still in the state the caller saw.
const TRANSITION_SQL: &str = concat!(
    "UPDATE jobs SET state = $1, site = COALESCE($2, site), start_at = COALESCE($3, start_at), ",
    "exit_code = COALESCE($4, exit_code), version = version + 1, updated_at = $5, ",
    "finished_at = CASE WHEN $1 IN ('Succeeded', 'Failed', 'Cancelled') THEN $5 ",
    "ELSE finished_at END ",
    "WHERE id = $6 AND state = $7 RETURNING ",
    job_columns!()
);

/// Renews a lease if it is still the agent's and the job live.
const RENEW_SQL: &str = "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 \
    AND lease_token = $3 AND lease_agent = $4 AND state IN ('Dispatched', 'Running')";

/// An agent's report under its lease.
const REPORT_SQL: &str = concat!(
    "UPDATE jobs SET state = $1, exit_code = COALESCE($2, exit_code), ",
    "started_at = COALESCE(started_at, $3), ",
    "finished_at = CASE WHEN $1 IN ('Succeeded', 'Failed') THEN $3 ELSE finished_at END, ",
    "lease_expires_at = CASE WHEN $1 IN ('Succeeded', 'Failed') THEN NULL ",
    "ELSE lease_expires_at END, ",
    "version = version + 1, updated_at = $3 ",
    "WHERE id = $4 AND state = $5 AND lease_token = $6 AND lease_agent = $7 RETURNING ",
    job_columns!()
);

/// Jobs whose lease has run out.
const EXPIRE_SQL: &str = concat!(
    "UPDATE jobs SET state = 'Lost', lease_expires_at = NULL, version = version + 1, ",
    "updated_at = $1 WHERE state IN ('Dispatched', 'Running') AND lease_expires_at < $1 ",
    "RETURNING ",
    job_columns!()
);

/// Back to Pending, forgetting the placement.
const REQUEUE_SQL: &str = "UPDATE jobs SET state = 'Pending', site = NULL, start_at = NULL, \
    lease_expires_at = NULL, started_at = NULL, version = version + 1, updated_at = $1 \
    WHERE id = $2 AND state = $3";

/// Stores a decision.
const INSERT_DECISION_SQL: &str = "INSERT INTO decisions (job_id, at, body) VALUES ($1, $2, $3)";

/// Rows per multi-row insert into `audit` (16 parameters each).
const AUDIT_INSERT_ROWS: usize = 512;

/// The columns of an audit entry, in [`audit_from_row`]'s terms.
const AUDIT_COLUMNS: &str = "seq, at, actor_role, actor_id, actor_tenant, actor_provider, \
    actor_site, action, subject_job, subject_tenant, subject_site, subject_key, detail, \
    prev_hash, hash, subject_job_last";

/// A small JSON object, as text.
fn detail(value: serde_json::Value) -> String {
    value.to_string()
}

/// The audit change of a job's state change.
fn job_change(actor: &Actor, action: &str, job: &JobRecord, detail: String) -> Change {
    Change {
        actor: actor.clone(),
        action: action.to_string(),
        subject: Subject::job(job.id, job.tenant_id, job.site.as_deref()),
        detail,
    }
}

/// Appends `changes` to the audit log inside the caller's transaction, and
/// returns the entries: one statement per 512 entries, which inserts them and
/// moves the head only if the head is still where `head` (this process's last
/// sight of it) says. On PostgreSQL the statement's data-modifying `WITH`
/// updates the head row under a row lock held until the transaction ends; on
/// SQLite the transaction holds the one write lock and a trigger (migration
/// 0009) moves the head with each row. If another writer moved the head first,
/// nothing is inserted; the head is then read under lock
/// ([`Backend::AUDIT_HEAD_LOCK_SQL`]) and the entries sealed again, so that no
/// two writers ever take the same seq or link to the same hash (the chain never
/// forks). Called last in every transaction, after the change's own statements,
/// so that no transaction holds the head while it waits for another lock.
async fn append_audit_in<DB>(
    head: &HeadCache,
    conn: &mut DB::Connection,
    changes: Vec<Change>,
    now: i64,
) -> Result<Vec<AuditEntry>>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Bind<'a, DB>,
    for<'a> Option<&'a str>: Bind<'a, DB>,
    for<'a> i64: Read<DB> + Bind<'a, DB>,
    for<'a> Option<i64>: Bind<'a, DB>,
    String: Read<DB>,
{
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut known = head.get();
    let mut locked = false;
    let mut changes = changes;
    loop {
        let (seq, prev) = match known {
            Some(known) => known,
            None => {
                let row = sqlx::query(DB::AUDIT_HEAD_LOCK_SQL)
                    .fetch_one(&mut *conn)
                    .await?;
                locked = true;
                (row.try_get("seq")?, row.try_get("hash")?)
            }
        };
        let entries = seal_all(seq, prev, changes, now);
        let mut from = (seq, entries[0].prev_hash.as_str());
        let mut moved = true;
        for chunk in entries.chunks(AUDIT_INSERT_ROWS) {
            let last = chunk.last().expect("chunks are never empty");
            let to = (last.seq, last.hash.as_str());
            let done = audit_insert::<DB>(from, to, chunk)
                .build()
                .execute(&mut *conn)
                .await?;
            if DB::rows_affected(&done) != chunk.len() as u64 {
                // Only the first chunk can miss: later ones start where it ended.
                moved = false;
                break;
            }
            from = to;
        }
        if moved {
            head.set(entries.last().map(|e| (e.seq, e.hash.clone())));
            return Ok(entries);
        }
        head.set(None);
        if locked {
            return Err(StoreError::Corrupt {
                column: "audit_head",
                value: "the audit head moved while locked".into(),
            });
        }
        known = None;
        changes = entries.into_iter().map(AuditEntry::unseal).collect();
    }
}

/// Seals `changes` as the entries after `seq`, whose hash is `prev`.
fn seal_all(seq: i64, mut prev: String, changes: Vec<Change>, now: i64) -> Vec<AuditEntry> {
    let mut entries = Vec::with_capacity(changes.len());
    for (seq, change) in (seq + 1..).zip(changes) {
        let entry = AuditEntry::seal(seq, now, change, &prev);
        prev.clone_from(&entry.hash);
        entries.push(entry);
    }
    entries
}

/// The statement that inserts `chunk` and moves the head from `from` to `to`,
/// or does nothing if the head is not at `from`.
fn audit_insert<DB>(from: (i64, &str), to: (i64, &str), chunk: &[AuditEntry]) -> QueryBuilder<DB>
where
    DB: Backend,
    for<'a> &'a str: Bind<'a, DB>,
    for<'a> Option<&'a str>: Bind<'a, DB>,
    for<'a> i64: Bind<'a, DB>,
    for<'a> Option<i64>: Bind<'a, DB>,
{
    let mut query = QueryBuilder::<DB>::new("");
    if DB::AUDIT_HEAD_IN_WITH {
        query
            .push("WITH h AS (UPDATE audit_head SET seq = ")
            .push_bind(to.0)
            .push(", hash = ")
            .push_bind(to.1)
            .push(" WHERE id = 1 AND seq = ")
            .push_bind(from.0)
            .push(" AND hash = ")
            .push_bind(from.1)
            .push(" RETURNING id) ");
    }
    query.push(
        "INSERT INTO audit (seq, at, actor_role, actor_id, actor_tenant, actor_provider, \
         actor_site, action, subject_job, subject_tenant, subject_site, subject_key, detail, \
         prev_hash, hash, subject_job_last) SELECT * FROM (",
    );
    query.push_values(chunk, |mut row, e| {
        row.push_bind(e.seq)
            .push_bind(e.at)
            .push_bind(e.actor.role.as_str())
            .push_bind(e.actor.id.as_str())
            .push_bind(e.actor.tenant_id)
            .push_bind(e.actor.provider_id)
            .push_bind(e.actor.site.as_deref())
            .push_bind(e.action.as_str())
            .push_bind(e.subject.job)
            .push_bind(e.subject.tenant_id)
            .push_bind(e.subject.site.as_deref())
            .push_bind(e.subject.key.as_deref())
            .push_bind(e.detail.as_str())
            .push_bind(e.prev_hash.as_str())
            .push_bind(e.hash.as_str())
            .push_bind(e.subject.job_last);
    });
    query.push(") AS v WHERE EXISTS (SELECT 1 FROM ");
    if DB::AUDIT_HEAD_IN_WITH {
        query.push("h)");
    } else {
        query
            .push("audit_head WHERE id = 1 AND seq = ")
            .push_bind(from.0)
            .push(" AND hash = ")
            .push_bind(from.1)
            .push(")");
    }
    query
}

/// An audit entry read back ([`AUDIT_COLUMNS`]).
fn audit_from_row<R: Row>(row: &R) -> Result<AuditEntry>
where
    for<'a> &'a str: ColumnIndex<R>,
    i64: Read<R::Database>,
    String: Read<R::Database>,
{
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: Actor {
            role: row.try_get("actor_role")?,
            id: row.try_get("actor_id")?,
            tenant_id: row.try_get("actor_tenant")?,
            provider_id: row.try_get("actor_provider")?,
            site: row.try_get("actor_site")?,
        },
        action: row.try_get("action")?,
        subject: Subject {
            job: row.try_get("subject_job")?,
            tenant_id: row.try_get("subject_tenant")?,
            site: row.try_get("subject_site")?,
            key: row.try_get("subject_key")?,
            job_last: row.try_get("subject_job_last")?,
        },
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The audit change of a submit: the key, not the spec (which may hold a
/// tenant's secrets in its environment).
fn submit_change(actor: &Actor, job: &JobRecord) -> Change {
    // Written directly rather than through a `serde_json::Value`: this runs
    // once per submitted job.
    let detail = match &job.idempotency_key {
        Some(key) => {
            let key = serde_json::to_string(key).expect("a string always serialises");
            format!("{{\"idempotency_key\":{key}}}")
        }
        None => "{}".to_string(),
    };
    job_change(actor, "job.submit", job, detail)
}

/// The audit change of a state change: `job.cancel`, `job.place`, or
/// `job.transition`.
fn transition_change(actor: &Actor, job: &JobRecord, change: &Transition) -> Change {
    let action = match change.to {
        JobState::Cancelled => "job.cancel",
        JobState::Placed => "job.place",
        _ => "job.transition",
    };
    let detail = detail(serde_json::json!({
        "from": change.from.name(),
        "to": change.to.name(),
        "site": change.site,
        "start_at": change.start_at,
        "exit_code": change.exit_code,
    }));
    job_change(actor, action, job, detail)
}

/// One job's part of a change made to many jobs in one transaction (submits in
/// a group-commit batch, the scheduler's decisions in a chunk), which
/// [`fold_runs`] may fold with its neighbours into one audit entry.
struct JobPart<'a> {
    actor: &'a Actor,
    action: &'static str,
    job: i64,
    tenant_id: i64,
    /// The job's site (the subject's).
    site: Option<String>,
    /// The detail's members that a run shares: JSON object members without
    /// the braces (may be empty).
    shared: String,
    /// The name of the detail's member that differs by job.
    each_name: &'static str,
    /// Its value for this job, as JSON; `None`: the job has none (alone, the
    /// member is left out; in a run's list it is `null`).
    each: Option<String>,
}

/// A job's part in `action` from its state change (`job.place`, `job.cancel`,
/// `job.transition`): from, to, site and exit code shared, the start per job.
fn transition_part<'a>(actor: &'a Actor, job: &JobRecord, change: &Transition) -> JobPart<'a> {
    let action = match change.to {
        JobState::Cancelled => "job.cancel",
        JobState::Placed => "job.place",
        _ => "job.transition",
    };
    let shared = detail(serde_json::json!({
        "from": change.from.name(),
        "to": change.to.name(),
        "site": change.site,
        "exit_code": change.exit_code,
    }));
    JobPart {
        actor,
        action,
        job: job.id,
        tenant_id: job.tenant_id,
        site: job.site.clone(),
        shared: shared[1..shared.len() - 1].to_string(),
        each_name: "start_at",
        each: Some(change.start_at.map_or("null".into(), |at| at.to_string())),
    }
}

/// A job's part in `job.submit`: its idempotency key, if any.
fn submit_part<'a>(actor: &'a Actor, job: &JobRecord) -> JobPart<'a> {
    JobPart {
        actor,
        action: "job.submit",
        job: job.id,
        tenant_id: job.tenant_id,
        site: None,
        shared: String::new(),
        each_name: "idempotency_key",
        each: job
            .idempotency_key
            .as_ref()
            .map(|key| serde_json::to_string(key).expect("a string always serialises")),
    }
}

/// Folds `parts`, in the order the changes were made, into audit entries: each
/// run of consecutive parts by the same actor, of the same action, to the same
/// tenant's jobs at the same site, with the same shared detail, about
/// consecutive job ids (at most [`MAX_RUN`] of them), becomes one entry whose
/// subject names the first job and the last (`job_last`) and whose detail is
/// `{"count":N,<shared>,"<each>":[v1,…,vN]}` (the list in job order, `null`
/// for a job without a value, left out when no job has one). A run of one job
/// is an entry about that job, as it would be alone: `{<shared>,"<each>":v}`.
/// An entry per job would be a second row (and its index entries) per job,
/// about what the job's own row costs: a run is one row per batch.
fn fold_runs(parts: &[JobPart<'_>]) -> Vec<Change> {
    use std::fmt::Write as _;
    let mut out = Vec::new();
    let mut start = 0;
    while start < parts.len() {
        let first = &parts[start];
        let mut end = start + 1;
        while end < parts.len()
            && end - start < MAX_RUN as usize
            && parts[end].job == parts[end - 1].job + 1
            && parts[end].action == first.action
            && parts[end].tenant_id == first.tenant_id
            && parts[end].site == first.site
            && parts[end].shared == first.shared
            && (std::ptr::eq(parts[end].actor, first.actor) || parts[end].actor == first.actor)
        {
            end += 1;
        }
        let run = &parts[start..end];
        let mut detail = String::with_capacity(
            16 + first.shared.len() + run.len() * first.each.as_ref().map_or(5, |v| v.len() + 1),
        );
        detail.push('{');
        let sep = |detail: &mut String| {
            if detail.len() > 1 {
                detail.push(',');
            }
        };
        if run.len() > 1 {
            let _ = write!(detail, "\"count\":{}", run.len());
        }
        if !first.shared.is_empty() {
            sep(&mut detail);
            detail.push_str(&first.shared);
        }
        if run.len() == 1 {
            if let Some(value) = &first.each {
                sep(&mut detail);
                let _ = write!(detail, "\"{}\":{value}", first.each_name);
            }
        } else if run.iter().any(|part| part.each.is_some()) {
            sep(&mut detail);
            let _ = write!(detail, "\"{}\":[", first.each_name);
            for (i, part) in run.iter().enumerate() {
                if i > 0 {
                    detail.push(',');
                }
                detail.push_str(part.each.as_deref().unwrap_or("null"));
            }
            detail.push(']');
        }
        detail.push('}');
        out.push(Change {
            actor: first.actor.clone(),
            action: first.action.to_string(),
            subject: Subject {
                job: Some(first.job),
                tenant_id: Some(first.tenant_id),
                site: first.site.clone(),
                key: None,
                job_last: (run.len() > 1).then(|| run[run.len() - 1].job),
            },
            detail,
        });
        start = end;
    }
    out
}

/// A token's id in the audit log: the first 16 hex digits of its digest.
fn token_id(digest: &str) -> String {
    digest[..digest.len().min(16)].to_string()
}

/// The audit change of a token's issue or revocation.
fn token_change(actor: &Actor, action: &str, token: &TokenRecord) -> Change {
    Change {
        actor: actor.clone(),
        action: action.to_string(),
        subject: Subject {
            job: None,
            tenant_id: token.tenant_id,
            site: token.site.clone(),
            key: Some(token_id(&token.digest)),
            job_last: None,
        },
        detail: detail(serde_json::json!({
            "role": token.role.name(),
            "tenant_id": token.tenant_id,
            "provider_id": token.provider_id,
        })),
    }
}

/// A database that [`SqlStore`] runs on ([`Sqlite`] or [`Postgres`]), and what
/// differs between the two.
trait Backend: Database {
    /// The statement of [`Store::lease`], with this database's way of keeping
    /// agents that lease at once from waiting on each other.
    const LEASE_SQL: &'static str;

    /// Reads the audit head, locking it until the transaction ends.
    const AUDIT_HEAD_LOCK_SQL: &'static str;

    /// Whether [`audit_insert`] moves the head in a data-modifying `WITH`
    /// (PostgreSQL) rather than leaving it to a trigger (SQLite, which has no
    /// such `WITH`).
    const AUDIT_HEAD_IN_WITH: bool;

    /// How many rows a statement inserted, changed or deleted.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Backend for Sqlite {
    /// SQLite has one writer at a time: there is nothing to skip.
    const LEASE_SQL: &'static str = lease_sql!("IN (", "", ")");

    /// The transaction holds, or with its first write will hold, the one write
    /// lock.
    const AUDIT_HEAD_LOCK_SQL: &'static str = "SELECT seq, hash FROM audit_head WHERE id = 1";

    const AUDIT_HEAD_IN_WITH: bool = false;

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Backend for Postgres {
    /// Agents leasing at once take different rows instead of queueing behind each
    /// other's row locks and coming back empty.
    /// The picked ids are read once, as an array (an `IN (SELECT … LIMIT n)`
    /// may be planned as a join that runs the limited scan again and leases
    /// more than `n`: seen with a lease of 1 handing out 2).
    const LEASE_SQL: &'static str = lease_sql!("= ANY(ARRAY(", " FOR UPDATE SKIP LOCKED", "))");

    const AUDIT_HEAD_LOCK_SQL: &'static str =
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";

    const AUDIT_HEAD_IN_WITH: bool = true;

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// A value bound to a statement of `DB` (valid for the statement's lifetime `'q`).
trait Bind<'q, DB: Database>: Encode<'q, DB> + Type<DB> {}
impl<'q, DB: Database, T: Encode<'q, DB> + Type<DB>> Bind<'q, DB> for T {}

/// A value read from a row of `DB`.
trait Read<DB: Database>: for<'r> Decode<'r, DB> + Type<DB> {}
impl<DB: Database, T: for<'r> Decode<'r, DB> + Type<DB>> Read<DB> for T {}

/// A job read back.
fn job_from_row<R: Row>(row: &R) -> Result<JobRecord>
where
    for<'a> &'a str: ColumnIndex<R>,
    i64: Read<R::Database>,
    String: Read<R::Database>,
{
    let state: String = row.try_get("state")?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    let exit_code = exit_code
        .map(|code| {
            i32::try_from(code).map_err(|_| StoreError::Corrupt {
                column: "exit_code",
                value: code.to_string(),
            })
        })
        .transpose()?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        spec: row.try_get("spec")?,
        state: parse_state(state)?,
        site: row.try_get("site")?,
        start_at: row.try_get("start_at")?,
        exit_code,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        lease_token: row.try_get("lease_token")?,
        lease_agent: row.try_get("lease_agent")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// An agent read back.
fn agent_from_row<R: Row>(row: &R) -> Result<AgentRecord>
where
    for<'a> &'a str: ColumnIndex<R>,
    i64: Read<R::Database>,
    String: Read<R::Database>,
{
    Ok(AgentRecord {
        id: row.try_get("id")?,
        site: row.try_get("site")?,
        info: row.try_get("info")?,
        registered_at: row.try_get("registered_at")?,
        last_seen: row.try_get("last_seen")?,
        telemetry: row.try_get("telemetry")?,
    })
}

/// The columns of a token, in [`token_from_row`]'s terms.
const TOKEN_COLUMNS: &str = "digest, tenant_id, role, provider_id, site";

/// A token read back ([`TOKEN_COLUMNS`]).
fn token_from_row<R: Row>(row: &R) -> Result<TokenRecord>
where
    for<'a> &'a str: ColumnIndex<R>,
    i64: Read<R::Database>,
    String: Read<R::Database>,
{
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        digest: row.try_get("digest")?,
        tenant_id: row.try_get("tenant_id")?,
        role: Role::parse(&role).ok_or(StoreError::Corrupt {
            column: "role",
            value: role,
        })?,
        provider_id: row.try_get("provider_id")?,
        site: row.try_get("site")?,
    })
}

/// A stored job state.
fn parse_state(state: String) -> Result<JobState> {
    JobState::parse(&state).ok_or(StoreError::Corrupt {
        column: "state",
        value: state,
    })
}

/// A job just inserted by [`Store::submit_many`]: the row is what was sent.
fn fresh_job(id: i64, job: &NewJob, now: i64) -> JobRecord {
    JobRecord {
        id,
        tenant_id: job.tenant_id,
        idempotency_key: job.idempotency_key.clone(),
        spec: job.spec.clone(),
        state: JobState::Pending,
        site: None,
        start_at: None,
        exit_code: None,
        version: 1,
        created_at: now,
        updated_at: now,
        lease_token: 0,
        lease_agent: None,
        lease_expires_at: None,
        started_at: None,
        finished_at: None,
    }
}

// The bounds below are what both drivers offer: sqlx states them per database, so
// generic code names them (Rust does not carry them over from a trait's `where`).
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Bind<'a, DB>,
    for<'a> Option<&'a str>: Bind<'a, DB>,
    for<'a> i64: Read<DB> + Bind<'a, DB>,
    for<'a> Option<i64>: Bind<'a, DB>,
    for<'a> f64: Read<DB> + Bind<'a, DB>,
    String: Read<DB>,
{
    async fn tenant(&self, name: &str, now: i64) -> Result<Tenant> {
        sqlx::query(
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT id, name FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(Tenant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
        })
    }

    async fn insert_token(&self, actor: &Actor, token: &TokenRecord, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tokens (digest, tenant_id, role, created_at, provider_id, site) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.digest.as_str())
        .bind(token.tenant_id)
        .bind(token.role.name())
        .bind(now)
        .bind(token.provider_id)
        .bind(token.site.as_deref())
        .execute(&mut *tx)
        .await?;
        append_audit_in(
            &self.head,
            &mut tx,
            vec![token_change(actor, "token.issue", token)],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token(&self, digest: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE digest = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn submit(
        &self,
        actor: &Actor,
        tenant_id: i64,
        idempotency_key: Option<&str>,
        spec: &str,
        now: i64,
    ) -> Result<(JobRecord, bool)> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(SUBMIT_SQL)
            .bind(tenant_id)
            .bind(idempotency_key)
            .bind(spec)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let job = job_from_row(&row)?;
            let change = submit_change(actor, &job);
            append_audit_in(&self.head, &mut tx, vec![change], now).await?;
            tx.commit().await?;
            return Ok((job, true));
        }
        tx.rollback().await?;
        // The key was used before: the first submission wins.
        let row = sqlx::query(SUBMITTED_SQL)
            .bind(tenant_id)
            .bind(idempotency_key)
            .fetch_one(&self.pool)
            .await?;
        Ok((job_from_row(&row)?, false))
    }

    async fn submit_many(&self, jobs: &[NewJob], now: i64) -> Result<Vec<(JobRecord, bool)>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted = Vec::with_capacity(jobs.len());
        // One multi-row statement per chunk: most of the cost of a small insert is
        // the statement round trip, not the row.
        for chunk in jobs.chunks(MULTI_INSERT_ROWS) {
            let mut query = QueryBuilder::<DB>::new(SUBMIT_MANY_HEAD);
            query.push_values(chunk, |mut row, job| {
                row.push_bind(job.tenant_id)
                    .push_bind(job.idempotency_key.as_deref())
                    .push_bind(job.spec.as_str())
                    .push("'Pending'")
                    .push("1")
                    .push_bind(now)
                    .push_bind(now);
            });
            query.push(SUBMIT_MANY_TAIL);
            for row in query.build().fetch_all(&mut *tx).await? {
                let id: i64 = row.try_get("id")?;
                let tenant_id: i64 = row.try_get("tenant_id")?;
                let key: Option<String> = row.try_get("idempotency_key")?;
                inserted.push((id, tenant_id, key));
            }
        }
        // Rows are inserted, and their ids assigned, in VALUES order.
        inserted.sort_by_key(|(id, _, _)| *id);
        let mut by_key: HashMap<(i64, &str), (i64, bool)> = HashMap::new();
        let mut unkeyed = VecDeque::new();
        for (id, tenant_id, key) in &inserted {
            match key {
                Some(key) => {
                    by_key.insert((*tenant_id, key.as_str()), (*id, false));
                }
                None => unkeyed.push_back(*id),
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        let mut first: HashMap<i64, usize> = HashMap::new();
        for job in jobs {
            let Some(key) = &job.idempotency_key else {
                let id = unkeyed.pop_front().ok_or_else(|| StoreError::Corrupt {
                    column: "jobs",
                    value: "an inserted row went missing".into(),
                })?;
                out.push((fresh_job(id, job, now), true));
                continue;
            };
            match by_key.get_mut(&(job.tenant_id, key.as_str())) {
                Some((id, claimed)) if !*claimed => {
                    *claimed = true;
                    first.insert(*id, out.len());
                    out.push((fresh_job(*id, job, now), true));
                }
                Some((id, _)) => {
                    // The same key twice in this batch: the first wins.
                    let earlier = out[first[id]].0.clone();
                    out.push((earlier, false));
                }
                None => {
                    // Used before this batch: the first submission wins.
                    let row = sqlx::query(SUBMITTED_SQL)
                        .bind(job.tenant_id)
                        .bind(key.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                    out.push((job_from_row(&row)?, false));
                }
            }
        }
        // One entry per run of consecutive new jobs by one actor for one
        // tenant (fold_runs): in a batch, usually one per batch.
        let parts: Vec<JobPart<'_>> = jobs
            .iter()
            .zip(&out)
            .filter(|(_, (_, new))| *new)
            .map(|(job, (record, _))| submit_part(&job.actor, record))
            .collect();
        append_audit_in(&self.head, &mut tx, fold_runs(&parts), now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn job(&self, id: i64) -> Result<JobRecord> {
        let row = sqlx::query(JOB_SQL)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(StoreError::NotFound {
                what: "job",
                id: id.to_string(),
            }),
        }
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>> {
        // Only the filters given, so that the planner can use the index that fits
        // (state, tenant or site) rather than scan by id.
        let mut query = QueryBuilder::<DB>::new(LIST_JOBS_HEAD);
        query.push("> ").push_bind(filter.after_id.unwrap_or(0));
        if let Some(before) = filter.before_id {
            query.push(" AND id < ").push_bind(before);
        }
        if let Some(state) = filter.state {
            query.push(" AND state = ").push_bind(state.name());
        }
        if let Some(site) = &filter.site {
            query.push(" AND site = ").push_bind(site.as_str());
        }
        if let Some(tenant) = filter.tenant_id {
            query.push(" AND tenant_id = ").push_bind(tenant);
        }
        if let Some(at) = filter.created_after {
            query.push(" AND created_at >= ").push_bind(at);
        }
        query.push(if filter.newest_first {
            " ORDER BY id DESC LIMIT "
        } else {
            " ORDER BY id LIMIT "
        });
        query.push_bind(i64::from(filter.limit.clamp(1, 1000)));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn pending_for_pass(&self, limit: u32, window: u32) -> Result<Vec<JobRecord>> {
        let limit = i64::from(limit.clamp(1, 10_000));
        // Most passes find fewer pending jobs than the limit: then these are all
        // of them, read by the index on (state, id).
        let oldest = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE state = 'Pending' ORDER BY id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if (oldest.len() as i64) < limit {
            return oldest.iter().map(job_from_row).collect();
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id IN (",
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY id) AS turn ",
            "FROM (SELECT id, tenant_id FROM jobs WHERE state = 'Pending' ORDER BY id LIMIT $2) w) t ",
            "ORDER BY turn, id LIMIT $1) ORDER BY id"
        ))
        .bind(limit)
        .bind(i64::from(window.max(1)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn transition(
        &self,
        actor: &Actor,
        id: i64,
        change: &Transition,
        now: i64,
    ) -> Result<JobRecord> {
        let conflict = |actual: JobState| StoreError::Conflict {
            job: id,
            actual,
            from: change.from,
            to: change.to,
        };
        if !change.from.can_become(change.to) {
            return Err(conflict(change.from));
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(TRANSITION_SQL)
            .bind(change.to.name())
            .bind(change.site.as_deref())
            .bind(change.start_at)
            .bind(change.exit_code.map(i64::from))
            .bind(now)
            .bind(id)
            .bind(change.from.name())
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => {
                let job = job_from_row(&row)?;
                let audit = transition_change(actor, &job, change);
                append_audit_in(&self.head, &mut tx, vec![audit], now).await?;
                tx.commit().await?;
                Ok(job)
            }
            None => {
                tx.rollback().await?;
                Err(conflict(self.job(id).await?.state))
            }
        }
    }

    async fn decide_many(
        &self,
        actor: &Actor,
        items: &[(i64, Transition, String)],
        now: i64,
    ) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(items.len());
        let mut parts = Vec::new();
        for (id, change, body) in items {
            if !change.from.can_become(change.to) {
                out.push(false);
                continue;
            }
            let row = sqlx::query(TRANSITION_SQL)
                .bind(change.to.name())
                .bind(change.site.as_deref())
                .bind(change.start_at)
                .bind(change.exit_code.map(i64::from))
                .bind(now)
                .bind(*id)
                .bind(change.from.name())
                .fetch_optional(&mut *tx)
                .await?;
            let done = row.is_some();
            if let Some(row) = row {
                parts.push(transition_part(actor, &job_from_row(&row)?, change));
                sqlx::query(INSERT_DECISION_SQL)
                    .bind(*id)
                    .bind(now)
                    .bind(body.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            out.push(done);
        }
        // One entry per run of consecutive jobs of one tenant placed at one
        // site (fold_runs).
        append_audit_in(&self.head, &mut tx, fold_runs(&parts), now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn record_decision(&self, job_id: i64, body: &str, now: i64) -> Result<()> {
        sqlx::query(INSERT_DECISION_SQL)
            .bind(job_id)
            .bind(now)
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn decisions(&self, job_id: i64) -> Result<Vec<DecisionRecord>> {
        let rows =
            sqlx::query("SELECT job_id, at, body FROM decisions WHERE job_id = $1 ORDER BY id")
                .bind(job_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(DecisionRecord {
                    job_id: row.try_get("job_id")?,
                    at: row.try_get("at")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    async fn waits(&self, job_ids: &[i64]) -> Result<Vec<WaitRecord>> {
        let mut out = Vec::new();
        // In chunks well under either engine's limit on bound parameters.
        for chunk in job_ids.chunks(1000) {
            let mut query = QueryBuilder::<DB>::new(
                "SELECT job_id, code, signature, at, body FROM waits WHERE job_id IN (",
            );
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            for row in query.build().fetch_all(&self.pool).await? {
                out.push(WaitRecord {
                    job_id: row.try_get("job_id")?,
                    code: row.try_get("code")?,
                    key: row.try_get("signature")?,
                    at: row.try_get("at")?,
                    body: row.try_get("body")?,
                });
            }
        }
        Ok(out)
    }

    async fn record_waits(&self, changes: &[WaitChange], now: i64) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for change in changes {
            sqlx::query(
                "INSERT INTO waits (job_id, code, signature, at, body) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (job_id) DO UPDATE SET code = excluded.code, \
                 signature = excluded.signature, \
                 at = excluded.at, body = excluded.body",
            )
            .bind(change.job_id)
            .bind(change.code.as_str())
            .bind(change.key.as_str())
            .bind(now)
            .bind(change.body.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO wait_history (job_id, at, body) VALUES ($1, $2, $3)")
                .bind(change.job_id)
                .bind(now)
                .bind(change.body.as_str())
                .execute(&mut *tx)
                .await?;
            // Keep the newest WAIT_HISTORY: drop what lies at or below the
            // first entry past them (none: nothing to drop).
            sqlx::query(
                "DELETE FROM wait_history WHERE job_id = $1 AND id <= (SELECT id FROM \
                 wait_history WHERE job_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(change.job_id)
            .bind(crate::WAIT_HISTORY)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn wait_history(
        &self,
        job_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WaitEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, body FROM wait_history WHERE job_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(job_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WaitEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    async fn samples(&self, site: &str, since: i64, limit: u32) -> Result<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT site, agent, at, body FROM telemetry WHERE site = $1 AND at >= $2 \
             ORDER BY at DESC LIMIT $3",
        )
        .bind(site)
        .bind(since)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(Sample {
                    site: row.try_get("site")?,
                    agent: row.try_get("agent")?,
                    at: row.try_get("at")?,
                    body: row.try_get("body")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    async fn prune_samples(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM telemetry WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn put_logs(&self, tails: &[(i64, String)], now: i64) -> Result<()> {
        if tails.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (job, tail) in tails {
            sqlx::query(
                "INSERT INTO job_logs (job_id, tail, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (job_id) DO UPDATE SET tail = $2, updated_at = $3",
            )
            .bind(*job)
            .bind(tail.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn logs(&self, job: i64) -> Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT tail, updated_at FROM job_logs WHERE job_id = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("tail")?, row.try_get("updated_at")?)))
            .transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, name FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Tenant {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, created_at FROM tokens ORDER BY created_at DESC, digest"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    record: token_from_row(row)?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn revoke_token(&self, actor: &Actor, prefix: &str, now: i64) -> Result<TokenRecord> {
        let not_found = || StoreError::NotFound {
            what: "token",
            id: prefix.to_string(),
        };
        if prefix.len() < 12 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let pattern = format!("{}%", prefix.to_ascii_lowercase());
        let mut tx = self.pool.begin().await?;
        let sql = format!("DELETE FROM tokens WHERE digest LIKE $1 RETURNING {TOKEN_COLUMNS}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pattern.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let [row] = rows.as_slice() else {
            // None, or (never seen at 48 bits) more than one: change nothing.
            return Err(not_found());
        };
        let record = token_from_row(row)?;
        append_audit_in(
            &self.head,
            &mut tx,
            vec![token_change(actor, "token.revoke", &record)],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn provider(&self, actor: &Actor, name: &str, now: i64) -> Result<Provider> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO providers (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&created) > 0 {
            let change = Change {
                actor: actor.clone(),
                action: "provider.create".into(),
                subject: Subject {
                    key: Some(name.to_string()),
                    ..Subject::default()
                },
                detail: "{}".into(),
            };
            append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        }
        tx.commit().await?;
        let row = sqlx::query("SELECT id, name FROM providers WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        let id: i64 = row.try_get("id")?;
        Ok(Provider {
            id,
            name: row.try_get("name")?,
            sites: self.provider_sites(id).await?,
        })
    }

    async fn set_provider_sites(
        &self,
        actor: &Actor,
        id: i64,
        sites: &[String],
        now: i64,
    ) -> Result<Provider> {
        let mut sites = sites.to_vec();
        sites.sort();
        sites.dedup();
        let mut tx = self.pool.begin().await?;
        // A write first, so that SQLite takes its write lock at once: a
        // transaction that read first fails (busy) when another writer commits
        // before its own first write.
        let row = sqlx::query("UPDATE providers SET name = name WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "provider",
                id: id.to_string(),
            })?;
        let name: String = row.try_get("name")?;
        sqlx::query("DELETE FROM provider_sites WHERE provider_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for site in &sites {
            let owner = sqlx::query(
                "SELECT p.name AS name FROM provider_sites s JOIN providers p \
                 ON p.id = s.provider_id WHERE s.site = $1",
            )
            .bind(site.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(owner) = owner {
                return Err(StoreError::SiteTaken {
                    site: site.clone(),
                    owner: owner.try_get("name")?,
                });
            }
            sqlx::query("INSERT INTO provider_sites (site, provider_id) VALUES ($1, $2)")
                .bind(site.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let change = Change {
            actor: actor.clone(),
            action: "provider.sites".into(),
            subject: Subject {
                key: Some(name.clone()),
                ..Subject::default()
            },
            detail: detail(serde_json::json!({ "provider_id": id, "sites": sites })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(Provider { id, name, sites })
    }

    async fn providers(&self) -> Result<Vec<Provider>> {
        let rows = sqlx::query(
            "SELECT p.id AS id, p.name AS name, s.site AS site FROM providers p \
             LEFT JOIN provider_sites s ON s.provider_id = p.id ORDER BY p.id, s.site",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Provider> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let site: Option<String> = row.try_get("site")?;
            if out.last().is_none_or(|p| p.id != id) {
                out.push(Provider {
                    id,
                    name: row.try_get("name")?,
                    sites: Vec::new(),
                });
            }
            if let (Some(site), Some(last)) = (site, out.last_mut()) {
                last.sites.push(site);
            }
        }
        Ok(out)
    }

    async fn provider_sites(&self, id: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT site FROM provider_sites WHERE provider_id = $1 ORDER BY site")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| row.try_get("site").map_err(StoreError::from))
            .collect()
    }

    async fn put_topology_edit(&self, actor: &Actor, edit: &TopologyEdit) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO topology_edits (kind, key, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, key) DO UPDATE SET body = $3, updated_at = $4",
        )
        .bind(edit.kind.as_str())
        .bind(edit.key.as_str())
        .bind(edit.body.as_str())
        .bind(edit.updated_at)
        .execute(&mut *tx)
        .await?;
        // A link's key is `A--B`: it touches both sites; the subject names the
        // first, the key both.
        let site = edit.key.split("--").next().unwrap_or(&edit.key);
        let body = serde_json::from_str::<serde_json::Value>(&edit.body)
            .unwrap_or_else(|_| serde_json::Value::String(edit.body.clone()));
        let change = Change {
            actor: actor.clone(),
            action: format!("{}.edit", edit.kind),
            subject: Subject {
                job: None,
                tenant_id: None,
                site: Some(site.to_string()),
                key: Some(edit.key.clone()),
                job_last: None,
            },
            detail: detail(serde_json::json!({ "body": body })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], edit.updated_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn topology_edits(&self) -> Result<Vec<TopologyEdit>> {
        let rows = sqlx::query(
            "SELECT kind, key, body, updated_at FROM topology_edits \
             ORDER BY updated_at, kind, key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TopologyEdit {
                    kind: row.try_get("kind")?,
                    key: row.try_get("key")?,
                    body: row.try_get("body")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn set_drained(
        &self,
        actor: &Actor,
        site: &str,
        drain: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        match drain {
            Some(reason) => {
                sqlx::query(
                    "INSERT INTO drained_sites (site, since, reason) VALUES ($1, $2, $3) \
                     ON CONFLICT (site) DO UPDATE SET reason = $3",
                )
                .bind(site)
                .bind(now)
                .bind(Some(reason).filter(|r| !r.is_empty()))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM drained_sites WHERE site = $1")
                    .bind(site)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let change = Change {
            actor: actor.clone(),
            action: if drain.is_some() {
                "site.drain"
            } else {
                "site.undrain"
            }
            .into(),
            subject: Subject::site(site),
            detail: match drain {
                Some(reason) => detail(serde_json::json!({ "reason": reason })),
                None => "{}".into(),
            },
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drained(&self) -> Result<Vec<Drain>> {
        let rows = sqlx::query("SELECT site, since, reason FROM drained_sites ORDER BY site")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Drain {
                    site: row.try_get("site")?,
                    since: row.try_get("since")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }

    async fn set_quota(
        &self,
        actor: &Actor,
        tenant_id: i64,
        site: Option<&str>,
        caps: &[(String, i64)],
        now: i64,
    ) -> Result<()> {
        let scope = site.unwrap_or("");
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM quotas WHERE tenant_id = $1 AND site = $2")
            .bind(tenant_id)
            .bind(scope)
            .execute(&mut *tx)
            .await?;
        for (class, units) in caps {
            sqlx::query(
                "INSERT INTO quotas (tenant_id, site, class, units, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant_id)
            .bind(scope)
            .bind(class.as_str())
            .bind(*units)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let caps: serde_json::Map<String, serde_json::Value> = caps
            .iter()
            .map(|(class, units)| (class.clone(), serde_json::json!(units)))
            .collect();
        let change = Change {
            actor: actor.clone(),
            action: "quota.set".into(),
            subject: Subject {
                tenant_id: Some(tenant_id),
                site: site.map(str::to_string),
                ..Subject::default()
            },
            detail: detail(serde_json::json!({ "caps": caps })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn quotas(&self) -> Result<Vec<QuotaRecord>> {
        let rows = sqlx::query(
            "SELECT q.tenant_id, t.name, q.site, q.class, q.units, q.updated_at \
             FROM quotas q JOIN tenants t ON t.id = q.tenant_id \
             ORDER BY t.name, q.site, q.class",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let site: String = row.try_get("site")?;
                Ok(QuotaRecord {
                    tenant_id: row.try_get("tenant_id")?,
                    tenant: row.try_get("name")?,
                    site: Some(site).filter(|s| !s.is_empty()),
                    class: row.try_get("class")?,
                    units: row.try_get("units")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn set_share(
        &self,
        actor: &Actor,
        tenant_id: i64,
        weight: f64,
        parent: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE tenants SET share_weight = $1, share_parent = $2 WHERE id = $3")
            .bind(weight)
            .bind(parent)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            actor: actor.clone(),
            action: "share.set".into(),
            subject: Subject {
                tenant_id: Some(tenant_id),
                ..Subject::default()
            },
            detail: detail(serde_json::json!({ "weight": weight, "parent": parent })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn shares(&self) -> Result<Vec<ShareRecord>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.share_weight, t.share_parent, p.name AS parent_name, \
             u.usage, u.as_of \
             FROM tenants t LEFT JOIN tenants p ON p.id = t.share_parent \
             LEFT JOIN tenant_usage u ON u.tenant_id = t.id \
             ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let parent: Option<i64> = row.try_get("share_parent")?;
                let parent_name: Option<String> = row.try_get("parent_name")?;
                let usage: Option<f64> = row.try_get("usage")?;
                let as_of: Option<i64> = row.try_get("as_of")?;
                Ok(ShareRecord {
                    tenant_id: row.try_get("id")?,
                    tenant: row.try_get("name")?,
                    weight: row.try_get("share_weight")?,
                    parent: parent.zip(parent_name),
                    usage: usage.zip(as_of),
                })
            })
            .collect()
    }

    async fn set_class(
        &self,
        actor: &Actor,
        tenant_id: i64,
        class: PriorityClass,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE tenants SET priority_class = $1 WHERE id = $2")
            .bind(class.name())
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            actor: actor.clone(),
            action: "class.set".into(),
            subject: Subject {
                tenant_id: Some(tenant_id),
                ..Subject::default()
            },
            detail: detail(serde_json::json!({ "class": class.name() })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn classes(&self) -> Result<Vec<(i64, String, PriorityClass)>> {
        let rows = sqlx::query("SELECT id, name, priority_class FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let class: String = row.try_get("priority_class")?;
                let parsed = PriorityClass::parse(&class).ok_or(StoreError::Corrupt {
                    column: "tenants.priority_class",
                    value: class,
                })?;
                Ok((row.try_get("id")?, row.try_get("name")?, parsed))
            })
            .collect()
    }

    async fn preempt(
        &self,
        actor: &Actor,
        stop: &PreemptionRecord,
        from: JobState,
        body: &str,
        now: i64,
    ) -> Result<bool> {
        let before = self.job(stop.job_id).await?;
        let mut tx = self.pool.begin().await?;
        let stopped = sqlx::query(
            "UPDATE jobs SET state = 'Pending', site = NULL, start_at = NULL, \
             lease_expires_at = NULL, started_at = NULL, version = version + 1, updated_at = $1 \
             WHERE id = $2 AND state IN ('Placed', 'Dispatched', 'Running') AND lease_token = $3",
        )
        .bind(now)
        .bind(stop.job_id)
        .bind(stop.attempt)
        .execute(&mut *tx)
        .await?;
        let done = DB::rows_affected(&stopped) > 0;
        if done {
            sqlx::query(
                "INSERT INTO preemptions (job_id, attempt, by_job, site, at, class, by_class, \
                 ran_secs, lost_cny) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(stop.job_id)
            .bind(stop.attempt)
            .bind(stop.by_job)
            .bind(stop.site.as_str())
            .bind(stop.at)
            .bind(stop.class.as_str())
            .bind(stop.by_class.as_str())
            .bind(stop.ran_secs)
            .bind(stop.lost_cny)
            .execute(&mut *tx)
            .await?;
            sqlx::query(INSERT_DECISION_SQL)
                .bind(stop.job_id)
                .bind(now)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            let detail = detail(serde_json::json!({
                "from": from.name(),
                "by_job": stop.by_job,
                "site": stop.site,
                "class": stop.class,
                "by_class": stop.by_class,
                "ran_secs": stop.ran_secs,
                "lost_cny": stop.lost_cny,
            }));
            let change = job_change(actor, "job.preempt", &before, detail);
            append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn preemptions(&self, filter: &PreemptionFilter) -> Result<Vec<PreemptionRecord>> {
        let mut query = QueryBuilder::<DB>::new(
            "SELECT job_id, attempt, by_job, site, at, class, by_class, ran_secs, lost_cny \
             FROM preemptions WHERE 1 = 1",
        );
        if let Some(job) = filter.job {
            query
                .push(" AND (job_id = ")
                .push_bind(job)
                .push(" OR by_job = ")
                .push_bind(job)
                .push(")");
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        query.push(" ORDER BY id");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(PreemptionRecord {
                    job_id: row.try_get("job_id")?,
                    attempt: row.try_get("attempt")?,
                    by_job: row.try_get("by_job")?,
                    site: row.try_get("site")?,
                    at: row.try_get("at")?,
                    class: row.try_get("class")?,
                    by_class: row.try_get("by_class")?,
                    ran_secs: row.try_get("ran_secs")?,
                    lost_cny: row.try_get("lost_cny")?,
                })
            })
            .collect()
    }

    async fn set_spill(
        &self,
        actor: &Actor,
        tenant_id: i64,
        spill: &[String],
        own_provider: Option<i64>,
        now: i64,
    ) -> Result<()> {
        // A list of strings: serialising it cannot fail.
        let text = (!spill.is_empty())
            .then(|| serde_json::to_string(spill).expect("a list of strings serialises"));
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE tenants SET spill = $1, own_provider = $2 WHERE id = $3")
            .bind(text.as_deref())
            .bind(own_provider)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            actor: actor.clone(),
            action: "spill.set".into(),
            subject: Subject {
                tenant_id: Some(tenant_id),
                ..Subject::default()
            },
            detail: detail(serde_json::json!({ "spill": spill, "own_provider": own_provider })),
        };
        append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn spills(&self) -> Result<Vec<SpillRecord>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.spill, t.own_provider, p.name AS provider_name \
             FROM tenants t LEFT JOIN providers p ON p.id = t.own_provider \
             ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: Option<String> = row.try_get("spill")?;
                let spill = match text {
                    None => Vec::new(),
                    Some(text) => serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
                        column: "tenants.spill",
                        value: text.clone(),
                    })?,
                };
                let provider: Option<i64> = row.try_get("own_provider")?;
                let provider_name: Option<String> = row.try_get("provider_name")?;
                Ok(SpillRecord {
                    tenant_id: row.try_get("id")?,
                    tenant: row.try_get("name")?,
                    spill,
                    own_provider: provider.zip(provider_name),
                })
            })
            .collect()
    }

    async fn save_usage(&self, usage: &[(i64, f64)], as_of: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (tenant_id, value) in usage {
            sqlx::query(
                "INSERT INTO tenant_usage (tenant_id, usage, as_of) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET usage = $2, as_of = $3",
            )
            .bind(*tenant_id)
            .bind(*value)
            .bind(as_of)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn count_by_state(&self) -> Result<BTreeMap<JobState, i64>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            out.insert(parse_state(state)?, n);
        }
        Ok(out)
    }

    async fn register_agent(&self, actor: &Actor, agent: &AgentRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO agents (",
            agent_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6) ",
            "ON CONFLICT (id) DO UPDATE SET site = $2, info = $3, last_seen = $5, telemetry = $6"
        ))
        .bind(agent.id.as_str())
        .bind(agent.site.as_str())
        .bind(agent.info.as_str())
        .bind(agent.registered_at)
        .bind(agent.last_seen)
        .bind(agent.telemetry.as_deref())
        .execute(&mut *tx)
        .await?;
        let change = Change {
            actor: actor.clone(),
            action: "agent.register".into(),
            subject: Subject {
                job: None,
                tenant_id: None,
                site: Some(agent.site.clone()),
                key: Some(agent.id.clone()),
                job_last: None,
            },
            detail: "{}".into(),
        };
        append_audit_in(&self.head, &mut tx, vec![change], agent.last_seen).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn forget_agents(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM agents WHERE last_seen < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY site, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn resume_leases(
        &self,
        actor: &Actor,
        agent: &str,
        site: &str,
        held: &[(i64, i64)],
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<i64>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut resumed = Vec::new();
        let mut changes = Vec::new();
        for &(job, token) in held {
            let row = sqlx::query(concat!(
                "UPDATE jobs SET lease_agent = $1, lease_expires_at = $2 WHERE id = $3 ",
                "AND lease_token = $4 AND site = $5 AND state IN ('Dispatched', 'Running') ",
                "RETURNING ",
                job_columns!()
            ))
            .bind(agent)
            .bind(lease_until)
            .bind(job)
            .bind(token)
            .bind(site)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let record = job_from_row(&row)?;
                let detail = detail(serde_json::json!({
                    "agent": agent,
                    "token": token,
                    "until": lease_until,
                }));
                changes.push(job_change(actor, "job.resume", &record, detail));
                resumed.push(job);
            }
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(resumed);
        }
        append_audit_in(&self.head, &mut tx, changes, now).await?;
        tx.commit().await?;
        Ok(resumed)
    }

    async fn heartbeat(
        &self,
        agent: &str,
        telemetry: Option<&str>,
        held: &[(i64, i64)],
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<HeldVerdict>> {
        let mut tx = self.pool.begin().await?;
        let seen = sqlx::query(
            "UPDATE agents SET last_seen = $1, telemetry = COALESCE($2, telemetry) WHERE id = $3",
        )
        .bind(now)
        .bind(telemetry)
        .bind(agent)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&seen) == 0 {
            return Err(StoreError::NotFound {
                what: "agent",
                id: agent.to_string(),
            });
        }
        if let Some(body) = telemetry {
            sqlx::query(
                "INSERT INTO telemetry (site, agent, at, body) \
                 SELECT site, id, $1, $2 FROM agents WHERE id = $3",
            )
            .bind(now)
            .bind(body)
            .bind(agent)
            .execute(&mut *tx)
            .await?;
        }
        let mut out = Vec::with_capacity(held.len());
        for &(job, token) in held {
            let renewed = sqlx::query(RENEW_SQL)
                .bind(lease_until)
                .bind(job)
                .bind(token)
                .bind(agent)
                .execute(&mut *tx)
                .await?;
            if DB::rows_affected(&renewed) > 0 {
                out.push(HeldVerdict::Renewed);
                continue;
            }
            let row = sqlx::query("SELECT state, lease_token, lease_agent FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
            let verdict = match row {
                Some(row) => {
                    let state: String = row.try_get("state")?;
                    let current: i64 = row.try_get("lease_token")?;
                    let holder: Option<String> = row.try_get("lease_agent")?;
                    let mine = current == token && holder.as_deref() == Some(agent);
                    if mine && state == JobState::Cancelled.name() {
                        HeldVerdict::Cancel
                    } else if mine
                        && sqlx::query(
                            "SELECT 1 AS one FROM preemptions WHERE job_id = $1 AND attempt = $2",
                        )
                        .bind(job)
                        .bind(token)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some()
                    {
                        HeldVerdict::Preempt
                    } else {
                        HeldVerdict::Stale
                    }
                }
                None => HeldVerdict::Stale,
            };
            out.push(verdict);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn lease(
        &self,
        actor: &Actor,
        agent: &str,
        site: &str,
        max: u32,
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<JobRecord>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(DB::LEASE_SQL)
            .bind(agent)
            .bind(lease_until)
            .bind(now)
            .bind(site)
            .bind(i64::from(max.clamp(1, 1000)))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|j| (j.start_at, j.id));
        if out.is_empty() {
            tx.rollback().await?;
            return Ok(out);
        }
        let changes = out
            .iter()
            .map(|job| {
                let detail = detail(serde_json::json!({
                    "agent": agent,
                    "token": job.lease_token,
                    "until": lease_until,
                }));
                job_change(actor, "job.lease", job, detail)
            })
            .collect();
        append_audit_in(&self.head, &mut tx, changes, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn report(
        &self,
        actor: &Actor,
        agent: &str,
        job: i64,
        token: i64,
        to: JobState,
        exit_code: Option<i32>,
        now: i64,
    ) -> Result<JobRecord> {
        let current = self.job(job).await?;
        let stale = |current: &JobRecord| StoreError::StaleLease {
            job,
            token,
            current: current.lease_token,
            state: current.state,
        };
        if current.lease_token != token || current.lease_agent.as_deref() != Some(agent) {
            return Err(stale(&current));
        }
        if current.state == to {
            return Ok(current);
        }
        let legal = matches!(
            to,
            JobState::Running | JobState::Succeeded | JobState::Failed
        ) && (current.state.can_become(to)
            || (current.state == JobState::Dispatched && JobState::Running.can_become(to)));
        if !legal {
            if matches!(current.state, JobState::Dispatched | JobState::Running) {
                return Err(StoreError::Conflict {
                    job,
                    actual: current.state,
                    from: current.state,
                    to,
                });
            }
            // Cancelled, Lost or re-queued: the lease is over.
            return Err(stale(&current));
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(REPORT_SQL)
            .bind(to.name())
            .bind(exit_code.map(i64::from))
            .bind(now)
            .bind(job)
            .bind(current.state.name())
            .bind(token)
            .bind(agent)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => {
                let record = job_from_row(&row)?;
                let detail = detail(serde_json::json!({
                    "agent": agent,
                    "token": token,
                    "from": current.state.name(),
                    "to": to.name(),
                    "exit_code": exit_code,
                }));
                let change = job_change(actor, "job.report", &record, detail);
                append_audit_in(&self.head, &mut tx, vec![change], now).await?;
                tx.commit().await?;
                Ok(record)
            }
            // It moved between the read and the write (cancelled, expired).
            None => {
                tx.rollback().await?;
                Err(stale(&self.job(job).await?))
            }
        }
    }

    async fn expire_leases(&self, actor: &Actor, now: i64) -> Result<Vec<JobRecord>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(EXPIRE_SQL)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = job_from_row(row)?;
            let body = serde_json::json!({
                "outcome": "lost",
                "reason": format!(
                    "lease {} at site {} was not renewed (its agent {} stopped heartbeating)",
                    job.lease_token,
                    job.site.as_deref().unwrap_or("?"),
                    job.lease_agent.as_deref().unwrap_or("?")
                ),
            })
            .to_string();
            sqlx::query(INSERT_DECISION_SQL)
                .bind(job.id)
                .bind(now)
                .bind(body.as_str())
                .execute(&mut *tx)
                .await?;
            out.push(job);
        }
        let changes = out
            .iter()
            .map(|job| {
                let detail = detail(serde_json::json!({
                    "agent": job.lease_agent,
                    "token": job.lease_token,
                }));
                job_change(actor, "job.expire", job, detail)
            })
            .collect();
        append_audit_in(&self.head, &mut tx, changes, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn requeue(
        &self,
        actor: &Actor,
        job: i64,
        from: JobState,
        body: &str,
        now: i64,
    ) -> Result<bool> {
        // A placed or lost job; a running one goes back only when preempted
        // (`Store::preempt`, which records why).
        if !matches!(from, JobState::Placed | JobState::Lost) {
            return Err(StoreError::Conflict {
                job,
                actual: from,
                from,
                to: JobState::Pending,
            });
        }
        // The site it leaves, read before (the statement forgets it); if the job
        // moved meanwhile the statement finds it no longer in `from`.
        let before = self.job(job).await?;
        let mut tx = self.pool.begin().await?;
        let requeued = sqlx::query(REQUEUE_SQL)
            .bind(now)
            .bind(job)
            .bind(from.name())
            .execute(&mut *tx)
            .await?;
        let done = DB::rows_affected(&requeued) > 0;
        if done {
            sqlx::query(INSERT_DECISION_SQL)
                .bind(job)
                .bind(now)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            let detail = detail(serde_json::json!({ "from": from.name() }));
            let change = job_change(actor, "job.requeue", &before, detail);
            append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn append_audit(&self, change: Change, now: i64) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await?;
        let mut entries = append_audit_in(&self.head, &mut tx, vec![change], now).await?;
        tx.commit().await?;
        entries.pop().ok_or_else(|| StoreError::Corrupt {
            column: "audit",
            value: "an appended entry went missing".into(),
        })
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let head = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ");
        let mut query = QueryBuilder::<DB>::new(head);
        query.push_bind(filter.after_seq.unwrap_or(0));
        if let Some(actor) = &filter.actor {
            query.push(" AND actor_id = ").push_bind(actor.as_str());
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(job) = filter.job {
            // The entries about job N: about N alone, or a run from at most
            // MAX_RUN - 1 jobs before N to N or beyond (the index `audit_job`
            // reads only the first).
            query
                .push(" AND subject_job <= ")
                .push_bind(job)
                .push(" AND subject_job > ")
                .push_bind(job.saturating_sub(MAX_RUN))
                .push(" AND COALESCE(subject_job_last, subject_job) >= ")
                .push_bind(job);
        }
        if let Some(site) = &filter.site {
            query
                .push(" AND (subject_site = ")
                .push_bind(site.as_str())
                .push(" OR actor_site = ")
                .push_bind(site.as_str())
                .push(")");
        }
        if let Some(tenant) = filter.tenant_id {
            // With a job, the few entries about it are found through
            // `audit_job`; the unary plus keeps SQLite's planner from reading
            // all of the tenant's entries through `audit_tenant` instead.
            query
                .push(if filter.job.is_some() {
                    " AND +subject_tenant = "
                } else {
                    " AND subject_tenant = "
                })
                .push_bind(tenant);
        }
        if let Some(sites) = &filter.sites {
            if sites.is_empty() {
                return Ok(Vec::new());
            }
            query.push(" AND (subject_site IN (");
            let mut list = query.separated(", ");
            for site in sites {
                list.push_bind(site.as_str());
            }
            query.push(") OR actor_site IN (");
            let mut list = query.separated(", ");
            for site in sites {
                list.push_bind(site.as_str());
            }
            query.push("))");
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at <= ").push_bind(until);
        }
        query
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, WALK_PAGE)));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok((row.try_get("seq")?, row.try_get("hash")?)),
            None => Ok((0, GENESIS.to_string())),
        }
    }

    async fn audit_seq_of_hash(&self, hash: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT seq FROM audit WHERE hash = $1 ORDER BY seq LIMIT 1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| row.try_get("seq").map_err(StoreError::from))
            .transpose()
    }
}

impl<DB> crate::suite::Tamper for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    async fn tamper(&self, sql: &str) -> Result<u64> {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    fn other_writer(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            head: HeadCache::default(),
        }
    }
}
