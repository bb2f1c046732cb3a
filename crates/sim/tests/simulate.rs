//! Simulator invariants (every job accounted for, the LP bound below every policy,
//! determinism) on generated traces, and quality checks on the real traces in
//! ../shared/data when present.

use proptest::prelude::*;
use std::path::PathBuf;
use suanwang_sched::{LpBoundReport, Policy, PolicyKind};
use suanwang_sim::engine::{JobResult, SimConfig, simulate};
use suanwang_sim::fill::{FillOptions, fill};
use suanwang_sim::trace::parse_gaia;
use suanwang_sim::world::World;
use suanwang_sim::{SimulateParams, bound, default_start_unix, report};
use suanwang_topology::SeriesModel;

fn gaia_text(jobs: &[(f64, f64, u32)]) -> String {
    let mut text = String::from("arrival_time,length,cpus\n");
    for (a, l, c) in jobs {
        text.push_str(&format!("{a},{l},{c}\n"));
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Every job ends done or rejected, never before its release, and no policy's
    /// objective falls below the LP lower bound.
    #[test]
    fn jobs_are_accounted_for_and_no_policy_beats_the_bound(
        jobs in prop::collection::vec((0.0f64..48.0, 0.1f64..20.0, prop::sample::select(vec![1u32, 2, 4, 64, 900, 3000])), 1..25),
        scale in prop::sample::select(vec![0.01f64, 0.05, 1.0]),
        seed in 0u64..1000,
    ) {
        let trace = parse_gaia(&gaia_text(&jobs), "gen.csv", false, None).unwrap();
        let mut topology = suanwang_topology::builtin("cn-west").unwrap();
        topology.scale_capacity(scale);
        let options = FillOptions { seed, ..FillOptions::default() };
        let (filled, unrunnable) = fill(&trace, &topology, &options);
        prop_assert!(unrunnable.is_empty());
        let series = SeriesModel::new(&topology, default_start_unix(), None, 0.0);
        let world = World::new(topology, series, 900, 40 * 86400);
        let requests: Vec<_> = filled.iter().map(|j| world.request(j)).collect();
        let config = SimConfig { seed, ..SimConfig::default() };
        let policy = Policy::new(PolicyKind::Balanced);
        let instance = bound::lp_instance(&world, &requests, &policy, 48, 24 * 30);
        let lp = suanwang_sched::lp::lower_bound(&instance).unwrap();
        for kind in PolicyKind::ALL {
            let policy = Policy::new(kind);
            let run = simulate(&world, &requests, &policy, &config, &mut |_| {});
            prop_assert_eq!(run.jobs.len(), jobs.len());
            for (job, result) in run.jobs.iter().enumerate() {
                if let JobResult::Done { start, end, .. } = result {
                    let r = requests[job].as_ref().unwrap();
                    prop_assert!(*start >= r.release);
                    prop_assert_eq!(*end, *start + r.duration);
                }
            }
            if kind == PolicyKind::Balanced && scale == 1.0 {
                // Ample capacity and a day of slack: every deadline is met.
                for result in &run.jobs {
                    if let JobResult::Done { terms, .. } = result {
                        prop_assert_eq!(terms.late_secs.0, 0);
                    }
                }
            }
            let summary = report::summarise(&world, &requests, &run, 48.0, Some(lp.value));
            prop_assert_eq!(summary.jobs.done + summary.jobs.rejected, jobs.len());
            prop_assert!(
                summary.objective_cny >= lp.value - 1e-6 * lp.value.abs(),
                "{} objective {} below LP bound {}", kind.name(), summary.objective_cny, lp.value
            );
        }
    }
}

fn small_params() -> SimulateParams {
    let mut params = SimulateParams::new(
        suanwang_topology::builtin("cn-west").unwrap(),
        PathBuf::from("synthetic"),
    );
    params.synthetic_jobs = 150;
    params.synthetic_days = 2;
    params
}

#[test]
fn same_inputs_and_seed_give_byte_identical_json() {
    let params = small_params();
    let a = serde_json::to_string(&suanwang_sim::run(&params, &|_| {}).unwrap().report).unwrap();
    let b = serde_json::to_string(&suanwang_sim::run(&params, &|_| {}).unwrap().report).unwrap();
    assert_eq!(a, b);
    let mut other = small_params();
    other.fill.seed = 2;
    other.config.seed = 2;
    let c = serde_json::to_string(&suanwang_sim::run(&other, &|_| {}).unwrap().report).unwrap();
    assert_ne!(a, c, "the seed changes the fill-in rules");
}

/// A spill-over list for every job: each job goes to its first choice when
/// that meets its deadline, never outside the list; an unknown choice or a
/// provider is refused naming it.
#[test]
fn a_spill_list_keeps_every_job_on_its_choices() {
    use suanwang_model::SpillChoice;
    let mut params = small_params();
    params.policies = vec![PolicyKind::Balanced, PolicyKind::Cheapest];
    params.spill = suanwang_model::Job::parse_spill("site:guian,site:helinger").unwrap();
    let simulation = suanwang_sim::run(&params, &|_| {}).unwrap();
    let guian = simulation
        .world
        .sites
        .iter()
        .position(|s| s.id == "guian")
        .unwrap();
    let helinger = simulation
        .world
        .sites
        .iter()
        .position(|s| s.id == "helinger")
        .unwrap();
    for run in &simulation.runs {
        let mut at = [0usize; 2];
        for job in &run.jobs {
            if let suanwang_sim::engine::JobResult::Done { site, .. } = job {
                assert!(
                    *site == guian || *site == helinger,
                    "{:?} ran a job at site {site}, outside the list",
                    run.policy.kind
                );
                at[usize::from(*site == helinger)] += 1;
            }
        }
        assert!(
            at[0] > at[1],
            "{:?}: most run at the first choice: {at:?}",
            run.policy.kind
        );
    }
    for (choice, words) in [
        ("provider:acme", "knows no providers"),
        ("site:atlantis", "names no site"),
    ] {
        params.spill = vec![choice.parse::<SpillChoice>().unwrap()];
        let err = suanwang_sim::run(&params, &|_| {})
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(choice) && err.contains(words), "{err}");
    }
}

/// Golden test: the full report of a small built-in run. A change here is a change
/// of behaviour: review it (`INSTA_UPDATE=always cargo test` rewrites it).
#[test]
fn golden_report_of_the_small_synthetic_run() {
    let simulation = suanwang_sim::run(&small_params(), &|_| {}).unwrap();
    assert!(matches!(
        simulation.report.lp_bound,
        LpBoundReport::Computed { .. }
    ));
    insta::assert_snapshot!(report::render_tables(&simulation.report));
}

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SUANWANG_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("traces").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no real data at {} (set SUANWANG_DATA; CI has ../shared/data)",
            dir.display()
        );
        None
    }
}

fn assert_balanced_beats_local(path: PathBuf, limit: Option<usize>) {
    let mut params =
        SimulateParams::new(suanwang_topology::builtin("cn-west").unwrap(), path.clone());
    params.policies = vec![PolicyKind::LocalFifo, PolicyKind::Balanced];
    params.limit = limit;
    params.lp_max_jobs = 0;
    let simulation = suanwang_sim::run(&params, &|_| {}).unwrap();
    let report = &simulation.report;
    let (local, balanced) = (&report.policies[0], &report.policies[1]);
    for p in &report.policies {
        assert_eq!(
            p.jobs.done + p.jobs.rejected,
            report.trace.jobs,
            "{}: every job accounted for",
            p.policy
        );
    }
    assert_eq!(balanced.deadline_misses, 0, "{}", path.display());
    assert!(
        balanced.cost_cny.total < local.cost_cny.total,
        "{}: cost {} vs {}",
        path.display(),
        balanced.cost_cny.total,
        local.cost_cny.total
    );
    assert!(
        balanced.carbon_t < local.carbon_t,
        "{}: carbon {} vs {}",
        path.display(),
        balanced.carbon_t,
        local.carbon_t
    );
}

#[test]
fn balanced_beats_local_fifo_on_real_traces() {
    let Some(data) = shared_data() else { return };
    let traces = data.join("traces");
    assert_balanced_beats_local(traces.join("gaia_pai-100k.csv"), None);
    assert_balanced_beats_local(traces.join("gaia_pai_1k.csv"), None);
    assert_balanced_beats_local(
        traces.join("alibaba_gpu2023_openb_pod_list_default.csv"),
        None,
    );
    assert_balanced_beats_local(traces.join("NASA-iPSC-1993-3.1-cln.swf.gz"), None);
}

#[test]
fn real_traces_read_completely() {
    let Some(data) = shared_data() else { return };
    let traces = data.join("traces");
    let options = suanwang_sim::trace::ReadOptions::default();
    let expect = [
        ("gaia_pai-100k.csv", 99_998),
        ("gaia_azure-100k.csv", 99_988),
        ("gaia_pai_1k.csv", 1_000),
        ("alibaba_gpu2023_openb_pod_list_default.csv", 8_152),
        ("NASA-iPSC-1993-3.1-cln.swf.gz", 18_239),
    ];
    for (file, rows) in expect {
        let trace = suanwang_sim::trace::read_trace(&traces.join(file), &options).unwrap();
        assert_eq!(trace.jobs.len(), rows, "{file}");
        assert!(trace.skipped.is_empty());
    }
    let small = suanwang_sim::trace::read_trace(&traces.join("gaia_pai_1k.csv"), &options).unwrap();
    assert_eq!(
        small.time_unit,
        Some((suanwang_sim::trace::TimeUnit::Seconds, true)),
        "the _1k file is in seconds"
    );
    let alibaba = suanwang_sim::trace::read_trace(
        &traces.join("alibaba_gpu2023_openb_pod_list_default.csv"),
        &options,
    )
    .unwrap();
    assert!(
        alibaba.gpu_models.iter().any(|(m, _)| m == "V100M32"),
        "node list read beside the pod list"
    );
}

/// Golden tests on small traces in each real format (the project's own fixtures).
#[test]
fn golden_reports_of_small_traces_in_each_format() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for file in ["small.swf", "small-alibaba.csv", "small-gaia.csv"] {
        let mut params = SimulateParams::new(
            suanwang_topology::builtin("cn-west").unwrap(),
            fixtures.join(file),
        );
        params.read.node_list = Some(fixtures.join("small-alibaba-nodes.csv"));
        let mut simulation = suanwang_sim::run(&params, &|_| {}).unwrap();
        simulation.report.trace.path = file.to_string();
        insta::assert_snapshot!(file, report::render_tables(&simulation.report));
    }
}

/// With fair share, the replay numbers the trace's tenants, weighs them, and
/// the report gives each one's use against its entitlement and Jain's index;
/// without it, no fairness section.
#[test]
fn fair_share_replays_tenants_and_reports_their_shares() {
    let mut params = small_params();
    params.policies = vec![suanwang_sched::PolicyKind::LeastLoaded];
    params.lp_max_jobs = 0;
    let plain = suanwang_sim::run(&params, &|_| {}).unwrap();
    assert!(plain.report.policies[0].fairness.is_none());
    params.fair_share_half_life_secs = Some(7 * 86400);
    params.share_weights = vec![("tenant-0".into(), 3.0)];
    let fair = suanwang_sim::run(&params, &|_| {}).unwrap();
    let f = fair.report.policies[0].fairness.as_ref().unwrap();
    let n = f.tenants.len();
    assert!(n >= 2, "{f:?}");
    let t0 = f.tenants.iter().find(|t| t.tenant == "tenant-0").unwrap();
    assert_eq!(t0.weight, 3.0);
    assert!(
        (t0.entitled - 3.0 / (n as f64 + 2.0)).abs() < 1e-12,
        "{f:?}"
    );
    let used: f64 = f.tenants.iter().map(|t| t.used).sum();
    assert!((used - 1.0).abs() < 1e-9, "{f:?}");
    assert!(f.jain_index > 0.0 && f.jain_index <= 1.0 + 1e-12, "{f:?}");
    // Every runnable job belongs to one tenant.
    let runnable = fair.report.policies[0].jobs.total;
    assert!(f.tenants.iter().map(|t| t.jobs).sum::<usize>() <= runnable);
    assert!(report::render_tables(&fair.report).contains("Jain's index"));
}

/// Priorities and preemption in the simulator, by the live scheduler's code: on
/// a network shrunk to a fiftieth so that jobs contend, an urgent tenant's
/// jobs (deadline an hour after they could end) stop batch tenants' jobs; the
/// report counts the preemptions and the work lost, every job still runs or is
/// refused once, urgent jobs wait least, and without classes nothing is stopped.
#[test]
fn preemption_replays_classes_and_counts_the_work_lost() {
    use suanwang_model::PriorityClass;
    let mut params = small_params();
    params.synthetic_jobs = 400;
    params.policies = vec![suanwang_sched::PolicyKind::Balanced];
    params.lp_max_jobs = 0;
    for site in &mut params.topology.sites {
        let shrunk: Vec<_> = site
            .capacity
            .iter()
            .map(|(class, units)| (class, units.div_ceil(50)))
            .collect();
        for (class, units) in shrunk {
            site.capacity.set(class, units);
        }
    }
    let plain = suanwang_sim::run(&params, &|_| {}).unwrap();
    assert!(plain.report.policies[0].preemption.is_none());
    params.tenant_classes = vec![
        ("tenant-0".into(), PriorityClass::Urgent),
        ("tenant-1".into(), PriorityClass::Urgent),
        ("tenant-2".into(), PriorityClass::Batch),
        ("tenant-3".into(), PriorityClass::Batch),
        ("tenant-4".into(), PriorityClass::Batch),
        ("tenant-5".into(), PriorityClass::Batch),
    ];
    params.config.preemption = Some(suanwang_sim::engine::SimPreemption::default());
    let run = suanwang_sim::run(&params, &|_| {}).unwrap();
    let result = &run.report.policies[0];
    let pre = result.preemption.as_ref().unwrap();
    assert!(pre.preemptions > 0, "{pre:?}");
    assert!(pre.jobs_preempted <= pre.preemptions);
    assert!(pre.lost_run_h >= 0.0 && pre.lost_cny >= 0.0, "{pre:?}");
    let wait = |class: &str| pre.classes.iter().find(|c| c.class == class).unwrap();
    assert!(
        wait("urgent").mean_wait_h <= wait("batch").mean_wait_h,
        "urgent waits least: {pre:?}"
    );
    // Every job is decided once: run or refused, preempted ones included.
    assert_eq!(
        result.jobs.done + result.jobs.rejected,
        result.jobs.total,
        "{:?}",
        result.jobs
    );
    let text = report::render_tables(&run.report);
    assert!(text.contains("preemptions of"), "{text}");
    // Off: the same classes order the passes but stop nothing.
    params.config.preemption = None;
    let off = suanwang_sim::run(&params, &|_| {}).unwrap();
    assert!(off.report.policies[0].preemption.is_none());
}

/// Quotas in the simulator, as live: a tenant capped at 8 cores never holds
/// more than 8 at once over the whole replay, and a quota for a tenant the
/// trace does not have is refused, naming it.
#[test]
fn a_quota_caps_what_a_tenant_holds_at_once_in_a_replay() {
    use suanwang_model::ResourceClass;
    let mut params = small_params();
    params.policies = vec![suanwang_sched::PolicyKind::Balanced];
    params.lp_max_jobs = 0;
    params.quotas = vec![("tenant-0".into(), ResourceClass::Cpu, None, 8)];
    let run = suanwang_sim::run(&params, &|_| {}).unwrap();
    let (_, jobs, unrunnable) = suanwang_sim::filled_trace(&params).unwrap();
    assert!(unrunnable.is_empty(), "jobs line up with results");
    let spans: Vec<(i64, i64, u32)> = run.runs[0]
        .jobs
        .iter()
        .zip(&jobs)
        .filter(|(_, job)| job.tenant == "tenant-0")
        .filter_map(|(r, job)| match r {
            suanwang_sim::engine::JobResult::Done { start, end, .. } => {
                Some((start.0, end.0, job.units(ResourceClass::Cpu)))
            }
            _ => None,
        })
        .collect();
    assert!(spans.len() > 3, "{spans:?}");
    let peak = spans
        .iter()
        .map(|&(at, _, _)| {
            spans
                .iter()
                .filter(|&&(s, e, _)| s <= at && at < e)
                .map(|s| s.2)
                .sum::<u32>()
        })
        .max()
        .unwrap();
    assert!(peak <= 8, "{peak} cores held at once: {spans:?}");
    params.quotas = vec![("nobody".into(), ResourceClass::Cpu, None, 8)];
    let Err(err) = suanwang_sim::run(&params, &|_| {}) else {
        panic!("a quota for an unknown tenant is refused");
    };
    let err = err.to_string();
    assert!(err.contains("\"nobody\""), "{err}");
}
