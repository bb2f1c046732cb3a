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
    IssuedToken, NewTenant, NewToken, ProviderDoc, ProviderSites, QuotaDoc, QuotaSet, TenantDoc,
    TokenDoc,
};
pub use agents::{
    AgentDoc, AgentInfo, Heartbeat, HeartbeatAnswer, HeldAnswer, HeldLease, Lease, LeaseRequest,
    Leases, Probe, ProbeStatus, Registered, Registration, Report, ReportState, Telemetry,
};
pub use audit::{AuditActor, AuditEntry, AuditPage, AuditQuery, AuditSubject};
pub use error::{ErrorBody, ErrorCode};
pub use events::{JobsEvent, Resync, ServerEvent};
pub use jobs::{
    DataIn, Decision, DecisionDoc, DemandIn, DurationValue, JobDoc, JobExplanation, JobPage,
    JobQuery, JobSubmission, LatencyIn, Logs, Order, PendingReason, WaitCode,
};
pub use network::{
    Comparison, Flow, Flows, Overview, SavingsDoc, SavingsQuery, SiteOverview, Totals,
};
pub use sites::{
    CapacityDoc, CapacityStatus, DrainDoc, DrainRequest, ProbeDoc, SeriesDoc, SeriesPoint,
    SeriesQuery, SiteDoc, SiteJob, SiteJobPage, SiteJobQuery, TelemetryDoc, TelemetryQuery,
    TelemetrySample,
};
pub use suanwang_model::{HeldVerdict, JobState, Role};
