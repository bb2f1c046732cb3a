//! What the scheduler sees: sites, forecasts of price and carbon per slot, the
//! network between locations, and compact job requests. Built by a driver (the
//! simulator, the control plane) from its own sources; nothing here does IO.

use crate::calendar::Need;
use serde::{Deserialize, Serialize};
use suanwang_model::{Cny, JobId, KgCo2, Kwh, N_CLASSES, SimDuration, SimTime};

/// A site as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteView {
    /// Site id, for explanations.
    pub id: String,
    /// Index of its jurisdiction in [`NetView::jurisdictions`].
    pub jurisdiction: usize,
    /// Price per unit-hour, CNY, per class.
    pub price_cny_per_unit_hour: [f64; N_CLASSES],
    /// IT power per busy unit, kW, per class.
    pub power_kw_per_unit: [f64; N_CLASSES],
    /// Power usage effectiveness.
    pub pue: f64,
    /// Whether new work may be placed here (false when drained or unreachable).
    pub available: bool,
}

impl SiteView {
    /// Compute price of `need` for one hour, CNY.
    pub fn price_per_hour(&self, need: &Need) -> f64 {
        // A dense dot product: zero units add exact zeros, so the sum equals the
        // sparse one, without branches.
        need.units
            .iter()
            .zip(&self.price_cny_per_unit_hour)
            .map(|(u, p)| *u as f64 * p)
            .sum()
    }
    /// Facility power of `need` (IT power × PUE), kW.
    pub fn facility_kw(&self, need: &Need) -> f64 {
        need.units
            .iter()
            .zip(&self.power_kw_per_unit)
            .map(|(u, p)| *u as f64 * p)
            .sum::<f64>()
            * self.pue
    }
}

/// Forecast electricity price and effective carbon intensity (after green power)
/// per site and slot, with prefix sums so a window's total costs O(1).
#[derive(Debug, Clone)]
pub struct Forecast {
    /// First slot covered.
    pub base: i64,
    /// Slot length, seconds.
    pub slot_secs: i64,
    /// Number of slots covered.
    pub n_slots: usize,
    tariff: Vec<f32>,
    carbon: Vec<f32>,
    prefix_tariff: Vec<f64>,
    prefix_carbon: Vec<f64>,
    mean_tariff: Vec<f64>,
    mean_carbon: Vec<f64>,
    min_tariff: Vec<f64>,
    min_carbon: Vec<f64>,
}

impl Forecast {
    /// Builds a forecast for `n_sites` over slots `base .. base + n_slots`, calling
    /// `value(site, slot_start)` for (CNY per kWh, kg CO2 per kWh after green power).
    pub fn from_fn(
        n_sites: usize,
        base: i64,
        slot_secs: i64,
        n_slots: usize,
        mut value: impl FnMut(usize, SimTime) -> (f64, f64),
    ) -> Forecast {
        let mut tariff = Vec::with_capacity(n_sites * n_slots);
        let mut carbon = Vec::with_capacity(n_sites * n_slots);
        for site in 0..n_sites {
            for k in 0..n_slots {
                let (t, c) = value(site, SimTime((base + k as i64) * slot_secs));
                tariff.push(t as f32);
                carbon.push(c as f32);
            }
        }
        let mut forecast = Forecast {
            base,
            slot_secs,
            n_slots,
            tariff,
            carbon,
            prefix_tariff: Vec::new(),
            prefix_carbon: Vec::new(),
            mean_tariff: Vec::new(),
            mean_carbon: Vec::new(),
            min_tariff: Vec::new(),
            min_carbon: Vec::new(),
        };
        forecast.rebuild_prefix(n_sites);
        forecast
    }

    fn rebuild_prefix(&mut self, n_sites: usize) {
        let hours = self.slot_secs as f64 / 3600.0;
        let stride = self.n_slots + 1;
        self.prefix_tariff = vec![0.0; n_sites * stride];
        self.prefix_carbon = vec![0.0; n_sites * stride];
        self.mean_tariff = vec![0.0; n_sites];
        self.mean_carbon = vec![0.0; n_sites];
        self.min_tariff = Vec::with_capacity(n_sites);
        self.min_carbon = Vec::with_capacity(n_sites);
        for site in 0..n_sites {
            for k in 0..self.n_slots {
                let i = site * self.n_slots + k;
                let p = site * stride + k;
                self.prefix_tariff[p + 1] = self.prefix_tariff[p] + self.tariff[i] as f64 * hours;
                self.prefix_carbon[p + 1] = self.prefix_carbon[p] + self.carbon[i] as f64 * hours;
            }
            let total_hours = self.n_slots as f64 * hours;
            self.mean_tariff[site] = self.prefix_tariff[site * stride + self.n_slots] / total_hours;
            self.mean_carbon[site] = self.prefix_carbon[site * stride + self.n_slots] / total_hours;
            let row = site * self.n_slots..(site + 1) * self.n_slots;
            let min = |values: &[f32]| {
                values
                    .iter()
                    .map(|v| *v as f64)
                    .fold(f64::INFINITY, f64::min)
            };
            self.min_tariff
                .push(min(&self.tariff[row.clone()]).min(self.mean_tariff[site]));
            self.min_carbon
                .push(min(&self.carbon[row]).min(self.mean_carbon[site]));
        }
    }

    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.mean_tariff.len()
    }

    /// Forecast price at `site` in `slot`, CNY per kWh (the window's mean outside it).
    pub fn tariff(&self, site: usize, slot: i64) -> f64 {
        let k = slot - self.base;
        if (0..self.n_slots as i64).contains(&k) {
            self.tariff[site * self.n_slots + k as usize] as f64
        } else {
            self.mean_tariff[site]
        }
    }

    /// Forecast effective carbon at `site` in `slot`, kg per kWh.
    pub fn carbon(&self, site: usize, slot: i64) -> f64 {
        let k = slot - self.base;
        if (0..self.n_slots as i64).contains(&k) {
            self.carbon[site * self.n_slots + k as usize] as f64
        } else {
            self.mean_carbon[site]
        }
    }

    /// A lower bound on (w_t × tariff + w_c × carbon) at `site` at any time: the
    /// weighted sum of the smallest price and the smallest carbon (weights ≥ 0).
    pub fn min_rate(&self, site: usize, w_tariff: f64, w_carbon: f64) -> f64 {
        w_tariff * self.min_tariff[site] + w_carbon * self.min_carbon[site]
    }

    /// Sum over slots `from..to` at `site` of (price, carbon) × slot hours; slots
    /// outside the window count at the window's mean.
    #[inline]
    pub fn window(&self, site: usize, from: i64, to: i64) -> (f64, f64) {
        let stride = self.n_slots + 1;
        let hours = self.slot_secs as f64 / 3600.0;
        let lo = (from - self.base).clamp(0, self.n_slots as i64) as usize;
        let hi = (to - self.base).clamp(0, self.n_slots as i64) as usize;
        let outside = ((to - from) - (hi as i64 - lo as i64)).max(0) as f64 * hours;
        let row = site * stride;
        let (mut t, mut c) = if hi > lo {
            (
                self.prefix_tariff[row + hi] - self.prefix_tariff[row + lo],
                self.prefix_carbon[row + hi] - self.prefix_carbon[row + lo],
            )
        } else {
            (0.0, 0.0)
        };
        t += outside * self.mean_tariff[site];
        c += outside * self.mean_carbon[site];
        (t, c)
    }
}

/// The network as the scheduler sees it: from every location (site or demand region)
/// to every site.
#[derive(Debug, Clone, PartialEq)]
pub struct NetView {
    /// Location ids: sites first (same order as the sites), then regions.
    pub locations: Vec<String>,
    /// Number of sites.
    pub n_sites: usize,
    /// Jurisdiction names; sites and locations refer to them by index.
    pub jurisdictions: Vec<String>,
    /// Jurisdiction of each location.
    pub location_jurisdiction: Vec<usize>,
    /// Site serving each location locally.
    pub home_site: Vec<usize>,
    /// Round-trip latency from location to site, ms: `[location * n_sites + site]`.
    pub latency_ms: Vec<f64>,
    /// Bandwidth from location to site, Gbit/s.
    pub bandwidth_gbps: Vec<f64>,
    /// Price from location to site, CNY per GB.
    pub price_cny_per_gb: Vec<f64>,
    /// Whether location and site are in one metro area (data need not cross a
    /// long-haul link): `[location * n_sites + site]`.
    pub metro: Vec<bool>,
}

impl NetView {
    /// Index of location `id`.
    pub fn location(&self, id: &str) -> Option<usize> {
        self.locations.iter().position(|l| l == id)
    }
    /// Index of jurisdiction `name`.
    pub fn jurisdiction(&self, name: &str) -> Option<usize> {
        self.jurisdictions.iter().position(|j| j == name)
    }
    #[inline]
    fn cell(&self, location: usize, site: usize) -> usize {
        location * self.n_sites + site
    }
    /// Latency from `location` to `site`, ms.
    pub fn latency(&self, location: usize, site: usize) -> f64 {
        self.latency_ms[self.cell(location, site)]
    }
    /// Time and price of moving `gib` from `location` to `site`: (time, CNY, GB);
    /// nothing within one metro area.
    pub fn transfer(&self, location: usize, site: usize, gib: f64) -> (SimDuration, f64, f64) {
        let i = self.cell(location, site);
        if gib <= 0.0 || location == site || self.metro[i] {
            return (SimDuration::ZERO, 0.0, 0.0);
        }
        let gb = gib * 1.073_741_824;
        let secs = gb * 8.0 / self.bandwidth_gbps[i] + self.latency_ms[i] / 1000.0;
        (
            SimDuration(secs.ceil() as i64),
            gb * self.price_cny_per_gb[i],
            gb,
        )
    }
}

/// A job as the scheduler sees it: indices instead of names, a dense demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The job.
    pub id: JobId,
    /// Units held (watts are filled per site by the scheduler).
    pub need: Need,
    /// Run time.
    pub duration: SimDuration,
    /// Earliest start.
    pub release: SimTime,
    /// Latest completion.
    pub deadline: Option<SimTime>,
    /// Location the job was submitted from.
    pub origin: usize,
    /// Location of its input data.
    pub data_location: usize,
    /// Input size, GiB.
    pub data_gib: f64,
    /// Latency bound: (location, max round-trip ms).
    pub latency: Option<(usize, f64)>,
    /// Allowed jurisdictions as a bit set over [`NetView::jurisdictions`]; 0 = any.
    pub residency: u64,
    /// Higher goes first.
    pub priority: i32,
    /// Whether the start may be shifted past the earliest feasible time.
    pub delayable: bool,
    /// Pinned site.
    pub pinned: Option<usize>,
    /// Priority class rank ([`suanwang_model::PriorityClass::rank`]): a higher
    /// class is considered first, whatever the priority, and may preempt
    /// preemptible work of a lower class ([`crate::preempt`]).
    pub class: u8,
    /// Whether the job may be stopped and requeued for a higher class.
    pub preemptible: bool,
    /// The tenant, as the driver numbers it: the key of the calendar's quotas
    /// ([`crate::Quota::tenant`]). Jobs of a tenant without quotas are not capped.
    pub tenant: u32,
    /// Ordered spill-over: tiers of site indices, tried in order. The job goes
    /// to the policy's best candidate within the first tier that has one
    /// meeting its deadline (and its tenant's quota); a later tier is weighed
    /// only when every earlier one cannot. Sites in no tier are never used.
    /// Empty: no list, every allowed site is weighed at once.
    pub spill: Vec<Vec<usize>>,
}

/// Everything the scheduler reads, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Current time.
    pub now: SimTime,
    /// Sites.
    pub sites: &'a [SiteView],
    /// Forecast price and carbon.
    pub forecast: &'a Forecast,
    /// Network.
    pub network: &'a NetView,
}

/// The score terms of one candidate (site, start), in natural units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    /// Price of the resources for the run.
    pub compute_cny: Cny,
    /// Facility energy.
    pub energy_kwh: Kwh,
    /// Electricity cost.
    pub energy_cny: Cny,
    /// Emissions after green power.
    pub carbon_kg: KgCo2,
    /// Input data moved, GB (10^9 bytes).
    pub transfer_gb: f64,
    /// Price of moving it.
    pub transfer_cny: Cny,
    /// Time to move it (serialised in seconds).
    pub transfer_secs: SimDuration,
    /// Start minus release (seconds).
    pub wait_secs: SimDuration,
    /// Completion past the deadline (seconds).
    pub late_secs: SimDuration,
}

impl Terms {
    /// Money: compute, electricity and transfer.
    pub fn money(&self) -> Cny {
        self.compute_cny + self.energy_cny + self.transfer_cny
    }
}
