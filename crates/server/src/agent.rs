//! The agent API: how a site's agent joins the network and takes work. The agent
//! dials out; the control plane never calls it.
//!
//! - `POST /v1/agents` registers an agent for a site and answers how often to
//!   heartbeat and how long a lease lasts;
//! - `POST /v1/agents/{id}/heartbeat` says the agent is alive, carries its
//!   telemetry and the `(job, token)` leases it holds; each lease is renewed, or
//!   the agent is told to stop the job (cancelled, or the lease is no longer its);
//! - `POST /v1/agents/{id}/lease` hands out placed jobs of the agent's site whose
//!   start has come, each under a new lease with a fencing token;
//! - `POST /v1/agents/{id}/report` moves a job to Running, Succeeded or Failed,
//!   refused with 409 `stale_lease` unless the lease is the job's current one.
//!
//! A lease not renewed in time makes its job Lost, and the scheduler places a
//! restartable job again (see [`crate::scheduler`]); the new lease's larger token
//! fences out anything the old holder still says.

use crate::error::ApiError;
use crate::submission::decode;
use crate::{App, JobDoc, Shared, authenticate};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use suanwang_store::{AgentRecord, HeldVerdict, JobState, Role, Store};

/// How agents are asked to behave, in wall time.
#[derive(Debug, Clone, Copy)]
pub struct AgentPolicy {
    /// How often an agent heartbeats.
    pub heartbeat_every: Duration,
    /// How long a lease lasts without a renewing heartbeat; also how long a site
    /// may be silent before it is unreachable.
    pub lease_ttl: Duration,
}

impl Default for AgentPolicy {
    fn default() -> AgentPolicy {
        AgentPolicy {
            heartbeat_every: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// Most leases handed out in one call.
pub const MAX_LEASES: u32 = 1000;

/// An agent introducing itself.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The site it runs work for (a site of the topology).
    pub site: String,
    /// Units it offers, per resource class (as measured at the site).
    #[serde(default)]
    pub capacity: BTreeMap<String, u64>,
    /// Its executor: local, slurm, simulated…
    pub executor: String,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
    /// The host it runs on.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// The answer to a registration.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    /// The agent's id, for the other calls.
    pub agent_id: String,
    /// Its site.
    pub site: String,
    /// How often to heartbeat, wall milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long a lease lasts without renewal, wall milliseconds.
    pub lease_ttl_ms: u64,
    /// How many network seconds pass per wall second (1 except in a demo).
    pub speed: f64,
    /// Network time now, unix seconds.
    pub now: i64,
}

/// A lease the agent holds.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldLease {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token.
    pub token: i64,
    /// The tail of the job's output, when it changed since the last heartbeat
    /// (kept only if the lease is renewed).
    #[serde(default)]
    pub log_tail: Option<String>,
}

/// Longest output tail kept per job, bytes.
pub const MAX_LOG_TAIL: usize = 64 * 1024;

/// Largest body of an agent call (heartbeats carry output tails).
pub const MAX_AGENT_BODY: usize = 4 * 1024 * 1024;

fn clip(tail: &str) -> String {
    let mut from = tail.len().saturating_sub(MAX_LOG_TAIL);
    while !tail.is_char_boundary(from) {
        from += 1;
    }
    tail[from..].to_string()
}

/// A heartbeat.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// A telemetry sample (an object), stored as the site's latest.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub telemetry: Option<serde_json::Value>,
    /// The leases it holds (jobs dispatched to it and not yet reported final).
    #[serde(default)]
    pub held: Vec<HeldLease>,
}

/// What to do with one held lease.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldAnswer {
    /// Job id.
    pub job: i64,
    /// Token as sent.
    pub token: i64,
    /// `renewed` (keep running), `cancel` (the job was cancelled: stop it) or
    /// `stale` (the lease is no longer yours: stop it, report nothing more).
    #[schema(value_type = String)]
    pub verdict: HeldVerdict,
}

/// The answer to a heartbeat.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    /// Network time now, unix seconds.
    pub now: i64,
    /// Renewed leases last until then, unix seconds.
    pub lease_until: i64,
    /// One answer per held lease, in order.
    pub held: Vec<HeldAnswer>,
}

/// A request for work.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// At most this many jobs (1..=1000).
    pub max: u32,
    /// When nothing is due, wait up to this long (ms, at most 30,000) for the
    /// scheduler to place something, instead of answering empty at once (a long
    /// poll: work reaches the agent when it is placed, not at its next beat).
    #[serde(default)]
    pub wait_ms: u64,
}

/// Longest long poll of a lease call, ms.
pub const MAX_LEASE_WAIT_MS: u64 = 30_000;

/// A job handed to an agent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    /// Job id.
    pub job: i64,
    /// Fencing token: send it with every report and heartbeat for this job.
    pub token: i64,
    /// The lease lasts until then unless renewed, unix seconds.
    pub lease_until: i64,
    /// Planned start, unix seconds.
    pub start_at: Option<i64>,
    /// Owning tenant.
    pub tenant_id: i64,
    /// The job as submitted: command, environment, resources, duration.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// Work for an agent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leases {
    /// The jobs, earliest planned start first.
    pub leases: Vec<Lease>,
}

/// An agent's report on a job.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token.
    pub token: i64,
    /// Running, Succeeded or Failed.
    pub state: String,
    /// Exit code, for a finished job.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it failed, or anything worth keeping (shown by explain).
    #[serde(default)]
    pub message: Option<String>,
    /// The tail of the job's output (kept only if the report is accepted).
    #[serde(default)]
    pub log_tail: Option<String>,
}

/// An agent as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentDoc {
    /// Id.
    pub id: String,
    /// Site.
    pub site: String,
    /// Whether it heartbeated within the lease time.
    pub live: bool,
    /// Last heartbeat, unix seconds.
    pub last_seen: i64,
    /// Registered, unix seconds.
    pub registered_at: i64,
    /// What it said at registration.
    #[schema(value_type = Object)]
    pub info: serde_json::Value,
    /// Its latest telemetry sample.
    #[schema(value_type = Option<Object>)]
    pub telemetry: Option<serde_json::Value>,
}

fn operator(principal: &crate::auth::Principal) -> Result<(), ApiError> {
    match principal.role {
        Role::Admin | Role::Operator => Ok(()),
        Role::Tenant => Err(ApiError::Forbidden(
            "agents act with an operator or admin token".into(),
        )),
    }
}

async fn known_agent<S: Store>(app: &App<S>, id: &str) -> Result<AgentRecord, ApiError> {
    app.store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("agent {id:?} not found (register again)")))
}

impl<S> App<S> {
    /// Network seconds a lease lasts.
    pub(crate) fn lease_secs(&self) -> i64 {
        self.clock.network_secs(self.agents.lease_ttl)
    }
}

fn agent_doc<S>(app: &App<S>, record: AgentRecord, now: i64) -> AgentDoc {
    AgentDoc {
        live: record.last_seen >= now - app.lease_secs(),
        info: serde_json::from_str(&record.info).unwrap_or(serde_json::Value::Null),
        telemetry: record
            .telemetry
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        id: record.id,
        site: record.site,
        last_seen: record.last_seen,
        registered_at: record.registered_at,
    }
}

#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = Registration,
    responses((status = 201, body = Registered), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn register<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let registration: Registration = decode(&body)?;
    let topology = app.topology();
    if topology.site(&registration.site).is_none() {
        return Err(ApiError::Invalid {
            message: format!(
                "unknown site {:?} (known: {})",
                registration.site,
                topology
                    .sites
                    .iter()
                    .map(|s| s.id.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            field: "/site".into(),
        });
    }
    for class in registration.capacity.keys() {
        if suanwang_model::ResourceClass::parse(class).is_none() {
            return Err(ApiError::Invalid {
                message: format!(
                    "unknown resource class {class:?} (known: {})",
                    suanwang_model::ResourceClass::known_names()
                ),
                field: format!("/capacity/{class}"),
            });
        }
    }
    if registration.executor.is_empty() || registration.executor.len() > 64 {
        return Err(ApiError::Invalid {
            message: "executor must be 1 to 64 characters".into(),
            field: "/executor".into(),
        });
    }
    let now = app.clock.now();
    let id = format!("ag_{}", &crate::auth::new_token()[3..19]);
    let info =
        serde_json::to_string(&registration).map_err(|e| ApiError::Internal(e.to_string()))?;
    app.store
        .register_agent(&AgentRecord {
            id: id.clone(),
            site: registration.site.clone(),
            info,
            registered_at: now,
            last_seen: now,
            telemetry: None,
        })
        .await?;
    tracing::info!(agent = %id, site = %registration.site, executor = %registration.executor, "agent registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            agent_id: id,
            site: registration.site,
            heartbeat_interval_ms: app.agents.heartbeat_every.as_millis() as u64,
            lease_ttl_ms: app.agents.lease_ttl.as_millis() as u64,
            speed: app.clock.speed(),
            now,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", tag = "agents", params(("id" = String, Path)), request_body = Heartbeat,
    responses((status = 200, body = HeartbeatAnswer), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn heartbeat<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let beat: Heartbeat = decode(&body)?;
    let telemetry = match &beat.telemetry {
        None => None,
        Some(t @ serde_json::Value::Object(_)) => Some(t.to_string()),
        Some(_) => {
            return Err(ApiError::Invalid {
                message: "telemetry must be an object".into(),
                field: "/telemetry".into(),
            });
        }
    };
    let now = app.clock.now();
    let lease_until = now + app.lease_secs();
    let held: Vec<(i64, i64)> = beat.held.iter().map(|h| (h.job, h.token)).collect();
    let verdicts = app
        .store
        .heartbeat(&id, telemetry.as_deref(), &held, lease_until, now)
        .await?;
    app.metrics.heartbeats.inc();
    let tails: Vec<(i64, String)> = beat
        .held
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == HeldVerdict::Renewed)
        .filter_map(|(h, _)| h.log_tail.as_deref().map(|t| (h.job, clip(t))))
        .collect();
    app.store.put_logs(&tails, now).await?;
    Ok(Json(HeartbeatAnswer {
        now,
        lease_until,
        held: beat
            .held
            .iter()
            .zip(verdicts)
            .map(|(h, verdict)| HeldAnswer {
                job: h.job,
                token: h.token,
                verdict,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/agents/{id}/lease", tag = "agents", params(("id" = String, Path)), request_body = LeaseRequest,
    responses((status = 200, body = Leases), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn lease<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Leases>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let request: LeaseRequest = decode(&body)?;
    if !(1..=MAX_LEASES).contains(&request.max) {
        return Err(ApiError::Invalid {
            message: format!("max must be 1..={MAX_LEASES}"),
            field: "/max".into(),
        });
    }
    if request.wait_ms > MAX_LEASE_WAIT_MS {
        return Err(ApiError::Invalid {
            message: format!("wait_ms must be at most {MAX_LEASE_WAIT_MS}"),
            field: "/wait_ms".into(),
        });
    }
    let agent = known_agent(&app, &id).await?;
    // Subscribe before looking, so that a placement in between is not missed.
    let mut placed = app.placed.subscribe();
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(request.wait_ms);
    let (jobs, lease_until) = loop {
        let now = app.clock.now();
        let lease_until = now + app.lease_secs();
        let jobs = app
            .store
            .lease(&agent.id, &agent.site, request.max, lease_until, now)
            .await?;
        if !jobs.is_empty() || tokio::time::Instant::now() >= until {
            break (jobs, lease_until);
        }
        tokio::select! {
            changed = placed.changed() => {
                if changed.is_err() {
                    break (jobs, lease_until);
                }
            }
            _ = tokio::time::sleep_until(until) => {}
        }
    };
    app.metrics.dispatched.inc_by(jobs.len() as u64);
    for job in &jobs {
        app.changed.mark(job.id);
        app.live.note_record(job);
    }
    let leases = jobs
        .into_iter()
        .map(|job| {
            Ok(Lease {
                job: job.id,
                token: job.lease_token,
                lease_until,
                start_at: job.start_at,
                tenant_id: job.tenant_id,
                spec: serde_json::from_str(&job.spec).map_err(|e| {
                    ApiError::Internal(format!("stored spec of job {}: {e}", job.id))
                })?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Leases { leases }))
}

#[utoipa::path(post, path = "/v1/agents/{id}/report", tag = "agents", params(("id" = String, Path)), request_body = Report,
    responses((status = 200, body = JobDoc), (status = 409, description = "stale_lease: stop the job", body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn report<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<JobDoc>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let report: Report = decode(&body)?;
    let to = match JobState::parse(&report.state) {
        Some(s @ (JobState::Running | JobState::Succeeded | JobState::Failed)) => s,
        _ => {
            return Err(ApiError::Invalid {
                message: format!(
                    "state {:?}: an agent reports Running, Succeeded or Failed",
                    report.state
                ),
                field: "/state".into(),
            });
        }
    };
    let agent = known_agent(&app, &id).await?;
    let now = app.clock.now();
    let record = app
        .store
        .report(
            &agent.id,
            report.job,
            report.token,
            to,
            report.exit_code,
            now,
        )
        .await?;
    app.changed.mark(record.id);
    app.live.note_record(&record);
    if let Some(tail) = &report.log_tail {
        app.store.put_logs(&[(record.id, clip(tail))], now).await?;
    }
    if let Some(message) = report.message.as_deref().filter(|m| !m.is_empty()) {
        let body = serde_json::json!({
            "outcome": "report",
            "state": to.name(),
            "site": agent.site,
            "agent": agent.id,
            "message": message.chars().take(4000).collect::<String>(),
        });
        app.store
            .record_decision(record.id, &body.to_string(), now)
            .await?;
    }
    if to.is_terminal() {
        app.metrics.finished.inc();
    }
    Ok(Json(JobDoc::from(record)?))
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentDoc>), (status = 403, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<AgentDoc>>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let now = app.clock.now();
    Ok(Json(
        app.store
            .agents()
            .await?
            .into_iter()
            .map(|a| agent_doc(&app, a, now))
            .collect(),
    ))
}

/// Whether each site is reachable: `Some(true)` if an agent of it heartbeated
/// within the lease time, `Some(false)` if it has agents but none did, `None`
/// if no agent ever joined for it (an unmanaged site).
pub(crate) async fn reachability<S: Store>(
    store: &S,
    now: i64,
    lease_secs: i64,
) -> suanwang_store::Result<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    for agent in store.agents().await? {
        let live = agent.last_seen >= now - lease_secs;
        *out.entry(agent.site).or_insert(false) |= live;
    }
    Ok(out)
}
