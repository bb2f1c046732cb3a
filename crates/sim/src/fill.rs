//! Fill-in rules: turn a [`TraceJob`] into a [`Job`] by supplying what traces lack
//! (origin region, input data, deadline, residency, GPU model, tenant).
//!
//! Every rule is deterministic: a value is drawn from a hash of (seed, job index,
//! field), never from a shared random stream, so adding a rule does not shift the
//! others and the same seed gives the same jobs. The rules are documented in
//! `docs/SIMULATOR.md`; each can be overridden by a flag.

use crate::trace::{Trace, TraceJob};
use serde::Serialize;
use suanwang_model::{
    DataRef, Demand, Job, JobId, Jurisdiction, LatencyTarget, LocationId, ResourceClass,
    SimDuration, SimTime,
};
use suanwang_topology::Topology;

/// Options of the fill-in rules.
#[derive(Debug, Clone, Serialize)]
pub struct FillOptions {
    /// Seed of every draw.
    pub seed: u64,
    /// Force every job's origin region.
    pub origin: Option<String>,
    /// Force every job's input size, GiB.
    pub data_gib: Option<f64>,
    /// Deadline = release + run time + slack.
    pub deadline_slack: SimDuration,
    /// Share of mainland-origin jobs that must stay in their jurisdiction.
    pub residency_share: f64,
    /// Force every accelerator job onto one model.
    pub gpu_model: Option<ResourceClass>,
    /// Latency target of latency-sensitive services, ms round trip.
    pub latency_target_ms: f64,
    /// Number of synthetic tenants when the trace names none.
    pub tenants: u32,
}

impl Default for FillOptions {
    fn default() -> FillOptions {
        FillOptions {
            seed: 1,
            origin: None,
            data_gib: None,
            deadline_slack: SimDuration::hours(24),
            residency_share: 0.8,
            gpu_model: None,
            latency_target_ms: 30.0,
            tenants: 8,
        }
    }
}

/// A trace job that cannot become a job, with the reason (reported as rejected).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unrunnable {
    /// Index in the trace.
    pub index: usize,
    /// Line in the trace file.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// SplitMix64: a fast, well-mixed hash of one 64-bit word.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform draw in [0, 1) from (seed, index, field tag).
pub fn draw(seed: u64, index: u64, tag: u64) -> f64 {
    let h = mix(mix(seed ^ mix(index)) ^ tag.wrapping_mul(0x2545_f491_4f6c_dd1d));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Origin weights: for cn-west's regions, the hub's own demand first (Chongqing
/// 40%, Chengdu 20%, Shanghai 15%, Beijing 15%, Guangzhou 10% — an assumption);
/// for any other topology, its regions uniformly (its sites when it has none).
pub fn origin_weights(topology: &Topology) -> Vec<(String, f64)> {
    let cn_west = [
        ("chongqing", 0.40),
        ("chengdu", 0.20),
        ("shanghai", 0.15),
        ("beijing", 0.15),
        ("guangzhou", 0.10),
    ];
    let regions: Vec<&str> = topology.regions.iter().map(|r| r.id.0.as_str()).collect();
    if !regions.is_empty()
        && regions
            .iter()
            .all(|r| cn_west.iter().any(|(id, _)| id == r))
    {
        return cn_west
            .iter()
            .filter(|(id, _)| regions.contains(id))
            .map(|(id, w)| (id.to_string(), *w))
            .collect();
    }
    if regions.is_empty() {
        return topology
            .sites
            .iter()
            .map(|s| (s.id.0.clone(), 1.0))
            .collect();
    }
    regions.iter().map(|r| (r.to_string(), 1.0)).collect()
}

/// Maps a trace's GPU model to a class of the topology: training-class cards
/// (V100, A100, Alibaba's G3) to A800, the rest (T4, P100, A10, Alibaba's G2) to
/// L40S. A model suanwang knows maps to itself.
pub fn map_gpu_model(model: &str) -> ResourceClass {
    if let Some(class) = ResourceClass::parse(model).filter(|c| c.is_accelerator()) {
        return class;
    }
    let upper = model.to_uppercase();
    if upper.starts_with("V100") || upper.starts_with("A100") || upper == "G3" {
        ResourceClass::A800
    } else {
        ResourceClass::L40S
    }
}

fn pick(weights: &[(String, f64)], u: f64) -> &str {
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut acc = 0.0;
    for (id, w) in weights {
        acc += w / total;
        if u < acc {
            return id;
        }
    }
    &weights[weights.len() - 1].0
}

fn pick_model(models: &[(String, u32)], u: f64) -> Option<&str> {
    let total: u32 = models.iter().map(|m| m.1).sum();
    if total == 0 {
        return None;
    }
    let target = u * total as f64;
    let mut acc = 0.0;
    for (name, n) in models {
        acc += *n as f64;
        if target < acc {
            return Some(name);
        }
    }
    models.last().map(|m| m.0.as_str())
}

const TAG_ORIGIN: u64 = 1;
const TAG_DATA: u64 = 2;
const TAG_RESIDENCY: u64 = 3;
const TAG_GPU: u64 = 4;
const TAG_TENANT: u64 = 5;

/// Applies the fill-in rules to every job of `trace`. Jobs come out with ids equal
/// to their index in the trace; those that cannot run are returned apart.
pub fn fill(
    trace: &Trace,
    topology: &Topology,
    options: &FillOptions,
) -> (Vec<Job>, Vec<Unrunnable>) {
    let weights = match &options.origin {
        Some(origin) => vec![(origin.clone(), 1.0)],
        None => origin_weights(topology),
    };
    let jurisdiction_of = |id: &str| -> Option<String> {
        topology
            .regions
            .iter()
            .find(|r| r.id.0 == id)
            .map(|r| r.jurisdiction.0.clone())
            .or_else(|| topology.site(id).map(|s| s.jurisdiction.0.clone()))
    };
    let mut jobs = Vec::with_capacity(trace.jobs.len());
    let mut unrunnable = Vec::new();
    for (index, tj) in trace.jobs.iter().enumerate() {
        match fill_one(index, tj, trace, &weights, &jurisdiction_of, options) {
            Ok(job) => jobs.push(job),
            Err(reason) => unrunnable.push(Unrunnable {
                index,
                line: tj.line,
                reason,
            }),
        }
    }
    (jobs, unrunnable)
}

fn fill_one(
    index: usize,
    tj: &TraceJob,
    trace: &Trace,
    weights: &[(String, f64)],
    jurisdiction_of: &dyn Fn(&str) -> Option<String>,
    options: &FillOptions,
) -> Result<Job, String> {
    let seed = options.seed;
    let i = index as u64;
    let duration = tj
        .duration_secs
        .ok_or_else(|| "trace gives no run time".to_string())?;
    let origin = pick(weights, draw(seed, i, TAG_ORIGIN)).to_string();
    // Log-uniform input size between 0.5 and 50 GiB.
    let data_gib = options
        .data_gib
        .unwrap_or_else(|| 0.5 * 100f64.powf(draw(seed, i, TAG_DATA)));
    let mut demand = Vec::new();
    if tj.gpus > 0 {
        let class = options.gpu_model.unwrap_or_else(|| {
            let model = tj
                .gpu_model
                .as_deref()
                .or_else(|| pick_model(&trace.gpu_models, draw(seed, i, TAG_GPU)))
                .unwrap_or("L40S");
            map_gpu_model(model)
        });
        demand.push(Demand {
            class,
            count: tj.gpus,
        });
    }
    demand.push(Demand {
        class: ResourceClass::Cpu,
        count: tj.cpus.max(1),
    });
    if let Some(mem) = tj.mem_gib {
        demand.push(Demand {
            class: ResourceClass::Memory,
            count: mem,
        });
    }
    let residency = match jurisdiction_of(&origin) {
        Some(j) if j == "cn-mainland" && draw(seed, i, TAG_RESIDENCY) < options.residency_share => {
            vec![Jurisdiction(j)]
        }
        _ => Vec::new(),
    };
    let release = SimTime(tj.submit_secs);
    let tenant = tj.user.clone().unwrap_or_else(|| {
        format!(
            "tenant-{}",
            (draw(seed, i, TAG_TENANT) * options.tenants.max(1) as f64) as u32
        )
    });
    Ok(Job {
        id: JobId(i),
        tenant,
        demand,
        gang: 1,
        duration: SimDuration(duration),
        release,
        deadline: (!tj.latency_sensitive)
            .then(|| release + SimDuration(duration) + options.deadline_slack),
        origin: LocationId(origin.clone()),
        data: (data_gib > 0.0).then(|| DataRef {
            size_gib: data_gib,
            location: LocationId(origin.clone()),
        }),
        latency_target: tj.latency_sensitive.then(|| LatencyTarget {
            region: LocationId(origin.clone()),
            max_ms: options.latency_target_ms,
        }),
        residency,
        priority: if tj.latency_sensitive { 1 } else { 0 },
        class: suanwang_model::PriorityClass::Normal,
        delayable: !tj.latency_sensitive,
        preemptible: false,
        pinned_site: None,
        spill: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse_gaia;

    #[test]
    fn fill_is_deterministic_and_seed_dependent() {
        let text = "arrival_time,length,cpus\n0,1,1\n0.5,2,2\n1,3,4\n2,1,1\n";
        let trace = parse_gaia(text, "t.csv", false, None).unwrap();
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        let a = fill(&trace, &topology, &FillOptions::default()).0;
        let b = fill(&trace, &topology, &FillOptions::default()).0;
        assert_eq!(a, b);
        let c = fill(
            &trace,
            &topology,
            &FillOptions {
                seed: 7,
                ..FillOptions::default()
            },
        )
        .0;
        assert_ne!(a, c);
        for job in &a {
            let deadline = job.deadline.unwrap();
            assert_eq!(
                deadline,
                job.release + job.duration + SimDuration::hours(24)
            );
            let gib = job.data.as_ref().unwrap().size_gib;
            assert!((0.5..=50.0).contains(&gib));
        }
    }

    #[test]
    fn overrides_win() {
        let text = "arrival_time,length,cpus\n0,1,1\n";
        let trace = parse_gaia(text, "t.csv", false, None).unwrap();
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        let options = FillOptions {
            origin: Some("beijing".into()),
            data_gib: Some(3.0),
            residency_share: 1.0,
            ..Default::default()
        };
        let job = &fill(&trace, &topology, &options).0[0];
        assert_eq!(job.origin.0, "beijing");
        assert_eq!(job.data.as_ref().unwrap().size_gib, 3.0);
        assert_eq!(job.residency, vec![Jurisdiction("cn-mainland".into())]);
    }

    #[test]
    fn gpu_models_map_to_topology_classes() {
        assert_eq!(map_gpu_model("V100M32"), ResourceClass::A800);
        assert_eq!(map_gpu_model("G3"), ResourceClass::A800);
        assert_eq!(map_gpu_model("T4"), ResourceClass::L40S);
        assert_eq!(map_gpu_model("H800"), ResourceClass::H800);
    }
}
