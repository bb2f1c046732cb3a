//! The checks of a job submission against the topology in force. Syntax errors
//! (not JSON, unknown field, wrong type) are refused before, by the body
//! extractor, as 400 with the JSON pointer of the field; well-formed but invalid
//! values are 422 from here, also naming the field.

use crate::error::ApiError;
use suanwang_api::jobs::{MAX_DATA_GIB, MAX_GANG, MAX_UNITS};
use suanwang_api::{DurationValue, JobSubmission};
use suanwang_model::{ResourceClass, SimDuration, SpillChoice};
use suanwang_topology::Topology;

/// Longest run time accepted.
pub const MAX_DURATION: SimDuration = SimDuration::hours(24 * 90);

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

/// Checks a submission against `topology`, as `POST /v1/jobs` does; returns it
/// normalised (durations in seconds, class names in their canonical spelling).
pub fn check_submission(
    mut submission: JobSubmission,
    topology: &Topology,
) -> Result<JobSubmission, ApiError> {
    for key in submission.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(invalid(
                &format!("/env/{}", key.replace('~', "~0").replace('/', "~1")),
                "an environment variable name must be non-empty, without '=' or NUL",
            ));
        }
    }
    if submission.preemptible && !submission.restartable {
        return Err(invalid(
            "/preemptible",
            "a preemptible job must be restartable: once stopped it runs again from the start",
        ));
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
    if submission.gang == 0 || submission.gang > MAX_GANG {
        return Err(invalid("/gang", format!("must be within 1..={MAX_GANG}")));
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
        if !(data.size_gib.is_finite() && (0.0..=MAX_DATA_GIB).contains(&data.size_gib)) {
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
    if !submission.spill.is_empty() && submission.site.is_some() {
        return Err(invalid(
            "/spill",
            "a job pinned to a site (`site`) has no spill-over list",
        ));
    }
    check_spill(&mut submission.spill, "/spill", topology)?;
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

/// Most choices in one spill-over list.
pub const MAX_SPILL: usize = 16;

/// Checks a spill-over list (a job's or a tenant's default, at JSON pointer
/// `field`) against `topology` and writes each choice in its one spelling:
/// each must read as a choice, a site must be in the topology, a
/// jurisdiction must hold a site, no choice may come twice. A provider's
/// choices are checked by [`check_spill_providers`].
pub fn check_spill(list: &mut [String], field: &str, topology: &Topology) -> Result<(), ApiError> {
    if list.len() > MAX_SPILL {
        return Err(invalid(field, format!("at most {MAX_SPILL} choices")));
    }
    let mut seen = Vec::with_capacity(list.len());
    for (i, text) in list.iter_mut().enumerate() {
        let at = format!("{field}/{i}");
        let choice: SpillChoice = text.parse().map_err(|e: String| invalid(&at, e))?;
        match &choice {
            SpillChoice::Site(site) if topology.site(&site.0).is_none() => {
                return Err(invalid(
                    &at,
                    format!("no site {:?} in topology {}", site.0, topology.name),
                ));
            }
            SpillChoice::Jurisdiction(j)
                if !topology.sites.iter().any(|s| s.jurisdiction == *j) =>
            {
                return Err(invalid(
                    &at,
                    format!("no site is in jurisdiction {:?}", j.0),
                ));
            }
            _ => {}
        }
        if seen.contains(&choice) {
            return Err(invalid(&at, format!("{choice} comes twice")));
        }
        *text = choice.to_string();
        seen.push(choice);
    }
    Ok(())
}

/// Checks the `provider:` choices of a spill-over list (at `field`): each
/// must name a provider that owns a site.
pub fn check_spill_providers(
    list: &[String],
    field: &str,
    providers: &[suanwang_store::Provider],
) -> Result<(), ApiError> {
    for (i, text) in list.iter().enumerate() {
        if let Ok(SpillChoice::Provider(name)) = text.parse() {
            match providers.iter().find(|p| p.name == name) {
                None => {
                    return Err(invalid(
                        &format!("{field}/{i}"),
                        format!("no provider {name:?}"),
                    ));
                }
                Some(p) if p.sites.is_empty() => {
                    return Err(invalid(
                        &format!("{field}/{i}"),
                        format!("provider {name:?} owns no site"),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Whether a spill-over list names a provider (so that the providers must be
/// read to check it).
pub fn names_a_provider(list: &[String]) -> bool {
    list.iter().any(|c| c.trim_start().starts_with("provider:"))
}
