//! The two backends. Their SQL is the same text (numbered `$N` parameters and
//! `CAST` work in both); a macro writes each method once for both pool types so
//! that they cannot drift, and the shared suite checks that they behave alike.

use crate::{
    DecisionRecord, JobFilter, JobRecord, JobState, NewJob, Result, Role, Store, StoreError,
    Tenant, TokenRecord, Transition,
};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// SQLite in WAL mode. `synchronous = NORMAL`: a committed transaction survives a
/// crash of the process (`kill -9`), though not necessarily of the machine.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl SqliteStore {
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
        Ok(SqliteStore { pool })
    }
}

impl PostgresStore {
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
        Ok(PostgresStore { pool })
    }
}

// A macro rather than a const, so that `concat!` builds each statement as a static
// string (sqlx accepts only static SQL unless told otherwise).
macro_rules! job_columns {
    () => {
        "id, tenant_id, idempotency_key, spec, state, site, start_at, exit_code, version, created_at, updated_at"
    };
}

fn job_from_row<R: Row>(row: &R) -> Result<JobRecord>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get("state")?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        spec: row.try_get("spec")?,
        state: JobState::parse(&state).ok_or(StoreError::Corrupt {
            column: "state",
            value: state,
        })?,
        site: row.try_get("site")?,
        start_at: row.try_get("start_at")?,
        exit_code: exit_code.map(|c| c as i32),
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a Pending job unless the tenant used the idempotency key before.
const SUBMIT_SQL: &str = concat!(
    "INSERT INTO jobs (tenant_id, idempotency_key, spec, state, version, created_at, updated_at) ",
    "VALUES ($1, $2, $3, 'Pending', 1, $4, $4) ",
    "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING ",
    "RETURNING ",
    job_columns!()
);

/// The job a tenant submitted with an idempotency key.
const SUBMITTED_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
);

/// Applies a change if the job is still in the state the caller saw.
const TRANSITION_SQL: &str = concat!(
    "UPDATE jobs SET state = $1, site = COALESCE($2, site), start_at = COALESCE($3, start_at), ",
    "exit_code = COALESCE($4, exit_code), version = version + 1, updated_at = $5 ",
    "WHERE id = $6 AND state = $7 RETURNING ",
    job_columns!()
);

macro_rules! impl_store {
    ($store:ty) => {
        impl Store for $store {
            async fn tenant(&self, name: &str, now: i64) -> Result<Tenant> {
                sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                let row = sqlx::query("SELECT id, name FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(Tenant { id: row.try_get("id")?, name: row.try_get("name")? })
            }

            async fn insert_token(&self, token: &TokenRecord, now: i64) -> Result<()> {
                sqlx::query("INSERT INTO tokens (digest, tenant_id, role, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&token.digest)
                    .bind(token.tenant_id)
                    .bind(token.role.name())
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn token(&self, digest: &str) -> Result<Option<TokenRecord>> {
                let row = sqlx::query("SELECT digest, tenant_id, role FROM tokens WHERE digest = $1")
                    .bind(digest)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let role: String = row.try_get("role")?;
                Ok(Some(TokenRecord {
                    digest: row.try_get("digest")?,
                    tenant_id: row.try_get("tenant_id")?,
                    role: Role::parse(&role).ok_or(StoreError::Corrupt { column: "role", value: role })?,
                }))
            }

            async fn submit(
                &self,
                tenant_id: i64,
                idempotency_key: Option<&str>,
                spec: &str,
                now: i64,
            ) -> Result<(JobRecord, bool)> {
                let row = sqlx::query(SUBMIT_SQL)
                    .bind(tenant_id)
                    .bind(idempotency_key)
                    .bind(spec)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = row {
                    return Ok((job_from_row(&row)?, true));
                }
                // The key was used before: the first submission wins.
                let row = sqlx::query(SUBMITTED_SQL)
                    .bind(tenant_id)
                    .bind(idempotency_key)
                    .fetch_one(&self.pool)
                    .await?;
                Ok((job_from_row(&row)?, false))
            }

            async fn submit_many(&self, jobs: &[NewJob], now: i64) -> Result<Vec<(JobRecord, bool)>> {
                let mut tx = self.pool.begin().await?;
                let mut out = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let row = sqlx::query(SUBMIT_SQL)
                        .bind(job.tenant_id)
                        .bind(job.idempotency_key.as_deref())
                        .bind(&job.spec)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                    match row {
                        Some(row) => out.push((job_from_row(&row)?, true)),
                        None => {
                            let row = sqlx::query(SUBMITTED_SQL)
                                .bind(job.tenant_id)
                                .bind(job.idempotency_key.as_deref())
                                .fetch_one(&mut *tx)
                                .await?;
                            out.push((job_from_row(&row)?, false));
                        }
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn job(&self, id: i64) -> Result<JobRecord> {
                let select = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
                let row = sqlx::query(select).bind(id).fetch_optional(&self.pool).await?;
                match row {
                    Some(row) => job_from_row(&row),
                    None => Err(StoreError::NotFound { what: "job", id: id.to_string() }),
                }
            }

            async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>> {
                let select = concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) ",
                    "AND (CAST($2 AS TEXT) IS NULL OR site = $2) ",
                    "AND (CAST($3 AS BIGINT) IS NULL OR tenant_id = $3) ",
                    "AND id > $4 ORDER BY id LIMIT $5"
                );
                let rows = sqlx::query(select)
                    .bind(filter.state.map(|s| s.name()))
                    .bind(filter.site.as_deref())
                    .bind(filter.tenant_id)
                    .bind(filter.after_id.unwrap_or(0))
                    .bind(i64::from(filter.limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(job_from_row).collect()
            }

            async fn transition(&self, id: i64, change: &Transition, now: i64) -> Result<JobRecord> {
                let conflict = |actual: JobState| StoreError::Conflict { job: id, actual, from: change.from, to: change.to };
                if !change.from.can_become(change.to) {
                    return Err(conflict(change.from));
                }
                let row = sqlx::query(TRANSITION_SQL)
                    .bind(change.to.name())
                    .bind(change.site.as_deref())
                    .bind(change.start_at)
                    .bind(change.exit_code.map(i64::from))
                    .bind(now)
                    .bind(id)
                    .bind(change.from.name())
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) => job_from_row(&row),
                    None => Err(conflict(self.job(id).await?.state)),
                }
            }

            async fn decide_many(&self, items: &[(i64, Transition, String)], now: i64) -> Result<Vec<bool>> {
                let mut tx = self.pool.begin().await?;
                let mut out = Vec::with_capacity(items.len());
                for (id, change, body) in items {
                    if !change.from.can_become(change.to) {
                        out.push(false);
                        continue;
                    }
                    let done = sqlx::query(TRANSITION_SQL)
                        .bind(change.to.name())
                        .bind(change.site.as_deref())
                        .bind(change.start_at)
                        .bind(change.exit_code.map(i64::from))
                        .bind(now)
                        .bind(*id)
                        .bind(change.from.name())
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                    if done {
                        sqlx::query("INSERT INTO decisions (job_id, at, body) VALUES ($1, $2, $3)")
                            .bind(*id)
                            .bind(now)
                            .bind(body)
                            .execute(&mut *tx)
                            .await?;
                    }
                    out.push(done);
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn record_decision(&self, job_id: i64, body: &str, now: i64) -> Result<()> {
                sqlx::query("INSERT INTO decisions (job_id, at, body) VALUES ($1, $2, $3)")
                    .bind(job_id)
                    .bind(now)
                    .bind(body)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn decisions(&self, job_id: i64) -> Result<Vec<DecisionRecord>> {
                let rows = sqlx::query("SELECT job_id, at, body FROM decisions WHERE job_id = $1 ORDER BY id")
                    .bind(job_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(DecisionRecord { job_id: row.try_get("job_id")?, at: row.try_get("at")?, body: row.try_get("body")? })
                    })
                    .collect()
            }
        }
    };
}

impl_store!(SqliteStore);
impl_store!(PostgresStore);
