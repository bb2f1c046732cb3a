//! Capacity the scheduler can trust. A site's capacity is known twice: as
//! *declared* (its topology entry, as edited by its provider or an operator) and
//! as *measured* (what its live agents register and then report in each
//! heartbeat's telemetry, summed over the agents). The scheduler plans with the
//! smaller of the two per class, so that a site declaring 1,536 cores whose one
//! agent runs on a 2-core machine is never handed more than 2 cores of work.
//!
//! The rules, in one place (this module), used by the scheduler's pass and by
//! every view of a site (`GET /v1/sites`, `/v1/overview`):
//!
//! - Only live agents count (heartbeated within the lease time). An agent's
//!   figures are its latest heartbeat's `telemetry.capacity` when that is not
//!   empty, else its registration's `capacity`; an agent that reported no
//!   capacity at all measured nothing and does not count. A class an agent that
//!   measured leaves out is zero for it.
//! - A site no live agent measured is *unmeasured*: the scheduler plans with
//!   what it declares. This keeps the simulator and sites without agents (the
//!   demo's simulated network, a site an operator manages by hand) working; a
//!   site whose agents all fell silent takes no new work anyway (it is
//!   unreachable, see [`crate::scheduler`]).
//! - Measured above declared is shown, not used: the declaration is the
//!   provider's promise, and the scheduler never plans past it.
//!
//! Declared capacity still decides whether a job can *ever* run at a site (a
//! job larger than the declaration is refused); measured capacity decides how
//! much is free now, so a job that fits the declaration waits while the
//! measurement is smaller, with the reason `measured-below-declared`.
//!
//! This module does no IO: it reads agent records its caller fetched.

use std::collections::{BTreeMap, HashMap};
use suanwang_api::{CapacityDoc, CapacityStatus, Probe, ProbeDoc};
use suanwang_model::{ClassMap, ResourceClass, Site};
use suanwang_store::AgentRecord;

/// What a site's live agents measure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Units per class, summed over the live agents that measured.
    pub units: ClassMap<u64>,
    /// Live agents whose figures are in `units`.
    pub live_agents: u32,
    /// Probe results of the live agents: (agent id, result).
    pub probes: Vec<(String, Probe)>,
}

/// What each site's live agents measure, by site id; a site absent here is
/// unmeasured.
pub type MeasuredSites = BTreeMap<String, Measured>;

/// What one agent record says, parsed.
#[derive(Debug, Clone)]
struct Parsed {
    units: Option<ClassMap<u64>>,
    probes: Vec<Probe>,
}

/// Agent records parsed at an earlier pass, by agent id, with the registration
/// time and last heartbeat they were parsed at: a record is parsed again only
/// when its agent heartbeated since.
#[derive(Debug, Default)]
pub struct ParseCache(std::sync::Mutex<HashMap<String, (i64, i64, Parsed)>>);

#[derive(serde::Deserialize)]
struct InfoPart {
    #[serde(default)]
    capacity: BTreeMap<String, u64>,
    #[serde(default)]
    probes: Vec<Probe>,
}

#[derive(serde::Deserialize)]
struct TelemetryPart {
    #[serde(default)]
    capacity: BTreeMap<String, u64>,
}

/// Units per class from names; names that are no class are left out (the
/// registration refuses them; telemetry is not trusted further).
fn units_of(named: &BTreeMap<String, u64>) -> Option<ClassMap<u64>> {
    if named.is_empty() {
        return None;
    }
    let mut units = ClassMap::<u64>::default();
    for (name, count) in named {
        if let Some(class) = ResourceClass::parse(name) {
            units.set(class, units.get(class).saturating_add(*count));
        }
    }
    Some(units)
}

fn parse(agent: &AgentRecord) -> Parsed {
    // Only the parts needed are read: serde skips the rest of a sample.
    let info = serde_json::from_str::<InfoPart>(&agent.info).ok();
    let reported = agent
        .telemetry
        .as_deref()
        .and_then(|t| serde_json::from_str::<TelemetryPart>(t).ok())
        .and_then(|t| units_of(&t.capacity));
    let registered = info.as_ref().and_then(|i| units_of(&i.capacity));
    Parsed {
        units: reported.or(registered),
        probes: info.map(|i| i.probes).unwrap_or_default(),
    }
}

/// What each site's live agents measure at unix time `now`, an agent being
/// live if it heartbeated within `lease_secs`. With `cache`, a record is parsed
/// again only after its agent heartbeated or registered anew.
pub fn measure(
    agents: &[AgentRecord],
    now: i64,
    lease_secs: i64,
    cache: Option<&ParseCache>,
) -> MeasuredSites {
    let mut out = MeasuredSites::new();
    let mut guard = cache.map(|c| c.0.lock().unwrap_or_else(|e| e.into_inner()));
    for agent in agents {
        if agent.last_seen < now - lease_secs {
            continue;
        }
        let parsed = match guard.as_deref_mut() {
            Some(map) => match map.get(&agent.id) {
                Some((registered, seen, parsed))
                    if *registered == agent.registered_at && *seen == agent.last_seen =>
                {
                    parsed.clone()
                }
                _ => {
                    let parsed = parse(agent);
                    map.insert(
                        agent.id.clone(),
                        (agent.registered_at, agent.last_seen, parsed.clone()),
                    );
                    parsed
                }
            },
            None => parse(agent),
        };
        let Some(units) = parsed.units else {
            continue;
        };
        let site = out.entry(agent.site.clone()).or_default();
        site.live_agents += 1;
        for (class, count) in units.iter() {
            site.units
                .set(class, site.units.get(class).saturating_add(count));
        }
        site.probes.extend(
            parsed
                .probes
                .into_iter()
                .map(|probe| (agent.id.clone(), probe)),
        );
    }
    if let Some(map) = guard.as_deref_mut() {
        // Forget agents no longer listed (forgotten, or registered anew).
        if map.len() > agents.len() {
            let listed: std::collections::HashSet<&str> =
                agents.iter().map(|a| a.id.as_str()).collect();
            map.retain(|id, _| listed.contains(id.as_str()));
        }
    }
    out
}

/// What the scheduler plans with at a site declaring `declared`: the smaller of
/// declared and measured per class (declared while unmeasured), and how the two
/// compare.
pub fn planned(
    declared: &ClassMap<u32>,
    measured: Option<&Measured>,
) -> (ClassMap<u32>, CapacityStatus) {
    let Some(measured) = measured.filter(|m| m.live_agents > 0) else {
        return (*declared, CapacityStatus::Unmeasured);
    };
    let mut plan = *declared;
    let (mut below, mut above) = (false, false);
    for (class, declared_units) in declared.iter() {
        let got = measured.units.get(class);
        let declared_units = u64::from(declared_units);
        below |= got < declared_units;
        above |= got > declared_units;
        plan.set(class, got.min(declared_units) as u32);
    }
    let status = if below {
        CapacityStatus::BelowDeclared
    } else if above {
        CapacityStatus::AboveDeclared
    } else {
        CapacityStatus::AsDeclared
    };
    (plan, status)
}

/// The classes where `planned` is below `declared`, as `cpu 2 of 1536`, or
/// `None` when there is none.
pub fn shortfall_words(declared: &ClassMap<u32>, planned: &ClassMap<u32>) -> Option<String> {
    let words: Vec<String> = declared
        .iter()
        .filter(|(class, units)| planned.get(*class) < *units)
        .map(|(class, units)| format!("{class} {} of {units}", planned.get(class)))
        .collect();
    (!words.is_empty()).then(|| words.join(", "))
}

fn named<T: Copy + Into<u64>>(units: &ClassMap<T>) -> BTreeMap<String, u64> {
    units
        .iter()
        .map(|(class, n)| (class.name().to_string(), n.into()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A site's capacity as the API shows it.
pub fn capacity_doc(site: &Site, measured: Option<&Measured>) -> CapacityDoc {
    let (plan, status) = planned(&site.capacity, measured);
    let measured = measured.filter(|m| m.live_agents > 0);
    CapacityDoc {
        status,
        declared: named(&site.capacity),
        measured: measured.map(|m| named(&m.units)),
        planned: named(&plan),
        live_agents: measured.map_or(0, |m| m.live_agents),
        probes: measured
            .map(|m| {
                m.probes
                    .iter()
                    .map(|(agent, probe)| {
                        let nominal = ResourceClass::parse(&probe.class).and_then(nominal_tflops);
                        ProbeDoc {
                            agent: agent.clone(),
                            probe: probe.clone(),
                            nominal_gflops: nominal
                                .map(|(tflops, _)| tflops * 1000.0 * probe.units as f64),
                            nominal_source: nominal.map(|(_, source)| source.to_string()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Nominal dense FP16/BF16 tensor throughput of one card, TFLOPS, and where the
/// figure comes from, as the accelerator catalogue says
/// ([`suanwang_model::catalogue::info`]); `None` for CPUs and memory and for
/// models without a published figure.
pub fn nominal_tflops(class: ResourceClass) -> Option<(f64, &'static str)> {
    let info = suanwang_model::catalogue::info(class);
    info.fp16_tflops.map(|tflops| (tflops, info.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(
        id: &str,
        site: &str,
        seen: i64,
        capacity: &str,
        telemetry: Option<&str>,
    ) -> AgentRecord {
        AgentRecord {
            id: id.into(),
            site: site.into(),
            info: format!(r#"{{"site":"{site}","executor":"local","capacity":{capacity}}}"#),
            registered_at: 0,
            last_seen: seen,
            telemetry: telemetry.map(str::to_string),
        }
    }

    fn cpu(n: u32) -> ClassMap<u32> {
        let mut map = ClassMap::default();
        map.set(ResourceClass::parse("cpu").unwrap(), n);
        map
    }

    #[test]
    fn live_agents_sum_and_silent_ones_do_not_count() {
        let agents = [
            agent("a", "hami", 100, r#"{"cpu":2}"#, None),
            agent("b", "hami", 95, r#"{"cpu":3,"mem_gib":8}"#, None),
            agent("c", "hami", 10, r#"{"cpu":100}"#, None),
            agent("d", "zhongwei", 100, "{}", None),
        ];
        let sites = measure(&agents, 100, 30, None);
        let hami = &sites["hami"];
        assert_eq!(hami.live_agents, 2);
        assert_eq!(hami.units.get(ResourceClass::parse("cpu").unwrap()), 5);
        assert_eq!(hami.units.get(ResourceClass::parse("mem_gib").unwrap()), 8);
        // An agent that reported nothing measured nothing.
        assert!(!sites.contains_key("zhongwei"));
    }

    #[test]
    fn the_latest_heartbeat_wins_over_the_registration() {
        let agents = [agent(
            "a",
            "hami",
            100,
            r#"{"cpu":8}"#,
            Some(
                r#"{"source":"host","capacity":{"cpu":4},"cpu":{"cores":4,"utilisation":0.5,"load_1m":1.0}}"#,
            ),
        )];
        let cache = ParseCache::default();
        let first = measure(&agents, 100, 30, Some(&cache));
        assert_eq!(
            first["hami"]
                .units
                .get(ResourceClass::parse("cpu").unwrap()),
            4
        );
        // Cached: the same answer without parsing again.
        assert_eq!(measure(&agents, 100, 30, Some(&cache)), first);
        // An empty sample falls back on the registration.
        let agents = [agent(
            "a",
            "hami",
            101,
            r#"{"cpu":8}"#,
            Some(r#"{"source":"host"}"#),
        )];
        let again = measure(&agents, 101, 30, Some(&cache));
        assert_eq!(
            again["hami"]
                .units
                .get(ResourceClass::parse("cpu").unwrap()),
            8
        );
    }

    #[test]
    fn the_smaller_figure_is_planned_per_class() {
        let declared = cpu(1536);
        let (plan, status) = planned(&declared, None);
        assert_eq!((plan, status), (declared, CapacityStatus::Unmeasured));
        let mut measured = Measured {
            live_agents: 1,
            ..Default::default()
        };
        measured.units.set(ResourceClass::parse("cpu").unwrap(), 2);
        let (plan, status) = planned(&declared, Some(&measured));
        assert_eq!((plan, status), (cpu(2), CapacityStatus::BelowDeclared));
        assert_eq!(
            shortfall_words(&declared, &plan).as_deref(),
            Some("cpu 2 of 1536")
        );
        measured
            .units
            .set(ResourceClass::parse("cpu").unwrap(), 2000);
        measured.units.set(ResourceClass::parse("h20").unwrap(), 8);
        let (plan, status) = planned(&declared, Some(&measured));
        assert_eq!((plan, status), (declared, CapacityStatus::AboveDeclared));
        measured
            .units
            .set(ResourceClass::parse("cpu").unwrap(), 1536);
        measured.units.set(ResourceClass::parse("h20").unwrap(), 0);
        assert_eq!(
            planned(&declared, Some(&measured)).1,
            CapacityStatus::AsDeclared
        );
        // No live agent: unmeasured again.
        measured.live_agents = 0;
        assert_eq!(
            planned(&declared, Some(&measured)).1,
            CapacityStatus::Unmeasured
        );
    }
}
