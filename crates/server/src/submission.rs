//! What a tenant submits, and its validation. Syntax errors (not JSON, unknown
//! field, wrong type) are 400 with the JSON pointer of the field; well-formed but
//! invalid values are 422, also naming the field.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use suanwang_model::{ResourceClass, SimDuration};
use suanwang_topology::Topology;

/// Most units of one class a job may ask for.
pub const MAX_UNITS: u32 = 100_000;
/// Longest run time accepted.
pub const MAX_DURATION: SimDuration = SimDuration::hours(24 * 90);

/// A duration as seconds or as text (`90s`, `15m`, `2h`, `7d`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Seconds(i64),
    /// Text.
    Text(String),
}

/// `count` units of a class.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandIn {
    /// Class name (`a800`, `cpu`, …).
    pub class: String,
    /// Units.
    pub count: i64,
}

/// Input data.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataIn {
    /// Size, GiB.
    pub size_gib: f64,
    /// Site or region where it lives.
    pub location: String,
}

/// Latency bound to a region.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyIn {
    /// Region.
    pub region: String,
    /// Round-trip bound, ms.
    pub max_ms: f64,
}

/// A job submission (`POST /v1/jobs`). The stored spec is this, normalised.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSubmission {
    /// Resources held for the whole run.
    pub demand: Vec<DemandIn>,
    /// Nodes the job spans.
    #[serde(default = "one")]
    pub gang: u32,
    /// Run time.
    pub duration: DurationValue,
    /// Deadline, relative to submission.
    #[serde(default)]
    pub deadline: Option<DurationValue>,
    /// Submitting region.
    #[serde(default)]
    pub origin: Option<String>,
    /// Input data.
    #[serde(default)]
    pub data: Option<DataIn>,
    /// Latency bound.
    #[serde(default)]
    pub latency_target: Option<LatencyIn>,
    /// Allowed jurisdictions.
    #[serde(default)]
    pub residency: Vec<String>,
    /// Priority.
    #[serde(default)]
    pub priority: i32,
    /// May the start be delayed.
    #[serde(default = "yes")]
    pub delayable: bool,
    /// Pin to a site.
    #[serde(default)]
    pub site: Option<String>,
    /// Command to run.
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables for the command.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory at the site (the agent's default when absent).
    #[serde(default)]
    pub workdir: Option<String>,
    /// May it be started again from the beginning when its site is lost
    /// mid-run (default true)? If not, a lost run stays Lost.
    #[serde(default = "yes")]
    pub restartable: bool,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        message: message.into(),
        field: field.to_string(),
    }
}

fn duration(value: &DurationValue, field: &str) -> Result<SimDuration, ApiError> {
    let d = match value {
        DurationValue::Seconds(s) => SimDuration(*s),
        DurationValue::Text(t) => SimDuration::parse(t).map_err(|e| invalid(field, e))?,
    };
    if d.0 <= 0 {
        return Err(invalid(field, "must be positive"));
    }
    if d > MAX_DURATION {
        return Err(invalid(field, format!("must be at most {MAX_DURATION}")));
    }
    Ok(d)
}

/// Parses and validates a body; returns the submission with durations normalised
/// to seconds and class names to their canonical spelling.
/// Decodes a JSON body; a mistake is a 400 naming the field by JSON pointer
/// (RFC 6901), "/" for the body itself.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut pointer = String::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"))
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    pointer.push_str(&format!("/{variant}"))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        ApiError::BadRequest {
            message: e.inner().to_string(),
            field: Some(if pointer.is_empty() {
                "/".into()
            } else {
                pointer
            }),
        }
    })
}

impl JobSubmission {
    /// Decodes and checks a submission body against `topology`, as `POST
    /// /v1/jobs` does.
    pub fn check(body: &[u8], topology: &Topology) -> Result<JobSubmission, ApiError> {
        parse(body, topology)
    }
}

/// Decodes and checks a submission against the topology.
pub fn parse(body: &[u8], topology: &Topology) -> Result<JobSubmission, ApiError> {
    let mut submission: JobSubmission = decode(body)?;
    for key in submission.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(invalid(
                &format!("/env/{}", key.replace('~', "~0").replace('/', "~1")),
                "an environment variable name must be non-empty, without '=' or NUL",
            ));
        }
    }
    if submission.demand.is_empty() {
        return Err(invalid("/demand", "a job needs at least one resource"));
    }
    for (i, d) in submission.demand.iter_mut().enumerate() {
        let class = ResourceClass::parse(&d.class).ok_or_else(|| {
            invalid(
                &format!("/demand/{i}/class"),
                format!(
                    "unknown resource class {:?} (known: {})",
                    d.class,
                    ResourceClass::known_names()
                ),
            )
        })?;
        d.class = class.name().to_string();
        if d.count < 1 || d.count > MAX_UNITS as i64 {
            return Err(invalid(
                &format!("/demand/{i}/count"),
                format!("{} is not within 1..={MAX_UNITS}", d.count),
            ));
        }
    }
    if submission.gang == 0 || submission.gang > 10_000 {
        return Err(invalid("/gang", "must be within 1..=10000"));
    }
    let run = duration(&submission.duration, "/duration")?;
    submission.duration = DurationValue::Seconds(run.0);
    if let Some(deadline) = &submission.deadline {
        let deadline = duration(deadline, "/deadline")?;
        if deadline < run {
            return Err(invalid(
                "/deadline",
                format!("the deadline ({deadline}) comes before the run can end ({run})"),
            ));
        }
        submission.deadline = Some(DurationValue::Seconds(deadline.0));
    }
    let known =
        |id: &str| topology.site(id).is_some() || topology.regions.iter().any(|r| r.id.0 == id);
    if let Some(origin) = &submission.origin
        && !known(origin)
    {
        return Err(invalid(
            "/origin",
            format!("no region or site {origin:?} in topology {}", topology.name),
        ));
    }
    if let Some(data) = &submission.data {
        if !(data.size_gib.is_finite() && (0.0..=1e7).contains(&data.size_gib)) {
            return Err(invalid(
                "/data/size_gib",
                "must be within 0..=10,000,000 GiB",
            ));
        }
        if !known(&data.location) {
            return Err(invalid(
                "/data/location",
                format!("no region or site {:?}", data.location),
            ));
        }
    }
    if let Some(target) = &submission.latency_target {
        if !known(&target.region) {
            return Err(invalid(
                "/latency_target/region",
                format!("no region or site {:?}", target.region),
            ));
        }
        if !(target.max_ms.is_finite() && target.max_ms > 0.0) {
            return Err(invalid("/latency_target/max_ms", "must be > 0"));
        }
    }
    if let Some(site) = &submission.site
        && topology.site(site).is_none()
    {
        return Err(invalid(
            "/site",
            format!("no site {site:?} in topology {}", topology.name),
        ));
    }
    for (i, j) in submission.residency.iter().enumerate() {
        if !topology.sites.iter().any(|s| &s.jurisdiction.0 == j) {
            return Err(invalid(
                &format!("/residency/{i}"),
                format!("no site is in jurisdiction {j:?}"),
            ));
        }
    }
    Ok(submission)
}
