//! The pure scheduling core of suanwang.
//!
//! `plan(snapshot, calendar, pending, policy) -> decisions`: given sites, forecasts
//! of price and carbon, the network, a capacity calendar and pending jobs, choose a
//! site and a start time for each job and say why. The [`lp`] module computes a
//! lower bound on the objective any schedule can reach.
//!
//! Architecture invariant: no IO, no clock, no async, no global state, no
//! randomness. The crate depends on no tokio, sqlx, reqwest or axum; the live
//! control plane, the simulator and the benchmarks all call this same code.

pub mod calendar;
pub mod fairshare;
pub mod lp;
pub mod plan;
pub mod policy;
pub mod preempt;
pub mod snapshot;

pub use calendar::{Calendar, NODE_DIM, Need, Nodes, Quota, QuotaDims, ReserveError, SiteCapacity};
pub use fairshare::{FairShare, ShareNode, TenantShare};
pub use lp::{LpBound, LpBoundReport};
pub use plan::{
    Candidate, Decision, Outcome, Placement, Rejection, SiteReason, SiteWait, Wait, WhyPending,
    admits, plan, plan_fair, plan_preempting, why_pending,
};
pub use policy::{Policy, PolicyKind, Weights};
pub use preempt::{Held, Preempt, Victim};
pub use snapshot::{Forecast, NetView, Request, SiteView, Snapshot, Terms};
