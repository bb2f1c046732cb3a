//! Why a job waits, site by site: a drained site says `unavailable`, a site out
//! of the job's jurisdictions says `residency`, one beyond its latency target
//! says `latency`, a site full over the horizon says `capacity` with no end, a
//! site full until a time says `capacity` until that time (and the job's
//! earliest start is that time), a tenant at its quota says `quota`, and a
//! deadline the site can no longer meet says `deadline`.

use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::{
    Calendar, Forecast, Need, NetView, Outcome, Policy, PolicyKind, Quota, Request, SiteCapacity,
    SiteReason, SiteView, Snapshot, Wait, plan, why_pending,
};

const SLOT: i64 = 900;
const HORIZON: usize = 96;

/// Three sites of 4 cpus each: s0 and s2 in jurisdiction 0, s1 in
/// jurisdiction 1; one region location "r" 5 ms from s0 and s1, 50 ms from s2.
struct World {
    sites: Vec<SiteView>,
    capacity: Vec<SiteCapacity>,
    net: NetView,
    forecast: Forecast,
}

fn world() -> World {
    let n = 3;
    let sites = (0..n)
        .map(|s| {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            price[0] = 1.0 + s as f64;
            power[0] = 0.1;
            SiteView {
                id: format!("s{s}"),
                jurisdiction: usize::from(s == 1),
                price_cny_per_unit_hour: price,
                power_kw_per_unit: power,
                pue: 1.2,
                available: true,
            }
        })
        .collect();
    let capacity = (0..n)
        .map(|_| {
            let mut units = [0; N_CLASSES];
            units[0] = 4;
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
    }
    latency_ms[n * n] = 5.0;
    latency_ms[n * n + 1] = 5.0;
    latency_ms[n * n + 2] = 50.0;
    let net = NetView {
        locations: vec!["s0".into(), "s1".into(), "s2".into(), "r".into()],
        n_sites: n,
        jurisdictions: vec!["a".into(), "b".into()],
        location_jurisdiction: vec![0, 1, 0, 0],
        home_site: vec![0, 1, 2, 0],
        latency_ms,
        bandwidth_gbps: vec![1.0; n_loc * n],
        price_cny_per_gb: vec![0.05; n_loc * n],
        metro: vec![false; n_loc * n],
    };
    let forecast = Forecast::from_fn(n, 0, SLOT, HORIZON, |_, _| (1.0, 0.5));
    World {
        sites,
        capacity,
        net,
        forecast,
    }
}

fn job(cpus: u32, hours: i64) -> Request {
    let mut need = Need::default();
    need.units[0] = cpus;
    Request {
        id: JobId(1),
        need,
        duration: SimDuration(hours * 3600),
        release: SimTime(0),
        deadline: None,
        origin: 3,
        data_location: 3,
        data_gib: 0.0,
        latency: None,
        residency: 0,
        priority: 0,
        delayable: false,
        pinned: None,
        class: 1,
        preemptible: false,
        tenant: 0,
        spill: Vec::new(),
    }
}

fn calendar(w: &World) -> Calendar {
    Calendar::new(w.capacity.clone(), SLOT, HORIZON, SimTime(0))
}

/// Books all 4 cpus of `site` over slots `from..to`.
fn fill(calendar: &mut Calendar, site: usize, from: i64, to: i64) {
    let mut need = Need::default();
    need.units[0] = 4;
    calendar.reserve(site, &need, from, to).unwrap();
}

fn reasons(why: &suanwang_sched::WhyPending) -> Vec<(usize, SiteReason)> {
    why.sites
        .iter()
        .map(|s| (s.site, s.reason.clone()))
        .collect()
}

#[test]
fn a_pending_job_says_drained_residency_latency_and_capacity_per_site() {
    let mut w = world();
    w.sites[2].available = false;
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut cal = calendar(&w);
    fill(&mut cal, 0, 0, HORIZON as i64);
    let mut request = job(2, 1);
    request.residency = 1; // jurisdiction 0: s0 and s2
    let decisions = plan(
        &snapshot,
        &mut cal,
        std::slice::from_ref(&request),
        &Policy::new(PolicyKind::Balanced),
    );
    assert_eq!(
        decisions[0].outcome,
        Outcome::Pending(Wait::NoCapacityInHorizon)
    );
    let why = decisions[0].why.as_ref().expect("pending says why");
    assert_eq!(why.earliest, None);
    assert_eq!(
        reasons(why),
        vec![
            (0, SiteReason::Capacity { until: None }),
            (1, SiteReason::Residency),
            (2, SiteReason::Unavailable),
        ]
    );

    // A latency target of 20 ms from the region rules out s2 first.
    request.residency = 0;
    request.latency = Some((3, 20.0));
    w.sites[1].available = false;
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let decisions = plan(
        &snapshot,
        &mut cal,
        std::slice::from_ref(&request),
        &Policy::new(PolicyKind::Balanced),
    );
    let why = decisions[0].why.as_ref().expect("pending says why");
    assert_eq!(
        reasons(why),
        vec![
            (0, SiteReason::Capacity { until: None }),
            (1, SiteReason::Unavailable),
            (
                2,
                SiteReason::Latency {
                    ms: 50.0,
                    max_ms: 20.0
                }
            ),
        ]
    );
}

#[test]
fn every_site_drained_waits_on_unavailable_sites() {
    let mut w = world();
    for s in &mut w.sites {
        s.available = false;
    }
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut cal = calendar(&w);
    let decisions = plan(
        &snapshot,
        &mut cal,
        &[job(1, 1)],
        &Policy::new(PolicyKind::Balanced),
    );
    assert_eq!(
        decisions[0].outcome,
        Outcome::Pending(Wait::SitesUnavailable)
    );
    let why = decisions[0].why.as_ref().unwrap();
    assert!(
        why.sites
            .iter()
            .all(|s| s.reason == SiteReason::Unavailable),
        "{why:?}"
    );
    assert_eq!(why.earliest, None);
}

#[test]
fn a_full_site_says_capacity_until_it_frees_and_a_small_one_says_too_small() {
    let w = world();
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut cal = calendar(&w);
    fill(&mut cal, 0, 0, 8);
    fill(&mut cal, 1, 0, 12);
    fill(&mut cal, 2, 0, HORIZON as i64);
    let why = why_pending(
        &snapshot,
        &cal,
        &job(2, 1),
        &Policy::new(PolicyKind::Balanced),
    );
    assert_eq!(
        reasons(&why),
        vec![
            (
                0,
                SiteReason::Capacity {
                    until: Some(SimTime(8 * SLOT))
                }
            ),
            (
                1,
                SiteReason::Capacity {
                    until: Some(SimTime(12 * SLOT))
                }
            ),
            (2, SiteReason::Capacity { until: None }),
        ]
    );
    assert_eq!(why.earliest, Some(SimTime(8 * SLOT)));

    // Five cpus: every 4-cpu site is too small for good.
    let why = why_pending(
        &snapshot,
        &cal,
        &job(5, 1),
        &Policy::new(PolicyKind::Balanced),
    );
    assert!(why.sites.iter().all(|s| matches!(
        s.reason,
        SiteReason::TooSmall {
            asked: 5,
            offers: 4,
            ..
        }
    )));

    // Nothing booked: the site is open now; a policy that stays home names
    // the other sites `policy`.
    let cal = calendar(&w);
    let why = why_pending(
        &snapshot,
        &cal,
        &job(1, 1),
        &Policy::new(PolicyKind::LocalFifo),
    );
    assert_eq!(
        reasons(&why),
        vec![
            (0, SiteReason::Open { at: SimTime(0) }),
            (1, SiteReason::Policy),
            (2, SiteReason::Policy),
        ]
    );
}

#[test]
fn a_tenant_at_its_quota_says_quota_and_a_lost_deadline_says_deadline() {
    let w = world();
    let snapshot = Snapshot {
        now: SimTime(0),
        sites: &w.sites,
        forecast: &w.forecast,
        network: &w.net,
    };
    let mut cal = calendar(&w);
    cal.set_quotas(vec![Quota {
        tenant: 0,
        class: 0,
        site: None,
        cap: 2,
    }]);
    let mut decisions = plan(
        &snapshot,
        &mut cal,
        &[job(3, 1)],
        &Policy::new(PolicyKind::Balanced),
    );
    assert_eq!(decisions[0].outcome, Outcome::Pending(Wait::Quota));
    let why = decisions.remove(0).why.unwrap();
    assert!(
        why.sites
            .iter()
            .all(|s| s.reason == SiteReason::Quota { until: None }),
        "{why:?}"
    );

    // The tenant holds its 2 cpus for the first 4 slots: its next job can
    // start when they free, which the quota, not the site, decides.
    cal.charge_quota(0, 0, &job(2, 1).need, 0, 4);
    let why = why_pending(
        &snapshot,
        &cal,
        &job(2, 1),
        &Policy::new(PolicyKind::Balanced),
    );
    assert!(
        why.sites.iter().all(|s| s.reason
            == SiteReason::Quota {
                until: Some(SimTime(4 * SLOT))
            }),
        "{why:?}"
    );
    assert_eq!(why.earliest, Some(SimTime(4 * SLOT)));

    // A job due in 2 hours at a site full for 3 can no longer make it there.
    let mut cal = calendar(&w);
    fill(&mut cal, 0, 0, 12);
    let mut request = job(1, 1);
    request.deadline = Some(SimTime(7200));
    request.pinned = Some(0);
    let why = why_pending(
        &snapshot,
        &cal,
        &request,
        &Policy::new(PolicyKind::Balanced),
    );
    assert_eq!(
        reasons(&why),
        vec![(
            0,
            SiteReason::Deadline {
                deadline: SimTime(7200),
                until: Some(SimTime(12 * SLOT))
            }
        )]
    );
}

#[test]
fn the_reasons_read_as_kebab_case_json() {
    let reason = suanwang_sched::SiteWait {
        site: 2,
        reason: SiteReason::Capacity {
            until: Some(SimTime(900)),
        },
    };
    assert_eq!(
        serde_json::to_value(&reason).unwrap(),
        serde_json::json!({"site": 2, "reason": "capacity", "until": 900})
    );
    let power = SiteReason::PowerCap {
        watts: 10,
        cap_watts: 5,
    };
    assert_eq!(serde_json::to_value(&power).unwrap()["reason"], "power-cap");
}
