//! Placement throughput of the scheduling core on a synthetic 50-site network with
//! a 7-day horizon of 15-minute slots (672 slots): `cargo bench -p suanwang-sched`.
//! Each iteration places a batch of 2,000 jobs into a fresh calendar; divan reports
//! items (placements) per second.

use divan::{Bencher, counter::ItemsCount};
use suanwang_model::{JobId, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::{
    Calendar, Forecast, Need, NetView, Policy, PolicyKind, Request, SiteCapacity, SiteView,
    Snapshot, plan,
};

const SITES: usize = 50;
const SLOTS: usize = 672;
const SLOT: i64 = 900;
const BATCH: usize = 2_000;

fn main() {
    divan::main();
}

struct Fixture {
    sites: Vec<SiteView>,
    capacity: Vec<SiteCapacity>,
    net: NetView,
    forecast: Forecast,
    requests: Vec<Request>,
}

fn hash(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fixture() -> Fixture {
    let sites: Vec<SiteView> = (0..SITES)
        .map(|s| {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            price[0] = 0.12;
            price[2] = 12.0;
            power[0] = 0.01;
            power[2] = 0.4;
            SiteView {
                id: format!("s{s}"),
                jurisdiction: s % 2,
                price_cny_per_unit_hour: price,
                power_kw_per_unit: power,
                pue: 1.2,
                available: true,
            }
        })
        .collect();
    let capacity = (0..SITES)
        .map(|_| {
            let mut units = [0; N_CLASSES];
            units[0] = 100_000;
            units[2] = 10_000;
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
        jurisdictions: vec!["a".into(), "b".into()],
        location_jurisdiction: (0..n_loc).map(|l| l % 2).collect(),
        home_site: (0..n_loc).map(|l| l % SITES).collect(),
        latency_ms: (0..n_loc * SITES)
            .map(|i| 1.0 + (hash(i as u64) % 60) as f64)
            .collect(),
        bandwidth_gbps: vec![100.0; n_loc * SITES],
        price_cny_per_gb: (0..n_loc * SITES)
            .map(|i| (hash(i as u64 + 7) % 10) as f64 * 0.01)
            .collect(),
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
    let requests = (0..BATCH)
        .map(|i| {
            let h = hash(i as u64);
            let mut need = Need::default();
            need.units[0] = 1 + (h % 16) as u32;
            if h.is_multiple_of(5) {
                need.units[2] = 1 + (h >> 8) as u32 % 8;
            }
            let duration = 900 + (h >> 16) as i64 % (12 * 3600);
            Request {
                id: JobId(i as u64),
                need,
                duration: SimDuration(duration),
                release: SimTime(0),
                deadline: Some(SimTime(duration + 24 * 3600)),
                origin: SITES + (i % 5),
                data_location: SITES + (i % 5),
                data_gib: (h >> 24) as f64 % 50.0,
                latency: None,
                residency: 0,
                priority: 0,
                delayable: true,
                pinned: None,
                class: 1,
                preemptible: false,
                tenant: 0,
                spill: Vec::new(),
            }
        })
        .collect();
    Fixture {
        sites,
        capacity,
        net,
        forecast,
        requests,
    }
}

fn run(bencher: Bencher, kind: PolicyKind, explain_top: usize) {
    let f = fixture();
    let policy = Policy {
        explain_top,
        ..Policy::new(kind)
    };
    let calendar = Calendar::new(f.capacity.clone(), SLOT, SLOTS, SimTime(0));
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| calendar.clone())
        .bench_local_refs(|calendar| {
            let snapshot = Snapshot {
                now: SimTime(0),
                sites: &f.sites,
                forecast: &f.forecast,
                network: &f.net,
            };
            plan(&snapshot, calendar, &f.requests, &policy)
        });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn balanced(bencher: Bencher) {
    run(bencher, PolicyKind::Balanced, 3);
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn balanced_no_explanations(bencher: Bencher) {
    run(bencher, PolicyKind::Balanced, 0);
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn local_fifo(bencher: Bencher) {
    run(bencher, PolicyKind::LocalFifo, 3);
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn greenest_now(bencher: Bencher) {
    run(bencher, PolicyKind::GreenestNow, 3);
}
