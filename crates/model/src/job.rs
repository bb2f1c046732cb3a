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
    /// Ordered spill-over: the places the job may go, most wanted first; it
    /// goes to the first that can start it by its deadline. Empty: anywhere
    /// its rules allow, all weighed at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spill: Vec<SpillChoice>,
}

/// One entry of an ordered spill-over list: a set of sites, written
/// `site:ID`, `provider:NAME`, `jurisdiction:NAME` or `anywhere`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpillChoice {
    /// One site.
    Site(SiteId),
    /// Every site a provider owns.
    Provider(String),
    /// Every site in a jurisdiction (e.g. `cn-mainland`).
    Jurisdiction(Jurisdiction),
    /// Every site.
    Anywhere,
}

impl std::fmt::Display for SpillChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpillChoice::Site(site) => write!(f, "site:{}", site.0),
            SpillChoice::Provider(name) => write!(f, "provider:{name}"),
            SpillChoice::Jurisdiction(j) => write!(f, "jurisdiction:{}", j.0),
            SpillChoice::Anywhere => write!(f, "anywhere"),
        }
    }
}

impl std::str::FromStr for SpillChoice {
    type Err = String;
    /// Reads `site:ID`, `provider:NAME`, `jurisdiction:NAME` or `anywhere`;
    /// the error says which forms are accepted.
    fn from_str(text: &str) -> Result<SpillChoice, String> {
        let text = text.trim();
        if text == "anywhere" {
            return Ok(SpillChoice::Anywhere);
        }
        let bad = || {
            format!(
                "spill-over choice {text:?}: expected site:ID, provider:NAME, jurisdiction:NAME or anywhere"
            )
        };
        let (kind, name) = text.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad());
        }
        match kind.trim() {
            "site" => Ok(SpillChoice::Site(SiteId(name.to_string()))),
            "provider" => Ok(SpillChoice::Provider(name.to_string())),
            "jurisdiction" => Ok(SpillChoice::Jurisdiction(Jurisdiction(name.to_string()))),
            _ => Err(bad()),
        }
    }
}

/// The spill-over list a tenant's jobs that name none of their own use:
/// the sites of `own_provider` (the provider that names the tenant as its
/// own) first, then `default` without that provider again, or `anywhere` when
/// `default` is empty. Empty when neither is set: no list.
pub fn tenant_spill(default: &[SpillChoice], own_provider: Option<&str>) -> Vec<SpillChoice> {
    let Some(provider) = own_provider else {
        return default.to_vec();
    };
    let first = SpillChoice::Provider(provider.to_string());
    let mut list = vec![first.clone()];
    list.extend(default.iter().filter(|c| **c != first).cloned());
    if default.is_empty() {
        list.push(SpillChoice::Anywhere);
    }
    list
}

impl Serialize for SpillChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpillChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
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
    /// Parses a comma-separated spill-over list (`site:hami,provider:acme,anywhere`).
    pub fn parse_spill(text: &str) -> Result<Vec<SpillChoice>, String> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect()
    }

    /// Units of `class` the job holds.
    pub fn units(&self, class: ResourceClass) -> u32 {
        self.demand
            .iter()
            .filter(|d| d.class == class)
            .map(|d| d.count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_own_tenant_tries_its_sites_first() {
        let parse = |text: &str| Job::parse_spill(text).unwrap();
        assert_eq!(tenant_spill(&[], None), vec![]);
        assert_eq!(tenant_spill(&parse("site:a"), None), parse("site:a"));
        assert_eq!(
            tenant_spill(&[], Some("acme")),
            parse("provider:acme,anywhere")
        );
        assert_eq!(
            tenant_spill(&parse("site:a,provider:acme,jurisdiction:cn"), Some("acme")),
            parse("provider:acme,site:a,jurisdiction:cn")
        );
    }

    #[test]
    fn spill_choices_read_and_write_the_same_text() {
        let list =
            Job::parse_spill("site:cq-1, provider:acme,jurisdiction:cn-mainland,anywhere").unwrap();
        assert_eq!(
            list,
            vec![
                SpillChoice::Site(SiteId("cq-1".into())),
                SpillChoice::Provider("acme".into()),
                SpillChoice::Jurisdiction(Jurisdiction("cn-mainland".into())),
                SpillChoice::Anywhere,
            ]
        );
        let text: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "site:cq-1",
                "provider:acme",
                "jurisdiction:cn-mainland",
                "anywhere"
            ]
        );
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<SpillChoice>>(&json).unwrap(),
            list
        );
        for bad in ["hami", "site:", "region:x", "anywhere:x"] {
            let err = bad.parse::<SpillChoice>().unwrap_err();
            assert!(err.contains("expected site:ID"), "{bad}: {err}");
        }
    }
}
