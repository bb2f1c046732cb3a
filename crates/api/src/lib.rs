//! The wire types of suanwang's HTTP API: every request, response, server-sent
//! event and error body of `/v1`, defined once, with serde and their OpenAPI
//! schema (`utoipa::ToSchema`). The server answers with them, the typed client
//! (`suanwang-client`), the agent and the CLI read and send them, and the web
//! console's TypeScript types are generated from the OpenAPI document they make.
//!
//! Architecture invariant: no IO, no HTTP framework, no business logic — data and
//! its documentation only. A field renamed here is a breaking change of the API;
//! a new optional field is not.

pub mod accelerators;
pub mod admin;
pub mod agents;
pub mod audit;
pub mod error;
pub mod events;
pub mod jobs;
pub mod network;
pub mod sites;

pub use accelerators::{AcceleratorDoc, AcceleratorSpec};
pub use admin::{
    ClassDoc, ClassSet, IssuedToken, NewTenant, NewToken, ProviderDoc, ProviderSites, QuotaDoc,
    QuotaSet, ShareDoc, ShareSet, SpillDoc, SpillSet, TenantDoc, TokenDoc,
};
pub use agents::{
    AgentDoc, AgentInfo, Heartbeat, HeartbeatAnswer, HeldAnswer, HeldLease, Lease, LeaseRequest,
    Leases, Probe, ProbeStatus, Registered, Registration, Report, ReportState, ResumeLease,
    Telemetry,
};
pub use audit::{AuditActor, AuditEntry, AuditPage, AuditQuery, AuditSubject};
pub use error::{ErrorBody, ErrorCode};
pub use events::{JobsEvent, Resync, ServerEvent};
pub use jobs::{
    DataIn, Decision, DecisionDoc, DemandIn, DurationValue, JobDoc, JobExplanation, JobPage,
    JobQuery, JobSubmission, LatencyIn, Logs, Order, PassedOverDoc, PendingReason, PreemptionDoc,
    SiteWaitCode, SiteWaitDoc, WaitCode, WaitDoc,
};
pub use network::{
    Comparison, Flow, Flows, Overview, SavingsDoc, SavingsQuery, SiteOverview, Totals,
};
pub use sites::{
    CapacityDoc, CapacityStatus, DrainDoc, DrainRequest, ProbeDoc, SeriesDoc, SeriesPoint,
    SeriesQuery, SiteDoc, SiteJob, SiteJobPage, SiteJobQuery, TelemetryDoc, TelemetryQuery,
    TelemetrySample,
};
pub use suanwang_model::{HeldVerdict, JobState, PriorityClass, Role};

/// Query of the lists paged by an id cursor (`GET /v1/agents`, `GET /v1/tokens`):
/// items in id order. When more follow, the answer's `Link` header names the
/// next page (`rel="next"`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only ids after this one: the cursor of the next page.
    #[param(max_length = 256)] // crates/server/src/paging.rs MAX_CURSOR
    pub after: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}
