//! Size and time of the LP lower bound on a synthetic instance of 5,000 jobs × 10
//! sites × 168 hour cells (each job may use every site; deadlines a day after the
//! run): `cargo bench -p suanwang-sched --bench lp`. One sample: it takes minutes.

use suanwang_model::N_CLASSES;
use suanwang_sched::lp::{LpInstance, LpJob, LpOption, lower_bound};
use suanwang_sched::{Need, SiteCapacity, Weights};

const JOBS: usize = 5_000;
const SITES: usize = 10;
const HOURS: usize = 168;

fn main() {
    divan::main();
}

fn hash(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn instance() -> LpInstance {
    let capacity = (0..SITES)
        .map(|_| {
            let mut units = [0; N_CLASSES];
            units[0] = 64;
            units[2] = 8;
            SiteCapacity {
                units,
                watts: None,
                nodes: None,
            }
        })
        .collect();
    let rate = (0..SITES * HOURS)
        .map(|i| {
            let (site, hour) = (i / HOURS, i % HOURS);
            0.3 + 0.02 * site as f64
                + 0.2 * ((hour % 24) as f64 / 24.0)
                + 0.001 * (hash(i as u64) % 50) as f64
        })
        .collect();
    let jobs = (0..JOBS)
        .map(|j| {
            let h = hash(j as u64 + 1_000_000);
            let release_h = (j * (HOURS - 30)) as f64 / JOBS as f64;
            let duration_h = 0.25 + (h % 400) as f64 / 100.0;
            let mut need = Need::default();
            need.units[0] = 1 + (h >> 12) as u32 % 8;
            if (h >> 20).is_multiple_of(5) {
                need.units[2] = 1;
            }
            LpJob {
                duration_h,
                release_h,
                deadline_h: Some(release_h + duration_h + 24.0),
                window_end_h: release_h + duration_h + 24.0,
                need,
                reject_cny: 100.0,
                options: (0..SITES)
                    .map(|s| LpOption {
                        site: s,
                        earliest_h: release_h + 0.01 * s as f64,
                        compute_per_hour: 0.12 * need.units[0] as f64 + 12.0 * need.units[2] as f64,
                        kw: 0.012 * need.units[0] as f64 + 0.48 * need.units[2] as f64,
                        transfer_cny: 0.05 * (hash(j as u64 * 31 + s as u64) % 20) as f64,
                    })
                    .collect(),
            }
        })
        .collect();
    LpInstance {
        start_h: 0,
        n_hours: HOURS,
        capacity,
        rate,
        site_min_rate: vec![0.3; SITES],
        weights: Weights::default(),
        job_cells: 48,
        jobs,
    }
}

#[divan::bench(sample_count = 1, sample_size = 1)]
fn lp_5000_jobs_10_sites_168_hours(bencher: divan::Bencher) {
    let instance = instance();
    bencher.bench_local(|| {
        let bound = lower_bound(&instance).expect("solves");
        eprintln!(
            "bound {:.1} CNY, {} variables, {} constraints",
            bound.value, bound.variables, bound.constraints
        );
        bound
    });
}
