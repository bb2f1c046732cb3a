//! Property tests of the scheduling core's invariants: capacity is never exceeded,
//! no job starts before its release (plus transfer), residency and latency rules
//! hold, every job gets exactly one decision, and planning is deterministic.

use proptest::prelude::*;
use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::{
    Calendar, Forecast, Need, NetView, Nodes, Outcome, Policy, PolicyKind, Quota, Rejection,
    Request, SiteCapacity, SiteReason, SiteView, Snapshot, Wait, plan,
};
use suanwang_sched::{FairShare, ShareNode, TenantShare, fairshare::entitlements, plan_fair};

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
            SiteCapacity {
                units,
                watts: None,
                nodes: None,
            }
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
                    class: 1,
                    preemptible: false,
                    tenant: 0,
                    spill: Vec::new(),
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

        // Only a pending job says why, site by site, and what it says agrees
        // with the decision: no site the policy weighed has a start in the
        // horizon, and each site's rule holds.
        for d in &decisions {
            let r = &w.requests[d.index];
            let Outcome::Pending(_) = &d.outcome else {
                prop_assert!(d.why.is_none(), "only pending jobs carry a why");
                continue;
            };
            let why = d.why.as_ref().expect("a pending job says why");
            prop_assert_eq!(why.earliest, None);
            prop_assert_eq!(why.sites.len(), w.sites.len());
            for s in &why.sites {
                let allowed = r.residency == 0 || r.residency & (1 << w.sites[s.site].jurisdiction) != 0;
                match &s.reason {
                    SiteReason::Open { .. }
                    | SiteReason::Capacity { until: Some(_) }
                    | SiteReason::Quota { .. } => {
                        prop_assert!(false, "pending, yet site {} says {:?}", s.site, s.reason)
                    }
                    SiteReason::Residency => prop_assert!(!allowed),
                    SiteReason::Latency { ms, max_ms } => {
                        prop_assert!(allowed && ms > max_ms);
                    }
                    SiteReason::TooSmall { class, asked, offers } => {
                        prop_assert_eq!(*asked, r.need.units[class.index()]);
                        prop_assert!(offers < asked);
                    }
                    _ => prop_assert!(allowed),
                }
            }
        }

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

    /// No tenant exceeds its quota: at every slot, the units of a class that a
    /// tenant's new placements hold, plus what it held already, stay within each
    /// of its caps (network-wide and per site) wherever a new placement adds to it.
    #[test]
    fn no_tenant_exceeds_its_quota(
        case in case(),
        quotas in prop::collection::vec((0u32..3, 0usize..3, prop::option::of(0usize..4), 0u32..5), 0..8),
        held in prop::collection::vec((0u32..3, 0usize..4, [0u32..3, 0u32..2, 0u32..2], 0i64..20, 1i64..20), 0..4),
    ) {
        let mut w = world(&case);
        let n = w.sites.len();
        for (i, r) in w.requests.iter_mut().enumerate() {
            r.tenant = (i % 3) as u32;
        }
        let quotas: Vec<Quota> = quotas
            .into_iter()
            .map(|(tenant, class, site, cap)| Quota { tenant, class, site: site.map(|s| s % n), cap })
            .collect();
        let policy = Policy::new(PolicyKind::ALL[case.policy]);
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        calendar.set_quotas(quotas.clone());
        // Work held already (running jobs): counts against the quota whatever it is.
        let mut base = vec![[0u32; 3]; 3 * n * HORIZON];
        let cell = |tenant: u32, site: usize, k: usize| (tenant as usize * n + site) * HORIZON + k;
        for (tenant, site, units, from, len) in &held {
            let site = site % n;
            let mut need = Need::default();
            need.units[..3].copy_from_slice(units);
            calendar.charge_quota(*tenant, site, &need, *from, from + len);
            for k in *from..(from + len).min(HORIZON as i64) {
                for (slot, u) in base[cell(*tenant, site, k as usize)].iter_mut().zip(units) {
                    *slot += u;
                }
            }
        }
        let decisions = plan(&snapshot, &mut calendar, &w.requests, &policy);
        let mut added = vec![[0u32; 3]; 3 * n * HORIZON];
        for d in &decisions {
            let r = &w.requests[d.index];
            if let Outcome::Placed(p) = &d.outcome {
                let from = p.start.0 / SLOT;
                let to = ((p.end.0 - 1) / SLOT + 1).min(HORIZON as i64);
                for k in from..to {
                    for (slot, u) in added[cell(r.tenant, p.site, k as usize)].iter_mut().zip(&r.need.units) {
                        *slot += u;
                    }
                }
            }
        }
        for q in &quotas {
            let sites: Vec<usize> = match q.site { Some(s) => vec![s], None => (0..n).collect() };
            for k in 0..HORIZON {
                let sum = |v: &Vec<[u32; 3]>| sites.iter().map(|&s| v[cell(q.tenant, s, k)][q.class]).sum::<u32>();
                let (new, old) = (sum(&added), sum(&base));
                prop_assert!(
                    new == 0 || new + old <= q.cap,
                    "tenant {} class {} site {:?} slot {}: {} new + {} held > cap {}",
                    q.tenant, q.class, q.site, k, new, old, q.cap
                );
            }
        }
        // A job that waits on its quota would have fitted without it.
        for d in &decisions {
            if let Outcome::Pending(Wait::Quota) = &d.outcome {
                let r = &w.requests[d.index];
                prop_assert!(quotas.iter().any(|q| q.tenant == r.tenant && r.need.units[q.class] > 0));
            }
        }
    }

    /// Gangs: with sites that declare nodes, no slot ever holds more whole nodes
    /// than a site has; every placed gang's per-node share fits one node; and the
    /// gangs' whole nodes plus the other jobs' units (packed densely) fit the
    /// site in every class. A gang refused for nodes really has no site with as
    /// many nodes that fit.
    #[test]
    fn no_slot_books_more_nodes_than_a_site_has(
        case in case(),
        shapes in prop::collection::vec((1u32..5, [1u32..6, 0u32..4, 0u32..3], any::<bool>()), 4),
        gangs in prop::collection::vec(0u32..4, 40),
    ) {
        let mut w = world(&case);
        let n = w.sites.len();
        for (site, (count, per_node, declares)) in shapes.iter().enumerate().take(n) {
            let mut shape = [0; N_CLASSES];
            shape[..3].copy_from_slice(per_node);
            let cap = &mut w.capacity[site];
            cap.units = shape.map(|u| u * count);
            cap.nodes = declares.then_some(Nodes { count: *count, per_node: shape });
        }
        // Jobs with 2 or 3 nodes become gangs asking their units on each node.
        for (r, &nodes) in w.requests.iter_mut().zip(&gangs) {
            if nodes >= 2 {
                r.need.units = r.need.units.map(|u| u * nodes);
                r.need.nodes = nodes;
            }
        }
        let policy = Policy::new(PolicyKind::ALL[case.policy]);
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let decisions = plan(&snapshot, &mut calendar, &w.requests, &policy);
        let slots = HORIZON * 4;
        let mut nodes_used = vec![0u32; n * slots];
        let mut held = vec![[0u32; 3]; n * slots];
        for d in &decisions {
            let r = &w.requests[d.index];
            match &d.outcome {
                Outcome::Placed(p) => {
                    let cap = &w.capacity[p.site];
                    let mut units = [0u32; 3];
                    units.copy_from_slice(&r.need.units[..3]);
                    if r.need.nodes > 0 {
                        let shape = cap.nodes.expect("a gang runs only where nodes are declared");
                        prop_assert!(shape.count >= r.need.nodes);
                        for (c, held) in units.iter_mut().enumerate() {
                            prop_assert!(r.need.units[c] / r.need.nodes <= shape.per_node[c], "per-node share fits a node");
                            *held = shape.per_node[c] * r.need.nodes;
                        }
                    }
                    let from = p.start.0 / SLOT;
                    let to = (p.end.0 - 1) / SLOT + 1;
                    for k in from..to {
                        let i = p.site * slots + k as usize;
                        nodes_used[i] += r.need.nodes;
                        for c in 0..3 {
                            held[i][c] += units[c];
                            prop_assert!(held[i][c] <= cap.units[c], "site {} slot {} class {} holds {} of {}", p.site, k, c, held[i][c], cap.units[c]);
                        }
                        if let Some(shape) = cap.nodes {
                            prop_assert!(nodes_used[i] <= shape.count, "site {} slot {}: {} gang nodes of {}", p.site, k, nodes_used[i], shape.count);
                        }
                    }
                }
                Outcome::Rejected(Rejection::Nodes { asked, largest }) => {
                    prop_assert!(r.need.nodes > 0 && largest < asked);
                    let fits_somewhere = w.capacity.iter().enumerate().any(|(s, cap)| {
                        (r.residency == 0 || r.residency & (1 << w.sites[s].jurisdiction) != 0)
                            && cap.nodes.is_some_and(|shape| {
                                shape.count >= r.need.nodes
                                    && (0..3).all(|c| r.need.units[c].div_ceil(r.need.nodes) <= shape.per_node[c])
                            })
                    });
                    prop_assert!(!fits_somewhere, "refused for nodes, but a site has them");
                }
                _ => {}
            }
        }
        for site in 0..n {
            for k in calendar.base()..calendar.end() {
                let count = w.capacity[site].nodes.map_or(0, |s| s.count);
                prop_assert!(calendar.busy_nodes(site, k) <= count);
                prop_assert!(calendar.busy_nodes(site, k) >= nodes_used[site * slots + k as usize]);
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

/// A fair-share case: the random world's jobs split among three tenants with
/// random weights and prior usage.
fn fair_of(w: &World, weights: &[f64; 3], prior: &[f64; 3]) -> FairShare {
    let nodes: Vec<ShareNode> = (0..3)
        .map(|t| ShareNode {
            tenant: t,
            parent: None,
            weight: weights[t as usize],
        })
        .collect();
    let shares = entitlements(&nodes, &[0, 1, 2])
        .into_iter()
        .map(|(tenant, entitled)| TenantShare {
            tenant,
            entitled,
            usage: prior[tenant as usize],
        })
        .collect();
    let mut totals = [0u64; N_CLASSES];
    for c in &w.capacity {
        for (t, u) in totals.iter_mut().zip(&c.units) {
            *t += *u as u64;
        }
    }
    FairShare::new(shares, &totals)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With fair share, each job still gets exactly one decision per pass (it is
    /// placed at most once), the capacity and release rules hold, and the pass
    /// is deterministic.
    #[test]
    fn fair_share_decides_each_job_once_and_keeps_every_rule(
        case in case(),
        weights in [0.1f64..10.0, 0.1f64..10.0, 0.1f64..10.0],
        prior in [0.0f64..2.0, 0.0f64..2.0, 0.0f64..2.0],
    ) {
        let mut w = world(&case);
        for (i, r) in w.requests.iter_mut().enumerate() {
            r.tenant = (i * 7 % 3) as u32;
        }
        let fair = fair_of(&w, &weights, &prior);
        let policy = Policy::new(PolicyKind::ALL[case.policy]);
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let a = plan_fair(&snapshot, &mut calendar.clone(), &w.requests, &policy, &fair);
        let b = plan_fair(&snapshot, &mut calendar.clone(), &w.requests, &policy, &fair);
        prop_assert_eq!(&a, &b);
        let mut seen = vec![0u32; w.requests.len()];
        for d in &a {
            seen[d.index] += 1;
            prop_assert_eq!(d.job, w.requests[d.index].id);
        }
        prop_assert!(seen.iter().all(|n| *n == 1), "decisions per job: {:?}", seen);
        // Higher priorities are still considered first.
        let priorities: Vec<i32> = a.iter().map(|d| w.requests[d.index].priority).collect();
        prop_assert!(priorities.windows(2).all(|p| p[0] >= p[1]), "{:?}", priorities);
        // Capacity is never exceeded by what was placed.
        let n = w.sites.len();
        let mut used = vec![[0u32; 3]; n * HORIZON];
        for d in &a {
            if let Outcome::Placed(p) = &d.outcome {
                let r = &w.requests[d.index];
                prop_assert!(p.start >= r.release);
                let to = ((p.end.0 - 1) / SLOT + 1).min(HORIZON as i64);
                for k in p.start.0 / SLOT..to {
                    for (c, slot) in used[p.site * HORIZON + k as usize].iter_mut().enumerate() {
                        *slot += r.need.units[c];
                        prop_assert!(*slot <= case.capacity[p.site][c]);
                    }
                }
            }
        }
    }

    /// Two tenants with weights 1:3 (and, in general, a:b) that both have more
    /// work than the network holds: the cores they hold at once converge to the
    /// weights (within 5%), whatever their job sizes. (Least-loaded fills every
    /// site now before any later start, so "at once" is the first slot.)
    #[test]
    fn backlogged_tenants_share_in_proportion_to_their_weights(
        cores in 1000u32..2000,
        sites in 1usize..4,
        b_weight in prop::sample::select(vec![3.0f64, 1.0, 2.0, 5.0]),
        sizes in prop::collection::vec((1u32..5, 1u32..5), 1400),
    ) {
        let case = Case {
            capacity: vec![[cores / sites as u32, 0, 0]; sites],
            jurisdiction: vec![0; sites],
            latency: vec![5.0; sites],
            tariff: vec![0.5; sites],
            jobs: vec![],
            policy: 0,
            guard: false,
        };
        let mut w = world(&case);
        // Both tenants submit alternately, tenant 0 first; every job runs 4 h.
        for (i, (a, b)) in sizes.iter().enumerate() {
            for (tenant, size) in [(0u32, *a), (1u32, *b)] {
                let mut need = Need::default();
                need.units[0] = size;
                w.requests.push(Request {
                    id: JobId((2 * i) as u64 + tenant as u64),
                    need,
                    duration: SimDuration::hours(4),
                    release: SimTime(0),
                    deadline: None,
                    origin: sites,
                    data_location: sites,
                    data_gib: 0.0,
                    latency: None,
                    residency: 0,
                    priority: 0,
                    delayable: false,
                    pinned: None,
                    class: 1,
                    preemptible: false,
                    tenant,
                    spill: Vec::new(),
                });
            }
        }
        let fair = fair_of(&w, &[1.0, b_weight, 1.0], &[0.0; 3]);
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let decisions = plan_fair(&snapshot, &mut calendar, &w.requests, &Policy::new(PolicyKind::LeastLoaded), &fair);
        let mut held = [0u64; 2];
        for d in &decisions {
            if let Outcome::Placed(p) = &d.outcome
                && p.start == SimTime(0)
            {
                let r = &w.requests[d.index];
                held[r.tenant as usize] += r.need.units[0] as u64;
            }
        }
        let total: u64 = (cores / sites as u32) as u64 * sites as u64;
        prop_assert!(held[0] + held[1] + 4 * sites as u64 >= total, "the network is full at the start: {:?} of {}", held, total);
        let ratio = held[1] as f64 / held[0] as f64;
        prop_assert!(
            (ratio / b_weight - 1.0).abs() <= 0.05,
            "held {:?}: ratio {:.3}, weights 1:{}", held, ratio, b_weight
        );
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

/// A job that fits a site but not its tenant's quota waits, with the reason
/// `Quota`; the tenant's other job within the cap is placed, and another
/// tenant's is not capped.
#[test]
fn a_job_past_its_quota_waits_on_the_quota() {
    let case = Case {
        capacity: vec![[8, 0, 0]],
        jurisdiction: vec![0],
        latency: vec![5.0],
        tariff: vec![1.0],
        jobs: vec![
            (0, 3600, [3, 0, 0], None, 0, None, false),
            (0, 3600, [2, 0, 0], None, 0, None, false),
            (0, 3600, [3, 0, 0], None, 0, None, false),
        ],
        policy: 0,
        guard: false,
    };
    let mut w = world(&case);
    w.requests[0].tenant = 1;
    w.requests[1].tenant = 1;
    w.requests[2].tenant = 2;
    for r in &mut w.requests {
        r.priority = 0;
        r.data_gib = 0.0;
    }
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
    calendar.set_quotas(vec![Quota {
        tenant: 1,
        class: 0,
        site: None,
        cap: 4,
    }]);
    let decisions = plan(
        &snapshot,
        &mut calendar,
        &w.requests,
        &Policy::new(PolicyKind::LocalFifo),
    );
    let outcome = |i: usize| &decisions.iter().find(|d| d.index == i).unwrap().outcome;
    assert!(matches!(outcome(0), Outcome::Placed(p) if p.start == SimTime(0)));
    // Job 1 fits the site now but only after job 0 ends within the quota: a
    // non-delaying rule still places it at the first start the quota allows.
    let Outcome::Placed(p1) = outcome(1) else {
        panic!("placed after job 0: {:?}", outcome(1))
    };
    assert!(
        p1.start >= SimTime(3600),
        "waits for tenant 1's units: {p1:?}"
    );
    assert!(matches!(outcome(2), Outcome::Placed(p) if p.start == SimTime(0)));

    // A job larger than the cap never fits it: it waits on the quota.
    w.requests[1].need.units[0] = 5;
    let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
    calendar.set_quotas(vec![Quota {
        tenant: 1,
        class: 0,
        site: None,
        cap: 4,
    }]);
    let decisions = plan(
        &snapshot,
        &mut calendar,
        &w.requests,
        &Policy::new(PolicyKind::LocalFifo),
    );
    let waits = &decisions.iter().find(|d| d.index == 1).unwrap().outcome;
    assert_eq!(waits, &Outcome::Pending(Wait::Quota));
}

/// A spill-over case: the background jobs of `case` placed first, then one job
/// with tiers drawn as subsets of the sites (bit masks).
fn spill_case() -> impl Strategy<Value = (Case, Vec<u8>, usize)> {
    (case(), prop::collection::vec(0u8..16, 1..4), 0usize..4)
}

/// Whether `request` could start at `site` and end by its deadline (any time
/// in the horizon without one), on `calendar`: the independent check of a
/// tier's feasibility.
fn on_time_at(w: &World, calendar: &Calendar, request: &Request, site: usize) -> bool {
    if !w.sites[site].available
        || !suanwang_sched::admits(&w.sites[site], &w.capacity[site], &w.net, request, site)
    {
        return false;
    }
    let transfer = w
        .net
        .transfer(request.data_location, site, request.data_gib)
        .0;
    let earliest = request.release.0.max(0) + transfer.0;
    let mut ok = false;
    suanwang_sched::plan::feasible_starts(
        calendar,
        &request.need,
        site,
        earliest,
        calendar.end() * SLOT,
        request.duration.0,
        |s, _, _| {
            if request
                .deadline
                .is_none_or(|d| s + request.duration.0 <= d.0)
            {
                ok = true;
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        },
    );
    ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A job with an ordered spill-over list is placed from the first tier
    /// that has a start by its deadline, never from a later one; the tiers
    /// before are passed over with a reason for each of their sites; with
    /// no tier on time it takes the least late, and with nothing anywhere in
    /// its tiers it waits.
    #[test]
    fn a_spill_list_is_placed_on_its_first_feasible_tier((case, masks, which) in spill_case()) {
        let w = world(&case);
        // Policies that weigh every allowed site (the others weigh one per tier).
        let moving = [PolicyKind::LeastLoaded, PolicyKind::Cheapest, PolicyKind::GreenestNow, PolicyKind::Balanced];
        let mut policy = Policy::new(moving[case.policy % moving.len()]);
        policy.pareto_guard = case.guard;
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        plan(&snapshot, &mut calendar, &w.requests, &policy);
        let n = w.sites.len();
        let mut job = w.requests[which % w.requests.len()].clone();
        job.id = JobId(10_000);
        job.spill = masks
            .iter()
            .map(|m| (0..n).filter(|s| m & (1 << s) != 0).collect())
            .collect();
        let before = calendar.clone();
        let decisions = plan(&snapshot, &mut calendar, std::slice::from_ref(&job), &policy);
        let feasible: Vec<bool> = job
            .spill
            .iter()
            .map(|tier| tier.iter().any(|&s| on_time_at(&w, &before, &job, s)))
            .collect();
        match &decisions[0].outcome {
            Outcome::Placed(p) => {
                let tier = p.tier.expect("a job with a list is placed from a tier");
                prop_assert!(job.spill[tier].contains(&p.site), "placed in its tier: {p:?}");
                let first = feasible.iter().position(|&f| f);
                if p.chosen.terms.late_secs == SimDuration::ZERO {
                    prop_assert_eq!(Some(tier), first, "the first feasible tier, {:?}", feasible);
                } else {
                    prop_assert_eq!(first, None, "late only when no tier is on time");
                }
                // Every tier before is passed over, naming each of its sites once.
                let passed: Vec<usize> = p.passed_over.iter().map(|o| o.tier).collect();
                prop_assert_eq!(passed, (0..tier).collect::<Vec<_>>());
                let mut named: Vec<usize> = p
                    .passed_over
                    .iter()
                    .flat_map(|o| o.sites.iter().map(|s| s.site))
                    .collect();
                let mut expected: Vec<usize> = job.spill[..tier].iter().flatten().copied().collect();
                expected.sort_unstable();
                expected.dedup();
                named.sort_unstable();
                prop_assert_eq!(named, expected);
                for o in &p.passed_over {
                    for s in &o.sites {
                        prop_assert!(
                            !matches!(s.reason, SiteReason::Open { .. }) || case.guard,
                            "a passed-over site is not open: {s:?}"
                        );
                    }
                }
            }
            Outcome::Pending(_) => {
                prop_assert!(feasible.iter().all(|f| !f), "pending while a tier is on time: {feasible:?}");
            }
            Outcome::Rejected(_) => {
                prop_assert!(feasible.iter().all(|f| !f), "rejected while a tier is on time");
            }
        }
    }

    /// A list of one tier holding every site is the same decision as no list.
    #[test]
    fn one_tier_of_every_site_is_no_list(case in case()) {
        let w = world(&case);
        let mut policy = Policy::new(PolicyKind::ALL[case.policy]);
        policy.pareto_guard = case.guard;
        let snapshot = Snapshot { now: SimTime(0), sites: &w.sites, forecast: &w.forecast, network: &w.net };
        let plain = plan(&snapshot, &mut Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0)), &w.requests, &policy);
        let listed: Vec<Request> = w
            .requests
            .iter()
            .cloned()
            .map(|mut r| {
                r.spill = vec![(0..w.sites.len()).collect()];
                r
            })
            .collect();
        let mut with_list = plan(&snapshot, &mut Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0)), &listed, &policy);
        for d in &mut with_list {
            if let Outcome::Placed(p) = &mut d.outcome {
                prop_assert_eq!(p.tier, Some(0));
                prop_assert!(p.passed_over.is_empty());
                p.tier = None;
            }
        }
        prop_assert_eq!(plain, with_list);
    }
}

/// The issue's example: "my own site, then Hami, then anywhere". The own site
/// is full past the deadline, so the job goes to the second choice even though
/// a third site is cheaper, and the explanation names the first as passed over
/// for its deadline.
#[test]
fn a_job_spills_to_its_second_choice_and_names_the_first() {
    let case = Case {
        capacity: vec![[4, 0, 0], [4, 0, 0], [4, 0, 0]],
        jurisdiction: vec![0, 0, 0],
        latency: vec![5.0, 20.0, 40.0],
        tariff: vec![1.0, 1.5, 0.2],
        // The first job fills site 0 for 10 hours.
        jobs: vec![
            (0, 36_000, [4, 0, 0], None, 0, None, false),
            (0, 3600, [2, 0, 0], Some(3600), 0, None, true),
        ],
        policy: 5,
        guard: true,
    };
    let mut w = world(&case);
    w.requests[0].pinned = Some(0);
    w.requests[0].priority = 9;
    w.requests[1].spill = vec![vec![0], vec![1], vec![0, 1, 2]];
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    for kind in [PolicyKind::Balanced, PolicyKind::Cheapest] {
        let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
        let decisions = plan(&snapshot, &mut calendar, &w.requests, &Policy::new(kind));
        let Outcome::Placed(p) = &decisions[1].outcome else {
            panic!("{kind:?} places the job: {decisions:?}")
        };
        assert_eq!((p.site, p.tier), (1, Some(1)), "{kind:?}: {p:?}");
        assert_eq!(p.passed_over.len(), 1);
        assert_eq!(p.passed_over[0].tier, 0);
        assert!(
            matches!(
                p.passed_over[0].sites[..],
                [suanwang_sched::SiteWait {
                    site: 0,
                    reason: SiteReason::Deadline { .. }
                }]
            ),
            "{kind:?}: {:?}",
            p.passed_over
        );
    }
    // Without the list the cheapest site wins.
    w.requests[1].spill.clear();
    let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
    let decisions = plan(
        &snapshot,
        &mut calendar,
        &w.requests,
        &Policy::new(PolicyKind::Cheapest),
    );
    let Outcome::Placed(p) = &decisions[1].outcome else {
        panic!("placed")
    };
    assert_eq!(p.site, 2);
}

/// A choice whose sites have room but not within the tenant's quota is passed
/// over with the reason `quota`; another tenant's job with the same list stays
/// on its first choice.
#[test]
fn a_choice_past_the_tenants_quota_is_passed_over_for_the_quota() {
    let case = Case {
        capacity: vec![[8, 0, 0], [8, 0, 0]],
        jurisdiction: vec![0, 0],
        latency: vec![5.0, 5.0],
        tariff: vec![1.0, 1.0],
        // No deadline: with one, a choice the quota never allows within the
        // horizon is passed over for the deadline, the rule why_pending checks
        // first.
        jobs: vec![
            (0, 3600, [4, 0, 0], None, 0, None, false),
            (0, 3600, [4, 0, 0], None, 0, None, false),
        ],
        policy: 5,
        guard: false,
    };
    let mut w = world(&case);
    for (i, r) in w.requests.iter_mut().enumerate() {
        r.tenant = i as u32;
        r.spill = vec![vec![0], vec![1]];
    }
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut calendar = Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0));
    // Tenant 1 may hold 2 cores at site 0.
    calendar.set_quotas(vec![Quota {
        tenant: 1,
        class: 0,
        site: Some(0),
        cap: 2,
    }]);
    let decisions = plan(
        &snapshot,
        &mut calendar,
        &w.requests,
        &Policy::new(PolicyKind::Balanced),
    );
    let placed = |i: usize| match &decisions.iter().find(|d| d.index == i).unwrap().outcome {
        Outcome::Placed(p) => p.clone(),
        other => panic!("job {i} placed: {other:?}"),
    };
    let free = placed(0);
    assert_eq!((free.site, free.tier), (0, Some(0)));
    assert!(free.passed_over.is_empty());
    let capped = placed(1);
    assert_eq!((capped.site, capped.tier), (1, Some(1)));
    assert_eq!(
        capped.passed_over,
        vec![suanwang_sched::plan::PassedOver {
            tier: 0,
            sites: vec![suanwang_sched::SiteWait {
                site: 0,
                reason: SiteReason::Quota { until: None },
            }],
        }]
    );
}
