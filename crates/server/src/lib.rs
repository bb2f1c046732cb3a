//! The control plane's HTTP API (first slice): authentication by bearer token,
//! tenant isolation, job submission with idempotency keys, get, list, cancel.
//!
//! `run(listener, store, shutdown)` takes its IO and its shutdown signal as
//! arguments, so tests bind `127.0.0.1:0` and call the same function as
//! `suanwang serve`.
//!
//! Architecture invariant: handlers do no SQL (the store does) and no scheduling
//! (the core does); every error leaves through [`error::ApiError`], the one
//! mapping to HTTP status.

pub mod admin;
pub mod agent;
pub mod auth;
pub mod clock;
pub mod commit;
pub mod error;
pub mod live;
pub mod metrics;
pub mod observe;
pub mod overview;
pub mod savings;
pub mod scheduler;
mod submission;

use auth::Principal;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use error::ApiError;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use suanwang_store::{JobFilter, JobRecord, JobState, Role, Store, Transition};
use suanwang_topology::Topology;

pub use submission::JobSubmission;

/// Largest request body accepted, bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct App<S> {
    /// The store.
    pub store: S,
    /// The topology in force: the configured one with operators' edits.
    pub network: Arc<TopologyCell>,
    /// Poked after each submission so that the scheduler runs soon.
    pub wakeup: Arc<scheduler::Wakeup>,
    /// Submissions go through group commit.
    pub commit: commit::GroupCommit,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Network time.
    pub clock: clock::Clock,
    /// Bumped by the scheduler when it places work: wakes agents' long polls.
    pub placed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Jobs the API changed (reports, cancels, hand-outs), for the scheduler's
    /// next pass to read again.
    pub changed: Arc<scheduler::Changed>,
    /// Changed jobs and the network view, for `GET /v1/events`.
    pub live: Arc<live::Feed>,
    /// The last savings computed.
    pub savings: savings::Cache,
    /// How agents heartbeat and how long leases last.
    pub agents: agent::AgentPolicy,
    /// Tokens seen recently: digest → (principal, when looked up). Saves a
    /// database read per request; an entry is trusted for [`TOKEN_CACHE_SECS`].
    tokens: TokenCache,
}

type TokenCache =
    std::sync::RwLock<std::collections::HashMap<String, (Principal, std::time::Instant)>>;

/// How long a looked-up token is trusted without asking the database again.
pub const TOKEN_CACHE_SECS: u64 = 30;

impl<S: Store + Clone + 'static> App<S> {
    /// An app over `store` and `topology` on the wall clock; starts the
    /// group-commit writer, so it must be called inside a Tokio runtime.
    pub fn new(store: S, topology: Topology) -> App<S> {
        App::with_clock(store, topology, clock::Clock::real())
    }

    /// An app whose network time is `clock` (accelerated in a demo).
    pub fn with_clock(store: S, topology: Topology, clock: clock::Clock) -> App<S> {
        let commit = commit::GroupCommit::start(store.clone(), clock);
        App {
            store,
            network: Arc::new(TopologyCell::new(topology)),
            wakeup: Arc::new(scheduler::Wakeup::default()),
            commit,
            metrics: Arc::new(metrics::Metrics::default()),
            clock,
            placed: Arc::new(tokio::sync::watch::Sender::new(0)),
            changed: Arc::new(scheduler::Changed::default()),
            live: Arc::new(live::Feed::default()),
            savings: savings::Cache::default(),
            agents: agent::AgentPolicy::default(),
            tokens: TokenCache::default(),
        }
    }
}

pub(crate) type Shared<S> = State<Arc<App<S>>>;

/// The topology in force, replaced whole when an operator edits a site or link;
/// the generation tells the scheduler to rebuild its view.
#[derive(Debug)]
pub struct TopologyCell {
    current: std::sync::RwLock<(u64, Arc<Topology>)>,
}

impl TopologyCell {
    /// A cell holding `topology` at generation 0.
    pub fn new(topology: Topology) -> TopologyCell {
        TopologyCell {
            current: std::sync::RwLock::new((0, Arc::new(topology))),
        }
    }

    /// The topology now and its generation.
    pub fn get(&self) -> (u64, Arc<Topology>) {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        (guard.0, Arc::clone(&guard.1))
    }

    /// Replaces the topology with `edit(current)` if that validates; returns the
    /// new one, or the key and message at fault.
    pub fn update(
        &self,
        edit: impl FnOnce(&mut Topology),
    ) -> Result<Arc<Topology>, (String, String)> {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (*guard.1).clone();
        edit(&mut next);
        next.validate()?;
        let next = Arc::new(next);
        *guard = (guard.0 + 1, Arc::clone(&next));
        Ok(next)
    }
}

impl<S> App<S> {
    /// The topology in force.
    pub fn topology(&self) -> Arc<Topology> {
        self.network.get().1
    }
}

impl<S: Store + Clone + 'static> App<S> {
    /// Starts the scheduler loop over this app's store, clock and metrics: a pass
    /// every `tick` and soon after each submission, until `stop` resolves.
    pub fn start_scheduler(
        &self,
        tick: std::time::Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let scheduler = scheduler::Scheduler::new((*self.topology()).clone(), self.clock.now())
            .with_lease_secs(self.lease_secs())
            .following(Arc::clone(&self.network))
            .notifying(Arc::clone(&self.placed))
            .tracking(Arc::clone(&self.changed))
            .feeding(Arc::clone(&self.live))
            .writing_through(self.commit.clone());
        tokio::spawn(scheduler.run(
            self.store.clone(),
            self.clock,
            Arc::clone(&self.wakeup),
            Arc::clone(&self.metrics),
            tick,
            stop,
        ))
    }
}

/// The router of the API.
pub fn router<S: Store + 'static>(app: App<S>) -> Router {
    let metrics = Arc::clone(&app.metrics);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .route("/openapi.json", get(|| async { Json(openapi()) }))
        .route("/v1/jobs", post(submit::<S>).get(list::<S>))
        .route("/v1/jobs/{id}", get(job::<S>))
        .route("/v1/jobs/{id}/cancel", post(cancel::<S>))
        .route("/v1/jobs/{id}/explain", get(explain::<S>))
        .route("/v1/jobs/{id}/logs", get(logs::<S>))
        .route("/v1/overview", get(overview_route::<S>))
        .route("/v1/events", get(live::events::<S>))
        .route("/v1/flows", get(flows_route::<S>))
        .route("/v1/savings", get(savings::savings::<S>))
        .route("/v1/regions", get(admin::regions::<S>))
        .route("/v1/sites", get(admin::sites::<S>))
        .route(
            "/v1/sites/{id}",
            get(admin::site::<S>).put(admin::put_site::<S>),
        )
        .route("/v1/sites/{id}/drain", post(admin::drain::<S>))
        .route("/v1/sites/{id}/telemetry", get(admin::telemetry::<S>))
        .route("/v1/sites/{id}/series", get(admin::series::<S>))
        .route("/v1/sites/{id}/undrain", post(admin::undrain::<S>))
        .route("/v1/links", get(admin::links::<S>))
        .route("/v1/links/{a}/{b}", put(admin::put_link::<S>))
        .route(
            "/v1/tenants",
            get(admin::tenants::<S>).post(admin::create_tenant::<S>),
        )
        .route(
            "/v1/tokens",
            get(admin::tokens::<S>).post(admin::create_token::<S>),
        )
        .route("/v1/tokens/{id}", delete(admin::revoke_token::<S>))
        .route(
            "/v1/agents",
            post(agent::register::<S>).get(agent::list::<S>),
        )
        .route(
            "/v1/agents/{id}/heartbeat",
            post(agent::heartbeat::<S>).layer(DefaultBodyLimit::max(agent::MAX_AGENT_BODY)),
        )
        .route("/v1/agents/{id}/lease", post(agent::lease::<S>))
        .route(
            "/v1/agents/{id}/report",
            post(agent::report::<S>).layer(DefaultBodyLimit::max(agent::MAX_AGENT_BODY)),
        )
        .fallback(console_asset)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(app))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(observe::trace))
}

/// The web console's embedded files: `/` is its index, `/assets/*` its scripts and
/// styles. Only paths no API route matched reach here, so the console can never
/// shadow `/v1`, `/metrics`, `/healthz` or `/openapi.json`; anything else is the
/// API's ordinary 404.
async fn console_asset(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers_in: HeaderMap,
) -> axum::response::Response {
    use axum::http::{Method, header};
    let asset = match method {
        Method::GET | Method::HEAD => suanwang_console::asset(uri.path()),
        _ => None,
    };
    let Some(asset) = asset else {
        return ApiError::NotFound(format!("no route for {method} {}", uri.path())).into_response();
    };
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::VARY, "accept-encoding"),
    ];
    match asset.gzip.filter(|_| accepts_gzip(&headers_in)) {
        Some(gzip) => (headers, [(header::CONTENT_ENCODING, "gzip")], gzip).into_response(),
        None => (headers, asset.bytes).into_response(),
    }
}

/// Whether `Accept-Encoding` takes gzip (named with a q-value above zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
        })
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn run<S: Store + 'static>(
    listener: tokio::net::TcpListener,
    app: App<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = Arc::clone(&app.live);
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Event streams never end by themselves: end them, so that the
            // requests in flight can finish.
            live.close();
        })
        .await
}

pub(crate) async fn authenticate<S: Store>(
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
    let digest = auth::digest(token);
    let ttl = std::time::Duration::from_secs(TOKEN_CACHE_SECS);
    if let Some((principal, at)) = app.tokens.read().ok().and_then(|c| c.get(&digest).cloned())
        && at.elapsed() < ttl
    {
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
    if let Ok(mut cache) = app.tokens.write() {
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(digest, (principal.clone(), std::time::Instant::now()));
    }
    Ok(principal)
}

/// The job `id` if the caller may see it. Another tenant's job does not exist as
/// far as this caller can tell: 404, like a job that is not there.
async fn visible_job<S: Store>(
    app: &App<S>,
    principal: &Principal,
    id: i64,
) -> Result<JobRecord, ApiError> {
    match app.store.job(id).await {
        Ok(record) if principal.may_see(record.tenant_id) => Ok(record),
        Ok(_) | Err(suanwang_store::StoreError::NotFound { .. }) => {
            Err(ApiError::NotFound(format!("job {id} not found")))
        }
        Err(e) => Err(e.into()),
    }
}

/// A job as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDoc {
    /// Id.
    pub id: i64,
    /// Owning tenant's id.
    pub tenant_id: i64,
    /// State: Pending, Placed, Dispatched, Running, Succeeded, Failed, Cancelled, Lost.
    #[schema(value_type = String)]
    pub state: JobState,
    /// Site, once placed.
    pub site: Option<String>,
    /// Start, unix seconds, once placed.
    pub start_at: Option<i64>,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
    /// The job as submitted (normalised). Passed through as stored, not
    /// parsed and written again.
    #[schema(value_type = Object)]
    pub spec: Box<serde_json::value::RawValue>,
    /// Idempotency key given at submission.
    pub idempotency_key: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// How many times it was handed to an agent; the current lease's fencing token.
    pub attempt: i64,
    /// The agent holding (or that last held) it.
    pub agent: Option<String>,
    /// When its lease ends unless renewed, unix seconds.
    pub lease_expires_at: Option<i64>,
    /// When it started running, unix seconds.
    pub started_at: Option<i64>,
    /// When it ended, unix seconds.
    pub finished_at: Option<i64>,
}

impl JobDoc {
    fn from(record: JobRecord) -> Result<JobDoc, ApiError> {
        let spec = serde_json::value::RawValue::from_string(record.spec).map_err(|e| {
            ApiError::Internal(format!("stored spec of job {} is not JSON: {e}", record.id))
        })?;
        Ok(JobDoc {
            id: record.id,
            tenant_id: record.tenant_id,
            state: record.state,
            site: record.site,
            start_at: record.start_at,
            exit_code: record.exit_code,
            spec,
            idempotency_key: record.idempotency_key,
            created_at: record.created_at,
            updated_at: record.updated_at,
            attempt: record.lease_token,
            agent: record.lease_agent,
            lease_expires_at: record.lease_expires_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
        })
    }
}

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = JobSubmission,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retried submit with the same key returns the same job")),
    responses((status = 201, description = "created", body = JobDoc), (status = 200, description = "an earlier submit with this key", body = JobDoc),
        (status = 400, body = error::ErrorBody), (status = 401, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 422, body = error::ErrorBody)),
    security(("bearer" = [])))]
async fn submit<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let tenant_id = match (principal.role, principal.tenant_id) {
        (Role::Tenant, Some(t)) => t,
        _ => {
            return Err(ApiError::Forbidden(
                "only a tenant token may submit jobs (its tenant owns them)".into(),
            ));
        }
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| {
                !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic())
            });
            Some(key.ok_or_else(|| ApiError::BadRequest {
                message: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
                field: Some("Idempotency-Key".into()),
            })?)
        }
    };
    let submission = submission::parse(&body, &app.topology())?;
    let spec = serde_json::to_string(&submission).map_err(|e| ApiError::Internal(e.to_string()))?;
    let job = suanwang_store::NewJob {
        tenant_id,
        idempotency_key: key.map(str::to_string),
        spec,
    };
    let (record, created) = app.commit.submit(job).await?;
    if created {
        app.wakeup.poke();
        app.live.note_record(&record);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(JobDoc::from(record)?)))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobDoc), (status = 401, body = error::ErrorBody), (status = 404, body = error::ErrorBody)), security(("bearer" = [])))]
async fn job<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<JobDoc>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let record = visible_job(&app, &principal, id).await?;
    Ok(Json(JobDoc::from(record)?))
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Only this tenant id (operators and admins).
    pub tenant_id: Option<i64>,
    /// Cursor of an oldest-first page: the `next` of the previous page.
    pub after: Option<i64>,
    /// Cursor of a newest-first page: the `next` of the previous page.
    pub before: Option<i64>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    pub order: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs, by id.
    pub jobs: Vec<JobDoc>,
    /// Cursor of the next page, if there may be one.
    pub next: Option<i64>,
}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(("state" = Option<String>, Query), ("site" = Option<String>, Query), ("tenant_id" = Option<i64>, Query),
        ("order" = Option<String>, Query, description = "asc (oldest first, default) or desc (newest first)"),
        ("after" = Option<i64>, Query, description = "cursor of an asc page"), ("before" = Option<i64>, Query, description = "cursor of a desc page"),
        ("limit" = Option<u32>, Query)),
    responses((status = 200, body = JobPage), (status = 400, body = error::ErrorBody), (status = 401, body = error::ErrorBody)), security(("bearer" = [])))]
async fn list<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest {
        message: e.body_text(),
        field: None,
    })?;
    let state = match query.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| ApiError::Invalid {
            message: format!("unknown state {s:?}"),
            field: "state".into(),
        })?),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Invalid {
            message: "limit must be 1..=1000".into(),
            field: "limit".into(),
        });
    }
    let tenant_id = match principal.role {
        Role::Tenant => principal.tenant_id,
        _ => query.tenant_id,
    };
    let newest_first = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::Invalid {
                message: format!("order must be asc or desc, not {other:?}"),
                field: "order".into(),
            });
        }
    };
    let misplaced = match (newest_first, query.after, query.before) {
        (true, Some(_), _) => Some(("after", "a newest-first (order=desc) page takes `before`")),
        (false, _, Some(_)) => Some((
            "before",
            "an oldest-first page takes `after` (or give order=desc)",
        )),
        _ => None,
    };
    if let Some((field, message)) = misplaced {
        return Err(ApiError::Invalid {
            message: message.into(),
            field: field.into(),
        });
    }
    let filter = JobFilter {
        state,
        site: query.site,
        tenant_id,
        after_id: query.after,
        before_id: query.before,
        newest_first,
        limit,
        ..Default::default()
    };
    let records = app.store.list_jobs(&filter).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let jobs = records
        .into_iter()
        .map(JobDoc::from)
        .collect::<Result<_, _>>()?;
    Ok(Json(JobPage { jobs, next }))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobDoc), (status = 404, body = error::ErrorBody), (status = 409, body = error::ErrorBody)), security(("bearer" = [])))]
async fn cancel<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<JobDoc>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let record = visible_job(&app, &principal, id).await?;
    if record.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "job {id} is already {}",
            record.state
        )));
    }
    let change = Transition {
        from: record.state,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    let updated = app.store.transition(id, &change, app.clock.now()).await?;
    app.changed.mark(id);
    app.live.note_record(&updated);
    Ok(Json(JobDoc::from(updated)?))
}

/// The tail of a job's output.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Logs {
    /// Job id.
    pub job: i64,
    /// The last (up to 64 KiB) of its stdout and stderr, as its agent last sent
    /// it; empty when nothing came yet.
    pub tail: String,
    /// When it came, unix seconds.
    pub updated_at: Option<i64>,
    /// Whether the job has ended (no more output will come).
    pub complete: bool,
}

#[utoipa::path(get, path = "/v1/jobs/{id}/logs", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = Logs), (status = 404, body = error::ErrorBody)), security(("bearer" = [])))]
async fn logs<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Logs>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let record = visible_job(&app, &principal, id).await?;
    let (tail, updated_at) = match app.store.logs(id).await? {
        Some((tail, at)) => (tail, Some(at)),
        None => (String::new(), None),
    };
    Ok(Json(Logs {
        job: id,
        tail,
        updated_at,
        complete: record.state.is_terminal(),
    }))
}

/// Why a job is where it is.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The job.
    pub job: JobDoc,
    /// The scheduler's decisions and the agents' notes, oldest first, each with
    /// its time `at` (unix seconds) and `outcome`: `placed` (the candidates
    /// weighed with their score terms), `pending` or `rejected` (why), `lost`,
    /// `requeued`, `report` (an agent's message).
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/v1/jobs/{id}/explain", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = Explanation), (status = 404, body = error::ErrorBody)), security(("bearer" = [])))]
async fn explain<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Explanation>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let record = visible_job(&app, &principal, id).await?;
    let decisions = app
        .store
        .decisions(id)
        .await?
        .into_iter()
        .map(|d| {
            let mut body: serde_json::Value = serde_json::from_str(&d.body)
                .map_err(|e| ApiError::Internal(format!("decision of job {id}: {e}")))?;
            if let Some(object) = body.as_object_mut() {
                object.insert("at".into(), d.at.into());
            }
            Ok::<_, ApiError>(body)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let decisions = if decisions.is_empty() {
        vec![
            serde_json::json!({"outcome": "pending", "reason": "not yet considered by the scheduler"}),
        ]
    } else {
        decisions
    };
    Ok(Json(Explanation {
        job: JobDoc::from(record)?,
        decisions,
    }))
}

/// Ready when the database answers.
async fn readyz<S: Store>(State(app): Shared<S>) -> Result<&'static str, ApiError> {
    app.store
        .list_jobs(&JobFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("database not ready: {e}")))?;
    Ok("ready")
}

async fn metrics_text<S: Store>(State(app): Shared<S>) -> impl IntoResponse {
    // Per-site gauges are computed at scrape time; the counters stand alone if
    // the database does not answer.
    let now = app.clock.now();
    match (
        overview::overview(&app.store, &app.topology(), now, app.lease_secs()).await,
        agent::reachability(&app.store, now, app.lease_secs()).await,
    ) {
        (Ok(overview), Ok(reach)) => app.metrics.set_sites(&overview, &reach),
        (Err(e), _) => tracing::warn!(error = %e, "metrics: no overview"),
        (_, Err(e)) => tracing::warn!(error = %e, "metrics: no reachability"),
    }
    match app.store.agents().await {
        Ok(agents) => app.metrics.set_reported(&agents, now, app.lease_secs()),
        Err(e) => tracing::warn!(error = %e, "metrics: no agents"),
    }
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        app.metrics.encode(),
    )
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "suanwang", description = "The control plane of a computing-power network (算网)."),
    paths(submit, job, list, cancel, explain, logs, overview_route, flows_route, live::events, savings::savings, admin::regions,
        admin::sites, admin::site, admin::put_site, admin::telemetry, admin::series, admin::drain, admin::undrain, admin::links, admin::put_link,
        admin::tenants, admin::create_tenant, admin::tokens, admin::create_token, admin::revoke_token,
        agent::register, agent::heartbeat, agent::lease, agent::report, agent::list),
    components(schemas(JobSubmission, JobDoc, JobPage, Explanation, Logs, overview::Overview, overview::Flows, overview::Flow, savings::SavingsDoc, savings::Comparison, savings::Totals, error::ErrorBody,
        admin::SiteDoc, admin::TelemetryDoc, admin::SeriesDoc, admin::SeriesPoint, admin::DrainRequest, admin::TenantDoc, admin::NewTenant, admin::NewToken, admin::IssuedToken, admin::TokenDoc,
        agent::Registration, agent::Registered, agent::Heartbeat, agent::HeldLease, agent::HeldAnswer, agent::HeartbeatAnswer,
        agent::LeaseRequest, agent::Lease, agent::Leases, agent::Report, agent::AgentDoc)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The OpenAPI document of the API, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

#[utoipa::path(get, path = "/v1/flows", tag = "network",
    responses((status = 200, body = overview::Flows), (status = 401, body = error::ErrorBody)), security(("bearer" = [])))]
async fn flows_route<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<overview::Flows>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    if let Some(fresh) = app.live.fresh() {
        return Ok(Json(fresh.flows(&principal)));
    }
    let now = app.clock.now();
    let (_, flows) = overview::network(&app.store, &app.topology(), now, app.lease_secs()).await?;
    Ok(Json(flows.visible(now, |t| principal.may_see(t))))
}

#[utoipa::path(get, path = "/v1/overview", tag = "network",
    responses((status = 200, body = overview::Overview), (status = 401, body = error::ErrorBody)), security(("bearer" = [])))]
async fn overview_route<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    authenticate(&app, &headers).await?;
    // While consoles listen, the publisher's view (at most a second old) saves a
    // read of every live job.
    if let Some(fresh) = app.live.fresh() {
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            fresh.overview_json().to_string(),
        )
            .into_response());
    }
    Ok(Json(
        overview::overview(
            &app.store,
            &app.topology(),
            app.clock.now(),
            app.lease_secs(),
        )
        .await?,
    )
    .into_response())
}
