//! Jobs: what a tenant asks the network to run.

use crate::resource::ResourceClass;
use crate::site::{Jurisdiction, LocationId, SiteId};
use crate::time::{SimDuration, SimTime};
use serde::{Deserialize, Serialize};

/// Identifier of a job, unique within a run or a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `count` units of one resource class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demand {
    /// Which class.
    pub class: ResourceClass,
    /// How many units.
    pub count: u32,
}

/// Input data of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRef {
    /// Size in GiB.
    pub size_gib: f64,
    /// Where the data lives now.
    pub location: LocationId,
}

/// An upper bound on round-trip latency from the serving site to a demand region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyTarget {
    /// Region whose users must be served.
    pub region: LocationId,
    /// Maximum round-trip latency, ms.
    pub max_ms: f64,
}

/// A unit of work: resources for a duration, within a window, under rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Unique id.
    pub id: JobId,
    /// Owning tenant.
    pub tenant: String,
    /// Resources held for the whole run (all must be at one site); for a gang,
    /// on each of its nodes.
    pub demand: Vec<Demand>,
    /// Number of nodes the job spans: a gang (more than 1) starts on all of them
    /// at once, holds them whole, and runs only at a site that declares nodes
    /// each holding `demand`.
    #[serde(default = "one")]
    pub gang: u32,
    /// Run time.
    pub duration: SimDuration,
    /// Earliest start (submission).
    pub release: SimTime,
    /// Latest completion; none means no deadline.
    #[serde(default)]
    pub deadline: Option<SimTime>,
    /// Region the job was submitted from.
    pub origin: LocationId,
    /// Input data to move to the chosen site.
    #[serde(default)]
    pub data: Option<DataRef>,
    /// Latency bound to a region (inference services).
    #[serde(default)]
    pub latency_target: Option<LatencyTarget>,
    /// Jurisdictions the job may run in; empty means anywhere.
    #[serde(default)]
    pub residency: Vec<Jurisdiction>,
    /// Higher runs first when capacity is short (within one class).
    #[serde(default)]
    pub priority: i32,
    /// The job's priority class: a higher class is always considered first, and
    /// a job that cannot otherwise meet its deadline may preempt preemptible jobs
    /// of lower classes (never of its own or a higher one).
    #[serde(default)]
    pub class: PriorityClass,
    /// Whether the start may be shifted later than the earliest feasible time.
    #[serde(default = "yes")]
    pub delayable: bool,
    /// Whether the job may be stopped and restarted elsewhere.
    #[serde(default)]
    pub preemptible: bool,
    /// Pins the job to one site (operator or tenant choice).
    #[serde(default)]
    pub pinned_site: Option<SiteId>,
}

/// A priority class, set by admins per tenant (a tenant's jobs may ask a lower
/// class than the tenant's, never a higher one).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PriorityClass {
    /// Runs when there is room; the first to be preempted.
    Batch,
    /// The default.
    #[default]
    Normal,
    /// Goes first, and may preempt `normal` and `batch` work to meet a deadline.
    Urgent,
}

impl PriorityClass {
    /// Every class, lowest first.
    pub const ALL: [PriorityClass; 3] = [
        PriorityClass::Batch,
        PriorityClass::Normal,
        PriorityClass::Urgent,
    ];

    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            PriorityClass::Batch => "batch",
            PriorityClass::Normal => "normal",
            PriorityClass::Urgent => "urgent",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<PriorityClass> {
        PriorityClass::ALL.into_iter().find(|c| c.name() == text)
    }

    /// The rank the scheduling core compares: higher preempts lower.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl std::str::FromStr for PriorityClass {
    type Err = String;
    fn from_str(text: &str) -> Result<PriorityClass, String> {
        PriorityClass::parse(text)
            .ok_or_else(|| format!("{text:?} is not a class: batch, normal or urgent"))
    }
}

impl std::fmt::Display for PriorityClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl Job {
    /// Units of `class` the job holds.
    pub fn units(&self, class: ResourceClass) -> u32 {
        self.demand
            .iter()
            .filter(|d| d.class == class)
            .map(|d| d.count)
            .sum()
    }
}
