//! Live updates for the console: `GET /v1/events`, a stream of server-sent events.
//!
//! Handlers and the scheduler note the jobs they change in the [`Feed`]; while
//! anyone listens, one publisher task (started by the first listener, ended when
//! the last one leaves) turns the notes into `jobs` events at most every
//! [`BATCH`], and recomputes the network's `overview` and `flows` at most that
//! often when jobs changed, or every [`REFRESH`] since prices and carbon move with
//! the clock. Store reads are the publisher's, once per batch, not once per
//! listener; each stream only filters what its caller may see. Without listeners
//! a note costs one atomic load.
//!
//! Events: `overview` (as `GET /v1/overview`), `flows` (as `GET /v1/flows`, the
//! caller's jobs only for a tenant), `jobs` (`{"jobs": [JobDoc…]}`, changed jobs
//! the caller may see) and `resync` (events were dropped — too many changes at
//! once, or a slow reader: fetch again). A `: keep-alive` comment every 15 s.

use crate::auth::Principal;
use crate::auth::bearer;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::overview::TenantFlows;
use crate::{App, Shared};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use suanwang_store::{JobRecord, Store, StoreError};
use tokio::sync::{Notify, broadcast, watch};

/// Least time between two publications.
pub const BATCH: Duration = Duration::from_millis(500);
/// The network view is recomputed at least this often while anyone listens.
pub const REFRESH: Duration = Duration::from_secs(5);
/// More changed jobs than this in one batch become a `resync` event.
pub const MAX_BATCH: usize = 2_000;
/// How often a stream checks that its token is still accepted.
const REAUTH: Duration = Duration::from_secs(30);

/// A changed job: its tenant, and its document as JSON.
#[derive(Debug, Clone)]
pub struct Change {
    tenant_id: i64,
    json: Arc<str>,
}

/// What one publication carries.
#[derive(Debug, Clone)]
enum Batch {
    Jobs(Arc<Vec<Change>>),
    /// Too many changes to list: fetch again.
    Resync,
}

/// The network now, as the streams send it.
#[derive(Debug)]
pub struct NetworkNow {
    at: i64,
    computed: std::time::Instant,
    overview: Arc<str>,
    flows: TenantFlows,
}

/// How old a view the plain routes (`GET /v1/overview`, `/v1/flows`) may serve
/// from the publisher instead of reading the store again.
pub const FRESH: Duration = Duration::from_secs(1);

impl NetworkNow {
    /// The overview as JSON.
    pub fn overview_json(&self) -> Arc<str> {
        Arc::clone(&self.overview)
    }

    /// The flows `principal` may see.
    pub fn flows(&self, principal: &Principal) -> suanwang_api::Flows {
        self.flows.visible(self.at, |t| principal.may_see(t))
    }
}

#[derive(Debug, Default)]
struct Noted {
    ids: HashSet<i64>,
    records: HashMap<i64, JobRecord>,
}

/// Changes noted for the listeners.
#[derive(Debug)]
pub struct Feed {
    listeners: AtomicUsize,
    publishing: AtomicBool,
    noted: std::sync::Mutex<Noted>,
    wake: Notify,
    jobs: broadcast::Sender<Batch>,
    network: watch::Sender<Option<Arc<NetworkNow>>>,
    closing: watch::Sender<bool>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            listeners: AtomicUsize::new(0),
            publishing: AtomicBool::new(false),
            noted: std::sync::Mutex::new(Noted::default()),
            wake: Notify::new(),
            jobs: broadcast::channel(256).0,
            network: watch::Sender::new(None),
            closing: watch::Sender::new(false),
        }
    }
}

impl Feed {
    fn listening(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0
    }

    /// Notes that job `id` changed (its document is read again).
    pub fn note(&self, id: i64) {
        self.note_all([id]);
    }

    /// Notes that these jobs changed.
    pub fn note_all(&self, ids: impl IntoIterator<Item = i64>) {
        if !self.listening() {
            return;
        }
        if let Ok(mut noted) = self.noted.lock() {
            noted.ids.extend(ids);
        }
        self.wake.notify_one();
    }

    /// Notes a job whose new state the caller has at hand (no read needed).
    pub fn note_record(&self, record: &JobRecord) {
        if !self.listening() {
            return;
        }
        if let Ok(mut noted) = self.noted.lock() {
            noted.ids.remove(&record.id);
            noted.records.insert(record.id, record.clone());
        }
        self.wake.notify_one();
    }

    /// The publisher's latest network view, if it is younger than [`FRESH`]
    /// (someone listens, so it is kept current).
    pub fn fresh(&self) -> Option<Arc<NetworkNow>> {
        self.network
            .borrow()
            .as_ref()
            .filter(|now| now.computed.elapsed() < FRESH && self.listening())
            .cloned()
    }

    /// Ends every stream (the server is shutting down), so that a graceful
    /// shutdown does not wait for them.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn take(&self) -> Noted {
        self.noted
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// Counts a listener for as long as its stream lives.
struct Listener(Arc<Feed>);

impl Listener {
    fn join(feed: &Arc<Feed>) -> Listener {
        feed.listeners.fetch_add(1, Ordering::Relaxed);
        Listener(Arc::clone(feed))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the publisher unless it runs.
fn ensure_publisher<S: Store + 'static>(app: &Arc<App<S>>) {
    if app.live.publishing.swap(true, Ordering::AcqRel) {
        return;
    }
    let app = Arc::clone(app);
    tokio::spawn(async move {
        publish(&app).await;
        app.live.publishing.store(false, Ordering::Release);
        // A listener that came as this one ended would be left without one.
        if app.live.listening() {
            ensure_publisher(&app);
        }
    });
}

/// Publishes until nobody listens (or the server closes).
async fn publish<S: Store>(app: &App<S>) {
    let feed = &app.live;
    let mut last_network: Option<std::time::Instant> = None;
    let mut closing = feed.closing.subscribe();
    loop {
        if !feed.listening() || *closing.borrow() {
            return;
        }
        let noted = feed.take();
        let changed = !noted.ids.is_empty() || !noted.records.is_empty();
        if changed {
            let batch = match changes(app, noted).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "live: reading changed jobs");
                    Batch::Resync
                }
            };
            let _ = feed.jobs.send(batch);
        }
        if changed || last_network.is_none_or(|at| at.elapsed() >= REFRESH) {
            match network_now(app).await {
                Ok(now) => {
                    feed.network.send_replace(Some(Arc::new(now)));
                }
                Err(e) => tracing::warn!(error = %e, "live: computing the network view"),
            }
            last_network = Some(std::time::Instant::now());
        }
        let began = std::time::Instant::now();
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = tokio::time::sleep(REFRESH) => {}
            _ = closing.changed() => return,
        }
        // Gather what arrives within a batch of the wake-up.
        tokio::time::sleep(BATCH.saturating_sub(began.elapsed())).await;
    }
}

async fn changes<S: Store>(app: &App<S>, noted: Noted) -> Result<Batch, StoreError> {
    if noted.ids.len() + noted.records.len() > MAX_BATCH {
        return Ok(Batch::Resync);
    }
    let mut records: Vec<JobRecord> = noted.records.into_values().collect();
    for id in noted.ids {
        match app.store.job(id).await {
            Ok(record) => records.push(record),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    records.sort_by_key(|r| r.id);
    let changes = records
        .into_iter()
        .filter_map(|record| {
            let tenant_id = record.tenant_id;
            let doc = crate::jobs::job_doc(record).ok()?;
            let json = serde_json::to_string(&doc).ok()?;
            Some(Change {
                tenant_id,
                json: json.into(),
            })
        })
        .collect();
    Ok(Batch::Jobs(Arc::new(changes)))
}

async fn network_now<S: Store>(app: &App<S>) -> Result<NetworkNow, ApiError> {
    let now = app.clock.now();
    let (overview, flows) =
        crate::overview::network(&app.store, &app.topology(), now, app.lease_secs()).await?;
    let overview =
        serde_json::to_string(&overview).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(NetworkNow {
        at: now,
        computed: std::time::Instant::now(),
        overview: overview.into(),
        flows,
    })
}

fn network_events(now: &NetworkNow, principal: &Principal) -> [Event; 2] {
    let flows = now.flows.visible(now.at, |t| principal.may_see(t));
    [
        Event::default().event("overview").data(&*now.overview),
        Event::default()
            .event("flows")
            .data(serde_json::to_string(&flows).unwrap_or_else(|_| "{}".into())),
    ]
}

fn jobs_event(changes: &[Change], principal: &Principal) -> Option<Event> {
    let mut data = String::from("{\"jobs\":[");
    let mut any = false;
    for change in changes.iter().filter(|c| principal.may_see(c.tenant_id)) {
        if any {
            data.push(',');
        }
        data.push_str(&change.json);
        any = true;
    }
    data.push_str("]}");
    any.then(|| Event::default().event("jobs").data(data))
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

/// One stream's state.
struct Stream<S> {
    app: Arc<App<S>>,
    headers: HeaderMap,
    principal: Principal,
    jobs: broadcast::Receiver<Batch>,
    network: watch::Receiver<Option<Arc<NetworkNow>>>,
    closing: watch::Receiver<bool>,
    queue: VecDeque<Event>,
    reauth: tokio::time::Interval,
    _listener: Listener,
}

impl<S: Store + 'static> Stream<S> {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            tokio::select! {
                batch = self.jobs.recv() => match batch {
                    Ok(Batch::Jobs(changes)) => {
                        self.queue.extend(jobs_event(&changes, &self.principal));
                    }
                    Ok(Batch::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.queue.push_back(resync());
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.network.changed() => {
                    changed.ok()?;
                    let now = self.network.borrow_and_update().clone();
                    if let Some(now) = now {
                        self.queue.extend(network_events(&now, &self.principal));
                    }
                }
                _ = self.closing.changed() => return None,
                _ = self.reauth.tick() => {
                    // A revoked token ends its streams.
                    bearer(&self.app, &self.headers).await.ok()?;
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/events", operation_id = "events", tag = "network",
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "A stream of server-sent events; each frame's `event:` line names it and its `data:` line is its JSON body (the `ServerEvent` schema, by `event`):\n\n- `overview`: the network now, as `GET /v1/overview` (`Overview`); first, then whenever jobs change (at most twice a second) and at least every 5 s;\n- `flows`: the flows the caller may see, as `GET /v1/flows` (`Flows`); with each overview;\n- `jobs`: jobs that changed and that the caller may see (`JobsEvent`);\n- `resync`: events were dropped (too many changes, a slow reader): fetch again (`Resync`, `{}`).\n\nA `: keep-alive` comment comes every 15 s. The stream ends when the caller's token is revoked (checked every 30 s) or the server shuts down.")),
    security(("bearer" = [])))]
pub(crate) async fn events<S: Store + 'static>(
    axum::extract::State(app): Shared<S>,
    Caller(principal): Caller,
    headers: HeaderMap,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError>
{
    let listener = Listener::join(&app.live);
    let jobs = app.live.jobs.subscribe();
    let mut network = app.live.network.subscribe();
    let mut queue = VecDeque::new();
    let current = network.borrow_and_update().clone();
    match current {
        Some(now) => queue.extend(network_events(&now, &principal)),
        None => {
            // The first listener: compute the view now rather than wait.
            let now = network_now(&app).await?;
            queue.extend(network_events(&now, &principal));
        }
    }
    ensure_publisher(&app);
    let mut reauth = tokio::time::interval(REAUTH);
    reauth.reset();
    let stream = Stream {
        closing: app.live.closing.subscribe(),
        app,
        headers,
        principal,
        jobs,
        network,
        queue,
        reauth,
        _listener: listener,
    };
    let stream = futures_util::stream::unfold(stream, |mut stream| async move {
        let event = stream.next().await?;
        Some((Ok(event), stream))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
