//! Preemption in the core: a job of a higher class with a deadline it cannot
//! otherwise meet stops preemptible work of lower classes, never of an equal or
//! higher class; victims are stopped at most once and within each site's
//! budget; the preempting job starts after the grace period and meets its
//! deadline; capacity is never exceeded once the victims' bookings end at its
//! start; and planning stays deterministic.

use proptest::prelude::*;
use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::{
    Calendar, FairShare, Forecast, Held, Need, NetView, Outcome, Policy, PolicyKind, Preempt,
    Request, SiteCapacity, SiteView, Snapshot, plan_fair, plan_preempting,
};

const SLOT: i64 = 900;
const HORIZON: usize = 96;
/// The pass runs at this instant (a little into slot 8).
const NOW: i64 = 8 * SLOT + 100;

struct World {
    sites: Vec<SiteView>,
    capacity: Vec<SiteCapacity>,
    net: NetView,
    forecast: Forecast,
}

/// `cpus[s]` cpus at each site, one jurisdiction, one region 5 ms from all.
fn world(cpus: &[u32]) -> World {
    let n = cpus.len();
    let sites = (0..n)
        .map(|s| {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            price[0] = 1.0 + s as f64 * 0.25;
            power[0] = 0.1;
            SiteView {
                id: format!("s{s}"),
                jurisdiction: 0,
                price_cny_per_unit_hour: price,
                power_kw_per_unit: power,
                pue: 1.2,
                available: true,
            }
        })
        .collect();
    let capacity = cpus
        .iter()
        .map(|&c| {
            let mut units = [0; N_CLASSES];
            units[0] = c;
            SiteCapacity {
                units,
                watts: None,
                nodes: None,
            }
        })
        .collect();
    let n_loc = n + 1;
    let mut latency_ms = vec![10.0; n_loc * n];
    for s in 0..n {
        latency_ms[s * n + s] = 0.0;
        latency_ms[n * n + s] = 5.0;
    }
    let net = NetView {
        locations: (0..n)
            .map(|s| format!("s{s}"))
            .chain(["r".to_string()])
            .collect(),
        n_sites: n,
        jurisdictions: vec!["a".into()],
        location_jurisdiction: vec![0; n_loc],
        home_site: (0..n).chain([0]).collect(),
        latency_ms,
        bandwidth_gbps: vec![1.0; n_loc * n],
        price_cny_per_gb: vec![0.05; n_loc * n],
        metro: vec![false; n_loc * n],
    };
    let forecast = Forecast::from_fn(n, 0, SLOT, HORIZON, |s, t| {
        let hour = (t.0 / 3600) % 24;
        (0.5 + 0.1 * s as f64, 0.5 + 0.01 * hour as f64)
    });
    World {
        sites,
        capacity,
        net,
        forecast,
    }
}

fn cpu(n: u32) -> Need {
    let mut need = Need::default();
    need.units[0] = n;
    need
}

fn request(id: u64, cpus: u32, duration: i64, deadline: Option<i64>, class: u8) -> Request {
    Request {
        id: JobId(id),
        need: cpu(cpus),
        duration: SimDuration(duration),
        release: SimTime(NOW - 60),
        deadline: deadline.map(|d| SimTime(NOW + d)),
        origin: 0,
        data_location: 0,
        data_gib: 0.0,
        latency: None,
        residency: 0,
        priority: 0,
        delayable: true,
        pinned: None,
        class,
        preemptible: false,
        tenant: id as u32 % 3,
        spill: Vec::new(),
    }
}

/// A job holding `cpus` at `site` from the current slot for `slots` slots.
fn held(id: u64, site: usize, cpus: u32, class: u8, preemptible: bool, ran: Option<i64>) -> Held {
    let from = NOW.div_euclid(SLOT);
    Held {
        id: JobId(id),
        tenant: 7,
        site,
        need: cpu(cpus),
        class,
        preemptible,
        started: ran.map(|r| SimTime(NOW - r)),
        from,
        to: from + 12,
    }
}

/// Books `held` in a fresh calendar (skipping what does not fit) and returns
/// the calendar with the held jobs that were booked.
fn booked(w: &World, held: Vec<Held>) -> (Calendar, Vec<Held>) {
    let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(NOW));
    let mut kept = Vec::new();
    for h in held {
        if calendar.reserve(h.site, &h.need, h.from, h.to).is_ok() {
            calendar.charge_quota(h.tenant, h.site, &h.need, h.from, h.to);
            kept.push(h);
        }
    }
    (calendar, kept)
}

fn run(
    w: &World,
    calendar: &mut Calendar,
    pending: &[Request],
    held: &[Held],
    budget: Vec<u32>,
) -> Vec<suanwang_sched::Decision> {
    let snapshot = Snapshot {
        now: SimTime(NOW),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut preempt = Preempt::new(held, SimDuration(30), budget);
    plan_preempting(
        &snapshot,
        calendar,
        pending,
        &Policy::new(PolicyKind::Balanced),
        &FairShare::off(),
        &mut preempt,
    )
}

#[test]
fn an_urgent_job_stops_the_batch_job_in_its_way() {
    let w = world(&[4]);
    let (mut calendar, held) = booked(&w, vec![held(100, 0, 4, 0, true, Some(600))]);
    let urgent = request(1, 4, 600, Some(3600), 2);
    let decisions = run(&w, &mut calendar, &[urgent], &held, vec![3]);
    let Outcome::Placed(p) = &decisions[0].outcome else {
        panic!("the urgent job is placed: {:?}", decisions[0].outcome);
    };
    assert!(p.start.0 >= NOW + 30, "it starts after the grace period");
    assert!(p.end.0 <= NOW + 3600, "and meets its deadline");
    let victims = &decisions[0].preempts;
    assert_eq!(victims.len(), 1);
    assert_eq!(victims[0].job, JobId(100));
    assert_eq!(victims[0].ran, SimDuration(600));
    // 4 cpus for 10 minutes at 1 CNY per cpu-hour.
    assert!((victims[0].lost_cny - 4.0 * 600.0 / 3600.0).abs() < 1e-9);
}

#[test]
fn equal_or_higher_classes_and_unpreemptible_work_are_never_stopped() {
    let w = world(&[4]);
    for (victim_class, preemptible, job_class) in
        [(2, true, 2), (1, true, 1), (2, true, 1), (0, false, 2)]
    {
        let (mut calendar, held) = booked(
            &w,
            vec![held(100, 0, 4, victim_class, preemptible, Some(60))],
        );
        let job = request(1, 4, 600, Some(3600), job_class);
        let decisions = run(&w, &mut calendar, &[job], &held, vec![3]);
        assert!(
            decisions[0].preempts.is_empty(),
            "class {job_class} must not stop class {victim_class} (preemptible {preemptible})"
        );
        assert!(
            !matches!(&decisions[0].outcome, Outcome::Placed(p) if p.end.0 <= NOW + 3600),
            "without preemption it cannot meet its deadline"
        );
    }
}

#[test]
fn no_deadline_no_budget_or_a_deadline_met_anyway_means_no_preemption() {
    let w = world(&[4]);
    let cases = [
        // No deadline: it waits its turn.
        (request(1, 4, 600, None, 2), vec![3]),
        // The site's rate limit is spent.
        (request(1, 4, 600, Some(3600), 2), vec![0]),
        // The deadline is far enough to wait for the batch job to end.
        (request(1, 4, 600, Some(6 * 3600), 2), vec![3]),
    ];
    for (job, budget) in cases {
        let (mut calendar, held) = booked(&w, vec![held(100, 0, 4, 0, true, Some(60))]);
        let decisions = run(
            &w,
            &mut calendar,
            std::slice::from_ref(&job),
            &held,
            budget.clone(),
        );
        assert!(
            decisions[0].preempts.is_empty(),
            "{job:?} with budget {budget:?} preempts nothing"
        );
    }
}

#[test]
fn the_least_work_is_lost_and_only_what_is_needed_is_stopped() {
    let w = world(&[8]);
    // Three batch jobs of 4, 2 and 2 cpus; the urgent job needs 4.
    let (mut calendar, held) = booked(
        &w,
        vec![
            held(100, 0, 4, 0, true, Some(7200)),
            held(101, 0, 2, 0, true, Some(600)),
            held(102, 0, 2, 0, true, None),
        ],
    );
    let urgent = request(1, 4, 600, Some(3600), 2);
    let decisions = run(&w, &mut calendar, &[urgent], &held, vec![3]);
    let mut stopped: Vec<u64> = decisions[0].preempts.iter().map(|v| v.job.0).collect();
    stopped.sort();
    assert_eq!(
        stopped,
        vec![101, 102],
        "the two that lose least (one not started), not the one two hours in"
    );
}

/// (cpus per site, held jobs (site, cpus, class, preemptible, ran), pending
/// jobs (cpus, duration, deadline slack, class), budget per site).
type Gen = (
    Vec<u32>,
    Vec<(usize, u32, u8, bool, Option<i64>)>,
    Vec<(u32, i64, Option<i64>, u8)>,
    Vec<u32>,
);

fn gen_case() -> impl Strategy<Value = Gen> {
    (1usize..4).prop_flat_map(|n| {
        (
            prop::collection::vec(2u32..12, n),
            prop::collection::vec(
                (
                    0..n,
                    1u32..6,
                    0u8..3,
                    any::<bool>(),
                    prop::option::of(0i64..20_000),
                ),
                0..12,
            ),
            prop::collection::vec(
                (1u32..8, 60i64..7200, prop::option::of(0i64..10_000), 0u8..3),
                1..10,
            ),
            prop::collection::vec(0u32..4, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn preemption_keeps_every_rule((cpus, held_gen, pending_gen, budget) in gen_case()) {
        let w = world(&cpus);
        let held: Vec<Held> = held_gen
            .iter()
            .enumerate()
            .map(|(i, &(site, c, class, preemptible, ran))| {
                let mut h = held(100 + i as u64, site, c, class, preemptible, ran);
                h.to = h.from + 1 + (i as i64 * 5) % 20;
                h
            })
            .collect();
        let (calendar0, held) = booked(&w, held);
        let pending: Vec<Request> = pending_gen
            .iter()
            .enumerate()
            .map(|(i, &(c, d, slack, class))| {
                request(i as u64, c, d, slack.map(|s| d + 30 + s), class)
            })
            .collect();
        let mut calendar = calendar0.clone();
        let decisions = run(&w, &mut calendar, &pending, &held, budget.clone());

        // One decision per job.
        let mut seen: Vec<u64> = decisions.iter().map(|d| d.job.0).collect();
        seen.sort();
        prop_assert_eq!(seen, (0..pending.len() as u64).collect::<Vec<_>>());

        // Every victim is preemptible, of a lower class, at the site the job
        // goes to, stopped once, and within its site's budget.
        let mut stopped = vec![false; held.len()];
        let mut per_site = vec![0u32; cpus.len()];
        let mut cut = vec![None; held.len()];
        for d in &decisions {
            let request = &pending[d.index];
            if d.preempts.is_empty() {
                continue;
            }
            let Outcome::Placed(p) = &d.outcome else {
                return Err(TestCaseError::fail("a preempting job is placed"));
            };
            prop_assert!(p.start.0 >= NOW + 30, "starts after the grace period");
            prop_assert!(p.end <= request.deadline.expect("only deadlines preempt"));
            for v in &d.preempts {
                let h = &held[v.index];
                prop_assert_eq!(h.id, v.job);
                prop_assert!(h.preemptible, "{:?} is not preemptible", h.id);
                prop_assert!(h.class < request.class, "class {} stopped for class {}", h.class, request.class);
                prop_assert_eq!(h.site, p.site);
                prop_assert!(!stopped[v.index], "{:?} stopped twice", h.id);
                stopped[v.index] = true;
                per_site[h.site] += 1;
                cut[v.index] = Some(p.start.0.div_euclid(SLOT));
            }
        }
        for s in 0..cpus.len() {
            prop_assert!(per_site[s] <= budget[s], "site {} lost {} over its budget {}", s, per_site[s], budget[s]);
        }

        // Capacity: the held jobs (victims until the preempting job's start)
        // plus every placement never exceed a site's cpus in any slot.
        let base = NOW.div_euclid(SLOT);
        for (s, &site_cpus) in cpus.iter().enumerate() {
            for k in base..base + HORIZON as i64 {
                let mut used = 0;
                for (j, h) in held.iter().enumerate() {
                    let to = cut[j].map_or(h.to, |c: i64| c.max(h.from));
                    if h.site == s && h.from <= k && k < to {
                        used += h.need.units[0];
                    }
                }
                for d in &decisions {
                    if let Outcome::Placed(p) = &d.outcome
                        && p.site == s
                        && p.start.0.div_euclid(SLOT) <= k
                        && k <= (p.end.0 - 1).div_euclid(SLOT)
                    {
                        used += pending[d.index].need.units[0];
                    }
                }
                prop_assert!(used <= site_cpus, "site {} slot {}: {} of {}", s, k, used, site_cpus);
                prop_assert_eq!(site_cpus - used, calendar.free(s, 0, k), "the calendar agrees at site {} slot {}", s, k);
            }
        }

        // Deterministic, and with nothing to preempt it is plan_fair.
        let mut again = calendar0.clone();
        prop_assert_eq!(&decisions, &run(&w, &mut again, &pending, &held, budget.clone()));
        let snapshot = Snapshot { now: SimTime(NOW), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let policy = Policy::new(PolicyKind::Balanced);
        let mut a = calendar0.clone();
        let mut b = calendar0.clone();
        prop_assert_eq!(
            plan_fair(&snapshot, &mut a, &pending, &policy, &FairShare::off()),
            plan_preempting(&snapshot, &mut b, &pending, &policy, &FairShare::off(), &mut Preempt::new(&[], SimDuration(30), budget.clone()))
        );
    }
}
