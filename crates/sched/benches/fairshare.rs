//! The cost of weighted fair share: one scheduler pass over 10,000 pending jobs
//! from 100 tenants, on a 20-site network with a 7-day horizon of 15-minute slots
//! where demand exceeds capacity, with the jobs in priority order alone (`plan`,
//! as before fair share) and in fair-share order (`plan_fair`):
//! `cargo bench -p suanwang-sched --bench fairshare`.

use divan::{Bencher, counter::ItemsCount};
use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::fairshare::entitlements;
use suanwang_sched::{
    Calendar, FairShare, Forecast, Need, NetView, Policy, PolicyKind, Request, ShareNode,
    SiteCapacity, SiteView, Snapshot, TenantShare, plan, plan_fair,
};

const SITES: usize = 20;
const SLOTS: usize = 672;
const SLOT: i64 = 900;
const JOBS: usize = 10_000;
const TENANTS: u32 = 100;
const CORES: u32 = 2_000;

fn main() {
    divan::main();
}

fn hash(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Fixture {
    sites: Vec<SiteView>,
    capacity: Vec<SiteCapacity>,
    net: NetView,
    forecast: Forecast,
    requests: Vec<Request>,
    fair: FairShare,
}

fn fixture() -> Fixture {
    let sites: Vec<SiteView> = (0..SITES)
        .map(|s| {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            price[0] = 0.12 + 0.002 * s as f64;
            power[0] = 0.01;
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
    let capacity: Vec<SiteCapacity> = (0..SITES)
        .map(|_| {
            let mut units = [0; N_CLASSES];
            units[0] = CORES;
            SiteCapacity {
                units,
                watts: None,
                nodes: None,
            }
        })
        .collect();
    let n_loc = SITES + 5;
    let net = NetView {
        locations: (0..n_loc).map(|l| format!("l{l}")).collect(),
        n_sites: SITES,
        jurisdictions: vec!["a".into()],
        location_jurisdiction: vec![0; n_loc],
        home_site: (0..n_loc).map(|l| l % SITES).collect(),
        latency_ms: (0..n_loc * SITES)
            .map(|i| 1.0 + (hash(i as u64) % 60) as f64)
            .collect(),
        bandwidth_gbps: vec![100.0; n_loc * SITES],
        price_cny_per_gb: vec![0.01; n_loc * SITES],
        metro: vec![false; n_loc * SITES],
    };
    let forecast = Forecast::from_fn(SITES, 0, SLOT, SLOTS, |s, t| {
        let hour = (t.0 / 3600 % 24) as f64;
        let h = hash((s as u64) << 32 ^ t.0 as u64) % 100;
        (
            0.3 + 0.01 * s as f64 + 0.2 * (hour / 24.0),
            0.3 + 0.004 * h as f64,
        )
    });
    // 10,000 jobs of 1-64 cores for 15 min to 12 h: about three times what the
    // network can run at once.
    let requests: Vec<Request> = (0..JOBS)
        .map(|i| {
            let h = hash(i as u64);
            let mut need = Need::default();
            need.units[0] = 1 + (h % 64) as u32;
            let duration = 900 + (h >> 16) as i64 % (12 * 3600);
            Request {
                id: JobId(i as u64),
                need,
                duration: SimDuration(duration),
                release: SimTime(0),
                deadline: Some(SimTime(duration + 48 * 3600)),
                origin: SITES + (i % 5),
                data_location: SITES + (i % 5),
                data_gib: (h >> 24) as f64 % 20.0,
                latency: None,
                residency: 0,
                priority: (h >> 40) as i32 % 2,
                delayable: true,
                pinned: None,
                class: 1,
                preemptible: false,
                tenant: (hash(i as u64 ^ 0xfeed) % TENANTS as u64) as u32,
                spill: Vec::new(),
            }
        })
        .collect();
    // Ten companies of ten departments, weights 1-4, some with prior usage.
    let nodes: Vec<ShareNode> = (0..TENANTS)
        .map(|t| ShareNode {
            tenant: t,
            parent: (t % 10 != 0).then_some(t - t % 10),
            weight: 1.0 + (hash(t as u64) % 4) as f64,
        })
        .collect();
    let active: Vec<u32> = (0..TENANTS).collect();
    let shares = entitlements(&nodes, &active)
        .into_iter()
        .map(|(tenant, entitled)| TenantShare {
            tenant,
            entitled,
            usage: (hash(tenant as u64 + 1) % 100) as f64 / 1000.0,
        })
        .collect();
    let mut totals = [0u64; N_CLASSES];
    totals[0] = CORES as u64 * SITES as u64;
    Fixture {
        sites,
        capacity,
        net,
        forecast,
        requests,
        fair: FairShare::new(shares, &totals),
    }
}

fn run(bencher: Bencher, fair: bool) {
    let f = fixture();
    let policy = Policy::new(PolicyKind::Balanced);
    let calendar = Calendar::new(f.capacity.clone(), SLOT, SLOTS, SimTime(0));
    bencher
        .counter(ItemsCount::new(JOBS))
        .with_inputs(|| calendar.clone())
        .bench_local_refs(|calendar| {
            let snapshot = Snapshot {
                now: SimTime(0),
                sites: &f.sites,
                forecast: &f.forecast,
                network: &f.net,
            };
            if fair {
                plan_fair(&snapshot, calendar, &f.requests, &policy, &f.fair)
            } else {
                plan(&snapshot, calendar, &f.requests, &policy)
            }
        });
}

/// Priority order alone (the pass before fair share).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn pass_10k_jobs_100_tenants_priority_order(bencher: Bencher) {
    run(bencher, false);
}

/// Weighted fair-share order.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn pass_10k_jobs_100_tenants_fair_share(bencher: Bencher) {
    run(bencher, true);
}
