//! The site agent. It dials out to the control plane, registers its site's
//! capacity, then loops: report what its executor did, heartbeat (telemetry and
//! the leases it holds), and lease work whose start has come. The control plane
//! decides where and when; the executor (local processes, Slurm, a simulation)
//! decides how.
//!
//! Safety rests on the control plane's fencing tokens: every job arrives under a
//! lease `(job, token)`; a heartbeat verdict `cancel` or `stale`, or a report
//! refused as `stale_lease`, means the job is no longer this agent's, and the
//! agent stops it. An unreachable control plane is retried with backoff while
//! jobs keep running; an agent the control plane no longer knows registers again,
//! and its old leases then come back `stale`.
//!
//! Architecture invariant: the agent talks to the control plane only through
//! `suanwang-client`, and to its engine only through an [`Executor`].

pub mod kubernetes;
pub mod local;
pub mod probe;
pub mod simulated;
pub mod slurm;
pub mod telemetry;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use suanwang_api::{
    ErrorCode, Heartbeat, HeldLease, HeldVerdict, JobSubmission, LeaseRequest, Leases,
    Registration, Report, ReportState, ResumeLease, Telemetry,
};
use suanwang_client::{Client, ClientError, TlsOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A job handed to this agent.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token.
    pub token: i64,
    /// The owning tenant's id, when known.
    pub tenant: Option<i64>,
    /// The job as submitted (normalised): `command`, `env`, `workdir`,
    /// `demand`, `duration`…
    pub spec: JobSubmission,
}

/// What an executor says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Its engine holds it before starting it, for this reason (in the
    /// engine's words); sent again only when the reason changes.
    Queued {
        /// Job id.
        job: i64,
        /// Why it waits.
        reason: String,
    },
    /// It is running.
    Started(i64),
    /// It ended.
    Finished {
        /// Job id.
        job: i64,
        /// Exit code (0 is success).
        exit_code: i32,
        /// Why it failed, or a note worth keeping.
        message: Option<String>,
    },
}

/// Grace period of a preemption when the control plane names none, seconds.
const DEFAULT_PREEMPT_GRACE_SECS: u64 = 30;

/// Where jobs really run. One trait for every engine.
pub trait Executor: Send + Sync + 'static {
    /// Its name, as registered: `local`, `slurm`, `simulated`.
    fn kind(&self) -> &'static str;
    /// Units offered per resource class.
    fn capacity(&self) -> BTreeMap<String, u64>;
    /// Starts a job; sends [`Event::Started`] and later [`Event::Finished`] on
    /// `events`. An error means it could not start (reported as Failed).
    fn start(
        &self,
        job: &Assignment,
        events: mpsc::UnboundedSender<Event>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops a job it runs (cancelled, or its lease was lost); no event follows.
    fn stop(&self, job: i64) -> impl Future<Output = ()> + Send;
    /// Stops a job preempted for a job of a higher class: the stop signal,
    /// `grace` for the job to wind down, then the kill; no event follows. By
    /// default the same as [`Executor::stop`].
    fn preempt(&self, job: i64, grace: Duration) -> impl Future<Output = ()> + Send {
        let _ = grace;
        self.stop(job)
    }
    /// Leases `(job, token)` of jobs this executor finds alive in its engine
    /// from an earlier agent process (killed, restarted), asked back at
    /// registration. Those the control plane hands back are watched as if
    /// started here; the others are stopped. By default none: an engine whose
    /// jobs do not outlive the agent, or that cannot name their leases.
    fn recover(
        &self,
        events: mpsc::UnboundedSender<Event>,
    ) -> impl Future<Output = Vec<(i64, i64)>> + Send {
        let _ = events;
        async { Vec::new() }
    }
    /// A telemetry sample.
    fn telemetry(&self) -> impl Future<Output = Telemetry> + Send;
    /// The last `max` bytes of the job's output (stdout and stderr), if the
    /// executor keeps it.
    fn log_tail(&self, job: i64, max: usize) -> impl Future<Output = Option<String>> + Send;
}

/// `measured` with the classes `overrides` names replaced by its figures: an
/// operator's `--capacity cpu=8` sets the cores offered and leaves the other
/// classes as measured.
pub fn override_classes(
    mut measured: BTreeMap<String, u64>,
    overrides: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    for (class, units) in overrides {
        measured.insert(class.clone(), *units);
    }
    measured
}

/// How to reach the control plane and which site to serve.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Control plane URL.
    pub server: String,
    /// Operator token.
    pub token: String,
    /// Site id.
    pub site: String,
    /// Most jobs leased per call.
    pub max_lease: u32,
    /// Host name, for the operator's eyes.
    pub hostname: Option<String>,
    /// Timeout of each request.
    pub request_timeout: Duration,
    /// A file holding the token: read again when it changes, and when the
    /// control plane refuses the token, so that a credential is rotated without
    /// stopping the agent or its jobs (write the new token, then revoke the old).
    pub token_file: Option<std::path::PathBuf>,
    /// A private CA to trust and a client certificate to present (mutual TLS),
    /// for an `https://` control plane.
    pub tls: TlsOptions,
    /// Results of the verification probe (see [`probe`]), sent with every
    /// registration; empty when none ran.
    pub probes: Vec<suanwang_api::Probe>,
}

impl AgentConfig {
    /// A configuration with defaults: 64 jobs per lease call, 10 s timeouts.
    pub fn new(server: &str, token: &str, site: &str) -> AgentConfig {
        AgentConfig {
            server: server.to_string(),
            token: token.to_string(),
            site: site.to_string(),
            max_lease: 64,
            hostname: None,
            request_timeout: Duration::from_secs(10),
            token_file: None,
            tls: TlsOptions::default(),
            probes: Vec::new(),
        }
    }
}

/// Why the agent gave up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The control plane refused the agent for good (bad or revoked token, a
    /// token for another site, unknown site…): retrying cannot help.
    #[error("the control plane refused this agent: {0}")]
    Refused(ClientError),
    /// The agent's own TLS set-up (CA or client certificate files) could not
    /// be loaded.
    #[error("{0}")]
    Setup(ClientError),
}

/// Counts of what the agent did, for tests and progress lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AgentStats {
    /// Registrations (more than one after the control plane forgot the agent).
    pub registrations: u64,
    /// Jobs leased.
    pub leased: u64,
    /// Final reports accepted.
    pub finished: u64,
    /// Jobs stopped because their lease was cancelled or stale.
    pub stopped: u64,
}

/// Exponential backoff with a cap.
struct Backoff {
    next: Duration,
    first: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            next: first,
            first,
            cap,
        }
    }
    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.cap);
        now
    }
    fn reset(&mut self) {
        self.next = self.first;
    }
}

struct Session {
    id: String,
    every: Duration,
}

/// The agent's token as its file holds it: [`Credential::reload`] puts a new
/// one into the client.
struct Credential {
    file: Option<std::path::PathBuf>,
    /// The file's modification time and length when last read.
    seen: Option<(std::time::SystemTime, u64)>,
}

impl Credential {
    /// Reads the token file again if it changed since it was last read (or
    /// `force`), and gives the client its token if that differs from the one in
    /// use. Whether the token changed.
    fn reload(&mut self, client: &Client, force: bool) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let stamp = std::fs::metadata(file)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if !force && stamp == self.seen {
            return false;
        }
        self.seen = stamp;
        let token = match std::fs::read_to_string(file) {
            Ok(text) => text.trim().to_string(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the token file");
                return false;
            }
        };
        if token.is_empty() || client.token().as_deref() == Some(token.as_str()) {
            return false;
        }
        client.set_token(token);
        tracing::info!(file = %file.display(), "token read again from its file");
        true
    }
}

/// Whether the control plane refused the token itself (401).
fn unauthorized(e: &ClientError) -> bool {
    e.status() == Some(401)
}

/// Whether an error is the control plane saying "no, ever" rather than "not now".
fn refused_for_good(e: &ClientError) -> bool {
    // A server this agent does not trust (a wrong CA) will not become trusted
    // by waiting: say so and stop, rather than retry in silence.
    matches!(e, ClientError::Tls { .. })
        || matches!(e, ClientError::Api { status, .. } if matches!(status, 400 | 401 | 403 | 422))
}

/// Runs the agent until `stop` resolves. Returns its counts, or why it gave up.
pub async fn run<E: Executor>(
    config: AgentConfig,
    executor: Arc<E>,
    stop: impl Future<Output = ()>,
) -> Result<AgentStats, AgentError> {
    let client = Client::new(&config.server, Some(config.token.clone()))
        .with_timeout(config.request_timeout)
        .with_tls(&config.tls)
        .map_err(AgentError::Setup)?;
    let mut credential = Credential {
        file: config.token_file.clone(),
        seen: None,
    };
    credential.reload(&client, true);
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut stats = AgentStats::default();
    // Leases held: job → token. A job stays here until its final report lands.
    let mut held: BTreeMap<i64, i64> = BTreeMap::new();
    // Reports not yet delivered, oldest first.
    let mut outbox: VecDeque<Report> = VecDeque::new();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut session: Option<Session> = None;
    let mut next_beat = Instant::now();
    // The lease call in flight (a long poll), if any.
    let mut pending_lease: Option<tokio::task::JoinHandle<Result<Leases, ClientError>>> = None;
    // What output tail was last sent per job.
    let mut sent_tails: BTreeMap<i64, (usize, u64)> = BTreeMap::new();
    tokio::pin!(stop);
    loop {
        let Some(current) = &session else {
            // A lease asked for under a forgotten id would come back fenced.
            if let Some(task) = pending_lease.take() {
                task.abort();
            }
            let recovered = executor.recover(events_tx.clone()).await;
            let registration = Registration {
                site: config.site.clone(),
                executor: executor.kind().to_string(),
                capacity: executor.capacity(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
                hostname: config.hostname.clone(),
                probes: config.probes.clone(),
                resume: recovered
                    .iter()
                    .map(|&(job, token)| ResumeLease { job, token })
                    .collect(),
            };
            match client.register_agent(&registration).await {
                Ok(answer) => {
                    for &(job, token) in &recovered {
                        if answer.resumed.contains(&job) {
                            tracing::info!(job, token, "lease resumed: its work goes on");
                            held.insert(job, token);
                        } else {
                            tracing::warn!(
                                job,
                                token,
                                "lease found in the engine is no longer ours: stopping the job"
                            );
                            held.remove(&job);
                            outbox.retain(|r| r.job != job);
                            executor.stop(job).await;
                            stats.stopped += 1;
                        }
                    }
                    let id = answer.agent_id;
                    let every = Duration::from_millis(answer.heartbeat_interval_ms.max(50));
                    tracing::info!(agent = %id, site = %config.site, "registered");
                    stats.registrations += 1;
                    session = Some(Session { id, every });
                    backoff.reset();
                    next_beat = Instant::now();
                }
                Err(e) if unauthorized(&e) && credential.reload(&client, true) => {}
                Err(e) if refused_for_good(&e) => return Err(AgentError::Refused(e)),
                Err(e) => {
                    let wait = e.retry_after().unwrap_or_else(|| backoff.step());
                    tracing::warn!(error = %e, retry_in = ?wait, "cannot register");
                    tokio::select! {
                        _ = &mut stop => return Ok(stats),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            continue;
        };
        let id = current.id.clone();
        let every = current.every;
        let mut reachable = true;
        credential.reload(&client, false);

        // 1. Deliver reports, oldest first.
        while let Some(report) = outbox.front() {
            let job = report.job;
            let last = matches!(report.state, ReportState::Succeeded | ReportState::Failed);
            match client.report(&id, report).await {
                Ok(_) => {
                    outbox.pop_front();
                    if last {
                        held.remove(&job);
                        stats.finished += 1;
                    }
                }
                Err(e) if e.is(ErrorCode::StaleLease) => {
                    tracing::warn!(job, error = %e, "lease lost: stopping the job");
                    outbox.pop_front();
                    outbox.retain(|r| r.job != job);
                    if held.remove(&job).is_some() {
                        executor.stop(job).await;
                        stats.stopped += 1;
                    }
                }
                Err(e) if e.is(ErrorCode::NotFound) => {
                    // The control plane forgot this agent (or the job).
                    tracing::warn!(error = %e, "not known to the control plane");
                    if report_names_agent(&e) {
                        session = None;
                        break;
                    }
                    outbox.pop_front();
                }
                Err(e) if unauthorized(&e) => {
                    // Kept: a rotated token delivers it; a revoked one ends the agent.
                    if credential.reload(&client, true) {
                        break;
                    }
                    return Err(AgentError::Refused(e));
                }
                Err(ClientError::Api {
                    status, message, ..
                }) if status < 500 && status != 429 => {
                    tracing::error!(job, status, %message, "report refused; dropping it");
                    outbox.pop_front();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot report; will retry");
                    reachable = false;
                    break;
                }
            }
        }
        if session.is_none() {
            continue;
        }

        // 2. Heartbeat and lease, every interval.
        if reachable && Instant::now() >= next_beat {
            let mut leases = Vec::with_capacity(held.len());
            let mut budget = HEARTBEAT_LOG_BUDGET;
            for (&job, &token) in &held {
                let mut lease = HeldLease {
                    job,
                    token,
                    log_tail: None,
                };
                // The output's tail, when it changed since it was last sent.
                if budget > 0
                    && let Some(tail) = executor.log_tail(job, HEARTBEAT_LOG_TAIL.min(budget)).await
                    && sent_tails.get(&job) != Some(&fingerprint(&tail))
                {
                    budget = budget.saturating_sub(tail.len());
                    sent_tails.insert(job, fingerprint(&tail));
                    lease.log_tail = Some(tail);
                }
                leases.push(lease);
            }
            sent_tails.retain(|job, _| held.contains_key(job));
            let beat = Heartbeat {
                telemetry: Some(executor.telemetry().await),
                held: leases,
            };
            match client.heartbeat(&id, &beat).await {
                Ok(answer) => {
                    backoff.reset();
                    for verdict in answer.held {
                        let job = verdict.job;
                        match verdict.verdict {
                            HeldVerdict::Renewed => {}
                            HeldVerdict::Preempt => {
                                let grace = Duration::from_secs(
                                    verdict.grace_secs.unwrap_or(DEFAULT_PREEMPT_GRACE_SECS),
                                );
                                tracing::info!(
                                    job,
                                    grace_secs = grace.as_secs(),
                                    "preempted for a job of a higher class: stopping it"
                                );
                                outbox.retain(|r| r.job != job);
                                if held.remove(&job).is_some() {
                                    executor.preempt(job, grace).await;
                                    stats.stopped += 1;
                                }
                            }
                            other => {
                                tracing::info!(job, verdict = ?other, "stopping the job");
                                outbox.retain(|r| r.job != job);
                                if held.remove(&job).is_some() {
                                    executor.stop(job).await;
                                    stats.stopped += 1;
                                }
                            }
                        }
                    }
                    next_beat = Instant::now() + every;
                }
                Err(e) if e.is(ErrorCode::NotFound) => {
                    tracing::warn!("the control plane does not know this agent: registering again");
                    session = None;
                    continue;
                }
                Err(e) if unauthorized(&e) => {
                    if !credential.reload(&client, true) {
                        return Err(AgentError::Refused(e));
                    }
                }
                Err(e) => {
                    let wait = e.retry_after().unwrap_or_else(|| backoff.step());
                    tracing::warn!(error = %e, retry_in = ?wait, "heartbeat failed");
                    next_beat = Instant::now() + wait;
                }
            }
        } else if !reachable {
            next_beat = next_beat.max(Instant::now() + backoff.step());
        }

        // 3. Ask for work: a long poll that answers when the scheduler places
        // something here, or empty by the next beat.
        if reachable && session.is_some() && pending_lease.is_none() {
            let wait = next_beat.saturating_duration_since(Instant::now()).min(
                config
                    .request_timeout
                    .saturating_sub(Duration::from_secs(1)),
            );
            let (client, id, max) = (client.clone(), id.clone(), config.max_lease);
            let request = LeaseRequest {
                max,
                wait_ms: wait.as_millis() as u64,
            };
            pending_lease = Some(tokio::spawn(
                async move { client.lease(&id, &request).await },
            ));
        }

        // 4. Wait for work, the next beat, an executor event, or the end.
        let first = tokio::select! {
            _ = &mut stop => {
                if let Some(task) = pending_lease.take() {
                    task.abort();
                }
                return Ok(stats);
            }
            _ = tokio::time::sleep_until(next_beat) => None,
            answer = async { pending_lease.as_mut().expect("guarded").await }, if pending_lease.is_some() => {
                pending_lease = None;
                match answer {
                    Ok(Ok(answer)) => {
                        for lease in answer.leases {
                            stats.leased += 1;
                            held.insert(lease.job, lease.token);
                            let started = match lease.submission() {
                                Ok(spec) => {
                                    let assignment = Assignment {
                                        job: lease.job,
                                        tenant: Some(lease.tenant_id),
                                        token: lease.token,
                                        spec,
                                    };
                                    executor.start(&assignment, events_tx.clone()).await
                                }
                                Err(e) => Err(format!("its specification does not read: {e}")),
                            };
                            if let Err(why) = started {
                                outbox.push_back(Report {
                                    job: lease.job,
                                    token: lease.token,
                                    state: ReportState::Failed,
                                    exit_code: Some(-1),
                                    message: Some(format!("could not start: {why}")),
                                    log_tail: None,
                                });
                            }
                        }
                    }
                    Ok(Err(e)) if e.is(ErrorCode::NotFound) => session = None,
                    Ok(Err(e)) if unauthorized(&e) && !credential.reload(&client, true) => {
                        return Err(AgentError::Refused(e));
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot lease");
                        // Not at once again: wait for the next beat.
                        tokio::select! {
                            _ = &mut stop => return Ok(stats),
                            _ = tokio::time::sleep_until(next_beat) => {}
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "the lease task failed"),
                }
                None
            }
            event = events.recv() => event,
        };
        for event in first
            .into_iter()
            .chain(std::iter::from_fn(|| events.try_recv().ok()))
        {
            let (job, state, exit_code, message) = match event {
                Event::Queued { job, reason } => (job, ReportState::Queued, None, Some(reason)),
                Event::Started(job) => (job, ReportState::Running, None, None),
                Event::Finished {
                    job,
                    exit_code,
                    message,
                } => {
                    let state = if exit_code == 0 {
                        ReportState::Succeeded
                    } else {
                        ReportState::Failed
                    };
                    (job, state, Some(exit_code), message)
                }
            };
            let Some(&token) = held.get(&job) else {
                continue;
            };
            let log_tail = if matches!(state, ReportState::Running | ReportState::Queued) {
                None
            } else {
                executor.log_tail(job, FINAL_LOG_TAIL).await
            };
            outbox.push_back(Report {
                job,
                token,
                state,
                exit_code,
                message,
                log_tail,
            });
        }
    }
}

/// Bytes of a running job's output sent with a heartbeat.
pub const HEARTBEAT_LOG_TAIL: usize = 4 * 1024;
/// Bytes of output tails in one heartbeat, all jobs together.
pub const HEARTBEAT_LOG_BUDGET: usize = 1024 * 1024;
/// Bytes of a finished job's output sent with its final report.
pub const FINAL_LOG_TAIL: usize = 64 * 1024;

/// A cheap fingerprint of a tail, to send it only when it changed.
fn fingerprint(text: &str) -> (usize, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    (text.len(), h.finish())
}

/// Whether a 404 is about the agent itself (rather than a job).
fn report_names_agent(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { message, .. } if message.starts_with("agent "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let steps: Vec<u128> = (0..4).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.step().as_millis(), 100);
    }

    #[test]
    fn only_client_mistakes_are_final() {
        let api = |status| ClientError::Api {
            status,
            code: "x".into(),
            message: "m".into(),
            field: None,
            retry_after: None,
        };
        assert!(refused_for_good(&api(401)));
        assert!(refused_for_good(&api(422)));
        assert!(!refused_for_good(&api(503)));
        assert!(!refused_for_good(&api(429)), "a rate limit passes");
        assert!(refused_for_good(&ClientError::Tls {
            url: "u".into(),
            reason: "invalid peer certificate: UnknownIssuer".into()
        }));
        assert!(!refused_for_good(&ClientError::Unreachable {
            url: "u".into(),
            reason: "r".into()
        }));
    }
}
