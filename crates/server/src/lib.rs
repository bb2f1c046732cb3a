//! The control plane: its HTTP API (`/v1`, described by `/openapi.json`), the
//! scheduler loop that drives the pure core, and the live feed of the console.
//!
//! This file holds the app's shared state ([`App`]), the router and [`run`];
//! the routes live by audience and resource: [`jobs`], [`sites`], [`tenants`]
//! (tenants and tokens), [`agent`] (the agent protocol), [`overview`],
//! [`savings`] and [`live`] (the network view and its events), [`audit`] (the
//! audit log), [`health`]
//! (`/healthz`, `/readyz`, `/metrics`), [`assets`] (the console) and
//! [`openapi`] (the document). Who may call a route is said by its extractors
//! ([`extract`]); the wire types are `suanwang-api`'s.
//!
//! `run(listener, app, shutdown)` takes its IO and its shutdown signal as
//! arguments, so tests bind `127.0.0.1:0` and call the same function as
//! `suanwang serve`.
//!
//! Architecture invariant: handlers do no SQL (the store does) and no scheduling
//! (the core does); every error leaves through [`error::ApiError`], the one
//! mapping to HTTP status.

pub mod accelerators;
pub mod agent;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod capacity;
pub mod clock;
pub mod commit;
pub mod error;
pub mod extract;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod overview;
mod paging;
pub mod savings;
pub mod scheduler;
pub mod sites;
mod submission;
pub mod tenants;
pub mod tls;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, post, put};
use std::future::Future;
use std::sync::Arc;
use suanwang_store::Store;
use suanwang_topology::Topology;

pub use openapi::openapi;
pub use submission::check_submission;

/// Largest request body accepted, bytes (agents' registrations, heartbeats and reports take
/// [`agent::MAX_AGENT_BODY`]).
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
    /// Tokens seen recently, so that a request costs no database read for its
    /// token (see [`auth::TokenCache`]).
    pub(crate) tokens: auth::TokenCache,
    /// Request rates and failed authentications ([`limits`]).
    pub limits: limits::Limiter,
    /// Whether an agent must present a client certificate naming its site
    /// (mutual TLS, `serve --tls-client-ca … --require-agent-certificate`).
    pub require_agent_certificate: bool,
    /// How the scheduler shares the network among tenants.
    pub fair_share: scheduler::FairSharePolicy,
    /// When the scheduler may preempt.
    pub preemption: scheduler::PreemptionPolicy,
}

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
            tokens: auth::TokenCache::default(),
            fair_share: scheduler::FairSharePolicy::default(),
            preemption: scheduler::PreemptionPolicy::default(),
            limits: limits::Limiter::default(),
            require_agent_certificate: false,
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
        next.capacity_from_nodes();
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
            .sharing(self.fair_share)
            .preempting(self.preemption)
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
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<S>))
        .route("/metrics", get(health::metrics::<S>))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/jobs", post(jobs::submit::<S>).get(jobs::list::<S>))
        .route("/v1/jobs/{id}", get(jobs::job::<S>))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel::<S>))
        .route("/v1/jobs/{id}/explain", get(jobs::explain::<S>))
        .route("/v1/jobs/{id}/logs", get(jobs::logs::<S>))
        .route("/v1/overview", get(overview::overview_route::<S>))
        .route("/v1/events", get(live::events::<S>))
        .route("/v1/flows", get(overview::flows_route::<S>))
        .route("/v1/savings", get(savings::savings::<S>))
        .route("/v1/regions", get(sites::regions::<S>))
        .route("/v1/accelerators", get(accelerators::list::<S>))
        .route("/v1/accelerators/{name}", put(accelerators::put::<S>))
        .route("/v1/sites", get(sites::sites::<S>))
        .route(
            "/v1/sites/{id}",
            get(sites::site::<S>).put(sites::put_site::<S>),
        )
        .route("/v1/sites/{id}/drain", post(sites::drain::<S>))
        .route("/v1/sites/{id}/undrain", post(sites::undrain::<S>))
        .route("/v1/sites/{id}/telemetry", get(sites::telemetry::<S>))
        .route("/v1/sites/{id}/jobs", get(sites::site_jobs::<S>))
        .route("/v1/sites/{id}/series", get(sites::series::<S>))
        .route("/v1/links", get(sites::links::<S>))
        .route("/v1/links/{a}/{b}", put(sites::put_link::<S>))
        .route(
            "/v1/tenants",
            get(tenants::tenants::<S>).post(tenants::create_tenant::<S>),
        )
        .route(
            "/v1/tokens",
            get(tenants::tokens::<S>).post(tenants::create_token::<S>),
        )
        .route("/v1/tokens/{id}", delete(tenants::revoke_token::<S>))
        .route("/v1/quotas", get(tenants::quotas::<S>))
        .route("/v1/tenants/{name}/quota", put(tenants::put_quota::<S>))
        .route("/v1/shares", get(tenants::shares::<S>))
        .route("/v1/tenants/{name}/share", put(tenants::put_share::<S>))
        .route("/v1/classes", get(tenants::classes::<S>))
        .route("/v1/tenants/{name}/class", put(tenants::put_class::<S>))
        .route("/v1/spills", get(tenants::spills::<S>))
        .route("/v1/tenants/{name}/spill", put(tenants::put_spill::<S>))
        .route("/v1/audit", get(audit::list::<S>))
        .route("/v1/audit/export", get(audit::export::<S>))
        .route("/v1/providers", get(tenants::providers::<S>))
        .route("/v1/providers/{name}", put(tenants::put_provider::<S>))
        .route(
            "/v1/agents",
            // A restarted agent's registration lists the leases it resumes.
            post(agent::register::<S>)
                .layer(DefaultBodyLimit::max(agent::MAX_AGENT_BODY))
                .get(agent::list::<S>),
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
        .fallback(assets::console_asset)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(app))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::trace,
        ))
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn run<S: Store + 'static>(
    listener: tokio::net::TcpListener,
    app: App<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, app, shutdown).await
}

/// Serves the API over TLS ([`tls`]) on `listener`, as [`run`]: a client that
/// does not speak TLS gets no answer.
pub async fn run_tls<S: Store + 'static>(
    listener: tokio::net::TcpListener,
    config: Arc<tls::ServerConfig>,
    app: App<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(tls::TlsListener::new(listener, config)?, app, shutdown).await
}

async fn serve<S, L>(
    listener: L,
    app: App<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Store + 'static,
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    tls::Peer: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let live = Arc::clone(&app.live);
    let service = router(app).into_make_service_with_connect_info::<tls::Peer>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Event streams never end by themselves: end them, so that the
            // requests in flight can finish.
            live.close();
        })
        .await
}
