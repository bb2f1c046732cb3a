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

use crate::auth::{Principal, check_site};
use crate::error::ApiError;
use crate::extract::{Body, Path, Query, SiteActor};
use crate::jobs::job_doc;
use crate::{App, Shared};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::time::Duration;
use suanwang_api::{
    AgentDoc, Decision, Heartbeat, HeartbeatAnswer, HeldAnswer, JobDoc, Lease, LeaseRequest,
    Leases, Registered, Registration, Report, ReportState,
};
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

pub use suanwang_api::agents::{MAX_LEASE_WAIT_MS, MAX_LEASES, MAX_LOG_TAIL};

/// Largest body of an agent call (heartbeats carry output tails).
pub const MAX_AGENT_BODY: usize = 4 * 1024 * 1024;

fn clip(tail: &str) -> String {
    let mut from = tail.len().saturating_sub(MAX_LOG_TAIL);
    while !tail.is_char_boundary(from) {
        from += 1;
    }
    tail[from..].to_string()
}

async fn known_agent<S: Store>(app: &App<S>, id: &str) -> Result<AgentRecord, ApiError> {
    app.store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("agent {id:?} not found (register again)")))
}

/// The agent `id`, if `who` may act for its site (403 otherwise).
async fn own_agent<S: Store>(
    app: &App<S>,
    who: &Principal,
    id: &str,
    action: &str,
) -> Result<AgentRecord, ApiError> {
    let agent = known_agent(app, id).await?;
    check_site(app, who, &agent.site, action).await?;
    Ok(agent)
}

impl<S> App<S> {
    /// Network seconds a lease lasts.
    pub(crate) fn lease_secs(&self) -> i64 {
        self.clock.network_secs(self.agents.lease_ttl)
    }
}

fn agent_doc<S>(app: &App<S>, record: AgentRecord, now: i64) -> Result<AgentDoc, ApiError> {
    let info = serde_json::from_str(&record.info).map_err(|e| {
        ApiError::Internal(format!("stored registration of agent {}: {e}", record.id))
    })?;
    Ok(AgentDoc {
        live: record.last_seen >= now - app.lease_secs(),
        info,
        // A sample an older agent sent that no longer reads is left out.
        telemetry: record
            .telemetry
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        id: record.id,
        site: record.site,
        last_seen: record.last_seen,
        registered_at: record.registered_at,
    })
}

#[utoipa::path(post, path = "/v1/agents", operation_id = "register_agent", tag = "agents", request_body = Registration,
    responses((status = 201, description = "the agent is registered: heartbeat at the interval given", body = Registered),
        (status = 403, description = "the token may not act for this site: agents act with their site's agent token, its provider's, or an operator's", body = suanwang_api::ErrorBody),
        (status = 422, description = "an unknown site or resource class, or a bad executor name; `field` names it", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn register<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Body(registration): Body<Registration>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    check_site(&app, &who, &registration.site, "register an agent").await?;
    let topology = app.topology();
    if topology.site(&registration.site).is_none() {
        return Err(ApiError::invalid(
            "/site",
            format!(
                "unknown site {:?} (known: {})",
                registration.site,
                topology
                    .sites
                    .iter()
                    .map(|s| s.id.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for class in registration.capacity.keys() {
        if suanwang_model::ResourceClass::parse(class).is_none() {
            return Err(ApiError::invalid(
                format!("/capacity/{}", class.replace('~', "~0").replace('/', "~1")),
                format!(
                    "unknown resource class {class:?} (known: {})",
                    suanwang_model::ResourceClass::known_names()
                ),
            ));
        }
    }
    if registration.executor.is_empty() || registration.executor.chars().count() > 64 {
        return Err(ApiError::invalid(
            "/executor",
            "executor must be 1 to 64 characters",
        ));
    }
    let now = app.clock.now();
    let id = format!("ag_{}", &crate::auth::new_token()[3..19]);
    let info =
        serde_json::to_string(&registration).map_err(|e| ApiError::Internal(e.to_string()))?;
    app.store
        .register_agent(
            &who.actor(),
            &AgentRecord {
                id: id.clone(),
                site: registration.site.clone(),
                info,
                registered_at: now,
                last_seen: now,
                telemetry: None,
            },
        )
        .await?;
    tracing::info!(agent = %id, site = %registration.site, executor = %registration.executor, "agent registered");
    let resumed = if registration.resume.is_empty() {
        Vec::new()
    } else {
        let held: Vec<(i64, i64)> = registration
            .resume
            .iter()
            .map(|lease| (lease.job, lease.token))
            .collect();
        let resumed = app
            .store
            .resume_leases(
                &who.actor(),
                &id,
                &registration.site,
                &held,
                now + app.lease_secs(),
                now,
            )
            .await?;
        tracing::info!(agent = %id, asked = held.len(), resumed = resumed.len(), "leases found in the engine resumed");
        resumed
    };
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            agent_id: id,
            site: registration.site,
            heartbeat_interval_ms: app.agents.heartbeat_every.as_millis() as u64,
            lease_ttl_ms: app.agents.lease_ttl.as_millis() as u64,
            speed: app.clock.speed(),
            now,
            resumed,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", operation_id = "heartbeat", tag = "agents",
    params(("id" = String, Path, description = "the agent's id")), request_body = Heartbeat,
    responses((status = 200, description = "the verdict on each lease held: renewed, cancel or stale", body = HeartbeatAnswer),
        (status = 403, description = "the token may not act for this agent's site", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such agent: register again", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn heartbeat<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    Body(beat): Body<Heartbeat>,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    // Operators act for every site: their heartbeats skip the agent's read.
    if !matches!(who.role, Role::Admin | Role::Operator) {
        own_agent(&app, &who, &id, "heartbeat").await?;
    }
    let telemetry = beat
        .telemetry
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
                grace_secs: (verdict == HeldVerdict::Preempt)
                    .then_some(app.preemption.grace_secs.max(0) as u64),
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/agents/{id}/lease", operation_id = "lease", tag = "agents",
    params(("id" = String, Path, description = "the agent's id")), request_body = LeaseRequest,
    responses((status = 200, description = "the jobs whose start has come, each under a new lease (possibly none)", body = Leases),
        (status = 403, description = "the token may not act for this agent's site", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such agent: register again", body = suanwang_api::ErrorBody),
        (status = 422, description = "`max` or `wait_ms` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn lease<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    Body(request): Body<LeaseRequest>,
) -> Result<Json<Leases>, ApiError> {
    if !(1..=MAX_LEASES).contains(&request.max) {
        return Err(ApiError::invalid(
            "/max",
            format!("max must be 1..={MAX_LEASES}"),
        ));
    }
    if request.wait_ms > MAX_LEASE_WAIT_MS {
        return Err(ApiError::invalid(
            "/wait_ms",
            format!("wait_ms must be at most {MAX_LEASE_WAIT_MS}"),
        ));
    }
    let agent = own_agent(&app, &who, &id, "lease work").await?;
    let actor = who.actor();
    // Subscribe before looking, so that a placement in between is not missed.
    let mut placed = app.placed.subscribe();
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(request.wait_ms);
    let (jobs, lease_until) = loop {
        let now = app.clock.now();
        let lease_until = now + app.lease_secs();
        let jobs = app
            .store
            .lease(
                &actor,
                &agent.id,
                &agent.site,
                request.max,
                lease_until,
                now,
            )
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
                spec: serde_json::value::RawValue::from_string(job.spec).map_err(|e| {
                    ApiError::Internal(format!("stored spec of job {}: {e}", job.id))
                })?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Leases { leases }))
}

#[utoipa::path(post, path = "/v1/agents/{id}/report", operation_id = "report", tag = "agents",
    params(("id" = String, Path, description = "the agent's id")), request_body = Report,
    responses((status = 200, description = "the job after the report (a retried report is harmless)", body = JobDoc),
        (status = 403, description = "the token may not act for this agent's site", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such agent or job", body = suanwang_api::ErrorBody),
        (status = 409, description = "`stale_lease`: the lease is no longer this agent's; stop the job and report nothing more for it. `conflict`: the job cannot move to that state", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn report<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    Body(report): Body<Report>,
) -> Result<Json<JobDoc>, ApiError> {
    let to = match report.state {
        // Held by its engine: the job stays Dispatched, the message is kept.
        ReportState::Queued => JobState::Dispatched,
        ReportState::Running => JobState::Running,
        ReportState::Succeeded => JobState::Succeeded,
        ReportState::Failed => JobState::Failed,
    };
    let agent = own_agent(&app, &who, &id, "report").await?;
    let now = app.clock.now();
    let record = app
        .store
        .report(
            &who.actor(),
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
        let decision = Decision::Report {
            state: to,
            site: agent.site.clone(),
            agent: agent.id.clone(),
            message: message.chars().take(4000).collect(),
        };
        let body =
            serde_json::to_string(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
        app.store.record_decision(record.id, &body, now).await?;
    }
    if to.is_terminal() {
        app.metrics.finished.inc();
    }
    Ok(Json(job_doc(record)?))
}

#[utoipa::path(get, path = "/v1/agents", operation_id = "list_agents", tag = "agents", params(suanwang_api::PageQuery),
    responses((status = 200, description = "a page of the registered agents the caller may act for (an operator: all; a provider: its sites'; an agent's token: its site's), in id order, with their latest telemetry", body = Vec<AgentDoc>,
            headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"`, when more follow"))),
        (status = 403, description = "tenants do not see agents", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range, or `after` is too long", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Query(query): Query<suanwang_api::PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let now = app.clock.now();
    let mine = app
        .store
        .agents()
        .await?
        .into_iter()
        .filter(|a| who.may_act_for(&a.site))
        .collect();
    let (page, link) = crate::paging::page(mine, |a: &AgentRecord| &a.id, &query, "/v1/agents")?;
    let agents = page
        .into_iter()
        .map(|a| agent_doc(&app, a, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((link.map(|link| [(header::LINK, link)]), Json(agents)))
}

/// Whether each site is reachable: `Some(true)` if an agent of it heartbeated
/// within the lease time, `Some(false)` if it has agents but none did, `None`
/// if no agent ever joined for it (an unmanaged site).
pub(crate) async fn reachability<S: Store>(
    store: &S,
    now: i64,
    lease_secs: i64,
) -> suanwang_store::Result<BTreeMap<String, bool>> {
    Ok(reachability_of(&store.agents().await?, now, lease_secs))
}

/// [`reachability`] of agent records already read.
pub(crate) fn reachability_of(
    agents: &[AgentRecord],
    now: i64,
    lease_secs: i64,
) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for agent in agents {
        let live = agent.last_seen >= now - lease_secs;
        *out.entry(agent.site.clone()).or_insert(false) |= live;
    }
    out
}
