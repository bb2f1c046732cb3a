//! Builds the LP lower-bound instance of a simulation (on actuals: the bound is
//! what a clairvoyant scheduler could at best reach).

use crate::engine::reject_cost;
use crate::world::World;
use suanwang_sched::lp::{LpInstance, LpJob, LpOption};
use suanwang_sched::{Policy, Request, admits};

/// The LP instance for `requests` under `policy`'s weights: hour cells from the
/// first release, at most `max_hours` of them, at most `job_cells` per job and site.
pub fn lp_instance(
    world: &World,
    requests: &[Result<Request, String>],
    policy: &Policy,
    job_cells: usize,
    max_hours: usize,
) -> LpInstance {
    let w = policy.weights;
    let valid: Vec<&Request> = requests.iter().filter_map(|r| r.as_ref().ok()).collect();
    let start_h = valid
        .iter()
        .map(|r| r.release.0)
        .min()
        .unwrap_or(0)
        .div_euclid(3600);
    let window_end = |r: &Request| -> f64 {
        r.deadline
            .unwrap_or(r.release + policy.max_delay + r.duration)
            .as_hours()
    };
    let end_h = valid
        .iter()
        .map(|r| window_end(r).ceil() as i64)
        .max()
        .unwrap_or(start_h + 1);
    let n_hours = ((end_h - start_h).max(1) as usize).min(max_hours);
    let n_sites = world.sites.len();
    let slot = world.actuals.slot_secs;
    let per_hour = (3600 / slot).max(1);
    let rate_at = |site: usize, k: i64| -> f64 {
        let (tariff, carbon, green) = world.actual(site, k);
        w.energy * tariff + w.carbon_cny_per_kg() * carbon * (1.0 - green)
    };
    let mut rate = Vec::with_capacity(n_sites * n_hours);
    let mut site_min_rate = vec![f64::INFINITY; n_sites];
    for (site, min_rate) in site_min_rate.iter_mut().enumerate() {
        for h in 0..n_hours as i64 {
            let first = (start_h + h) * 3600 / slot;
            let r = (first..first + per_hour)
                .map(|k| rate_at(site, k))
                .fold(f64::INFINITY, f64::min);
            rate.push(r);
        }
        // The least rate at any time a job might run: the precomputed span and a
        // whole year of slots (the shapes repeat yearly).
        let year = 366 * 86400 / slot;
        let span = world.actuals.n_slots as i64;
        for k in 0..span.max(year) {
            *min_rate = min_rate.min(rate_at(site, k));
        }
    }
    let jobs = valid
        .iter()
        .map(|r| {
            let options = (0..n_sites)
                .filter(|&s| admits(&world.sites[s], &world.capacity[s], &world.net, r, s))
                .map(|s| {
                    let view = &world.sites[s];
                    let (secs, cny, _) = world.net.transfer(r.data_location, s, r.data_gib);
                    LpOption {
                        site: s,
                        earliest_h: (r.release + secs).as_hours(),
                        compute_per_hour: view.price_per_hour(&r.need),
                        kw: view.facility_kw(&r.need),
                        transfer_cny: cny,
                    }
                })
                .collect();
            LpJob {
                duration_h: r.duration.as_hours(),
                release_h: r.release.as_hours(),
                deadline_h: r.deadline.map(|d| d.as_hours()),
                window_end_h: window_end(r),
                need: r.need,
                reject_cny: reject_cost(world, policy, r),
                options,
            }
        })
        .collect();
    LpInstance {
        start_h,
        n_hours,
        capacity: world.capacity.clone(),
        rate,
        site_min_rate,
        weights: w,
        job_cells,
        jobs,
    }
}
