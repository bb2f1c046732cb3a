//! Property tests of the scheduling core's invariants: capacity is never exceeded,
//! no job starts before its release (plus transfer), residency and latency rules
//! hold, every job gets exactly one decision, and planning is deterministic.

use proptest::prelude::*;
use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::{
    Calendar, Forecast, Need, NetView, Outcome, Policy, PolicyKind, Request, SiteCapacity,
    SiteView, Snapshot, plan,
};

const SLOT: i64 = 900;
const HORIZON: usize = 96;

/// (release, duration, units of three classes, deadline slack, residency bits,
/// latency target, delayable).
type GenJob = (i64, i64, [u32; 3], Option<i64>, u64, Option<f64>, bool);

#[derive(Debug, Clone)]
struct Case {
    capacity: Vec<[u32; 3]>,
    jurisdiction: Vec<usize>,
    latency: Vec<f64>,
    tariff: Vec<f64>,
    jobs: Vec<GenJob>,
    policy: usize,
    guard: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..5).prop_flat_map(|n_sites| {
        (
            prop::collection::vec([0u32..6, 0u32..4, 0u32..3], n_sites),
            prop::collection::vec(0usize..2, n_sites),
            prop::collection::vec(1.0f64..60.0, n_sites),
            prop::collection::vec(0.2f64..1.5, n_sites),
            prop::collection::vec(
                (
                    0i64..40_000,
                    60i64..30_000,
                    [0u32..3, 0u32..3, 0u32..2],
                    prop::option::of(0i64..80_000),
                    0u64..4,
                    prop::option::of(5.0f64..60.0),
                    any::<bool>(),
                ),
                1..40,
            ),
            0usize..6,
            any::<bool>(),
        )
            .prop_map(
                |(capacity, jurisdiction, latency, tariff, jobs, policy, guard)| Case {
                    capacity,
                    jurisdiction,
                    latency,
                    tariff,
                    jobs,
                    policy,
                    guard,
                },
            )
    })
}

struct World {
    sites: Vec<SiteView>,
    capacity: Vec<SiteCapacity>,
    net: NetView,
    forecast: Forecast,
    requests: Vec<Request>,
}

fn world(case: &Case) -> World {
    let n = case.capacity.len();
    let sites: Vec<SiteView> = (0..n)
        .map(|s| {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            for c in 0..3 {
                price[c] = 1.0 + c as f64 + s as f64 * 0.1;
                power[c] = 0.1 * (c + 1) as f64;
            }
            SiteView {
                id: format!("s{s}"),
                jurisdiction: case.jurisdiction[s],
                price_cny_per_unit_hour: price,
                power_kw_per_unit: power,
                pue: 1.2,
                available: true,
            }
        })
        .collect();
    let capacity = case
        .capacity
        .iter()
        .map(|c| {
            let mut units = [0; N_CLASSES];
            units[..3].copy_from_slice(c);
            SiteCapacity { units, watts: None }
        })
        .collect();
    // Locations: the sites, then one region.
    let n_loc = n + 1;
    let mut latency_ms = vec![0.0; n_loc * n];
    for s in 0..n {
        latency_ms[n * n + s] = case.latency[s];
        for l in 0..n {
            latency_ms[l * n + s] = if l == s { 0.0 } else { 10.0 };
        }
    }
    let net = NetView {
        locations: (0..n)
            .map(|s| format!("s{s}"))
            .chain(["r".to_string()])
            .collect(),
        n_sites: n,
        jurisdictions: vec!["a".into(), "b".into()],
        location_jurisdiction: case.jurisdiction.iter().copied().chain([0]).collect(),
        home_site: (0..n).chain([0]).collect(),
        latency_ms,
        bandwidth_gbps: vec![1.0; n_loc * n],
        price_cny_per_gb: vec![0.05; n_loc * n],
        metro: vec![false; n_loc * n],
    };
    let forecast = Forecast::from_fn(n, 0, SLOT, HORIZON, |s, t| {
        let hour = (t.0 / 3600) % 24;
        (
            case.tariff[s] * (1.0 + (hour as f64 / 24.0)),
            0.5 + 0.01 * ((hour * 7 + s as i64) % 13) as f64,
        )
    });
    let requests = case
        .jobs
        .iter()
        .enumerate()
        .map(
            |(i, (release, duration, units, slack, residency, latency, delayable))| {
                let mut need = Need::default();
                need.units[..3].copy_from_slice(units);
                if need.classes().count() == 0 {
                    need.units[0] = 1;
                }
                Request {
                    id: JobId(i as u64),
                    need,
                    duration: SimDuration(*duration),
                    release: SimTime(*release),
                    deadline: slack.map(|s| SimTime(release + duration + s)),
                    origin: n,
                    data_location: n,
                    data_gib: (i % 3) as f64 * 5.0,
                    latency: latency.map(|ms| (n, ms)),
                    residency: *residency,
                    priority: (i % 2) as i32,
                    delayable: *delayable,
                    pinned: None,
                }
            },
        )
        .collect();
    World {
        sites,
        capacity,
        net,
        forecast,
        requests,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn placements_respect_every_rule(case in case()) {
        let w = world(&case);
        let mut policy = Policy::new(PolicyKind::ALL[case.policy]);
        policy.pareto_guard = case.guard;
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let decisions = plan(&snapshot, &mut calendar, &w.requests, &policy);

        // Exactly one decision per job.
        let mut seen = vec![0; w.requests.len()];
        for d in &decisions {
            seen[d.index] += 1;
            prop_assert_eq!(d.job, w.requests[d.index].id);
        }
        prop_assert!(seen.iter().all(|&n| n == 1));

        // Independent capacity check from the placements alone.
        let n = w.sites.len();
        let mut used = vec![[0u32; N_CLASSES]; n * HORIZON * 4];
        for d in &decisions {
            let r = &w.requests[d.index];
            if let Outcome::Placed(p) = &d.outcome {
                let (transfer_secs, _, _) = w.net.transfer(r.data_location, p.site, r.data_gib);
                prop_assert!(p.start >= r.release + transfer_secs, "starts before release + transfer");
                prop_assert_eq!(p.end, p.start + r.duration);
                if r.residency != 0 {
                    prop_assert!(r.residency & (1 << w.sites[p.site].jurisdiction) != 0, "residency");
                }
                if let Some((loc, ms)) = r.latency {
                    prop_assert!(w.net.latency(loc, p.site) <= ms, "latency target");
                }
                if !r.delayable || matches!(policy.kind, PolicyKind::LocalFifo | PolicyKind::LeastLoaded | PolicyKind::Cheapest | PolicyKind::GreenestNow) {
                    // Non-delaying rules start at the earliest time the site allows:
                    // one slot earlier must not fit.
                    prop_assert!(p.start >= r.release);
                }
                let from = p.start.0 / SLOT;
                let to = (p.end.0 - 1) / SLOT + 1;
                for k in from..to {
                    let cell = &mut used[p.site * HORIZON * 4 + k as usize];
                    for (c, u) in r.need.classes() {
                        cell[c] += u;
                        prop_assert!(cell[c] <= w.capacity[p.site].units[c], "site {} slot {} class {} overbooked", p.site, k, c);
                    }
                }
            }
        }
    }

    #[test]
    fn planning_is_deterministic(case in case()) {
        let w = world(&case);
        let policy = Policy::new(PolicyKind::ALL[case.policy]);
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let a = plan(&snapshot, &mut calendar.clone(), &w.requests, &policy);
        let b = plan(&snapshot, &mut calendar.clone(), &w.requests, &policy);
        prop_assert_eq!(a, b);
    }
}

/// The balanced policy with the Pareto guard never does worse on the forecast, in
/// money or carbon, than the local counterfactual for a job placed alone.
#[test]
fn pareto_guard_dominates_the_local_choice() {
    let case = Case {
        capacity: vec![[4, 2, 1], [4, 2, 1], [4, 2, 1]],
        jurisdiction: vec![0, 0, 1],
        latency: vec![5.0, 20.0, 40.0],
        tariff: vec![2.0, 0.2, 0.5],
        jobs: vec![(0, 7200, [2, 0, 1], Some(60_000), 0, None, true)],
        policy: 5,
        guard: true,
    };
    let w = world(&case);
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let local = plan(
        &snapshot,
        &mut Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0)),
        &w.requests,
        &Policy::new(PolicyKind::LocalFifo),
    );
    let balanced = plan(
        &snapshot,
        &mut Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0)),
        &w.requests,
        &Policy::new(PolicyKind::Balanced),
    );
    let (Outcome::Placed(l), Outcome::Placed(b)) = (&local[0].outcome, &balanced[0].outcome) else {
        panic!("both place the job")
    };
    let money = |t: &suanwang_sched::Terms| t.money().0;
    assert!(money(&b.chosen.terms) <= money(&l.chosen.terms) + 1e-9);
    assert!(b.chosen.terms.carbon_kg.0 <= l.chosen.terms.carbon_kg.0 + 1e-9);
    assert!(
        b.chosen.score <= l.chosen.score + 1e-9,
        "balanced is never worse than local on its own objective: {b:?}"
    );
    assert!(!b.alternatives.is_empty(), "the decision explains itself");
}
