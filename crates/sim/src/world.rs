//! The world a simulation runs in: a topology resolved into the scheduler's views,
//! the actual price and carbon per slot, and the forecasts the scheduler sees.

use crate::fill::mix;
use std::collections::BTreeMap;
use suanwang_model::{Job, N_CLASSES, ResourceClass, SimDuration, SimTime, SpillChoice};
use suanwang_sched::{Forecast, Need, NetView, Nodes, Request, SiteCapacity, SiteView};
use suanwang_topology::{Network, SeriesModel, Topology};

/// Actual series per site and slot, precomputed over the simulated span.
#[derive(Debug, Clone)]
pub struct Actuals {
    /// Slot length, seconds.
    pub slot_secs: i64,
    /// Number of slots covered from slot 0.
    pub n_slots: usize,
    /// CNY per kWh, `[site * n_slots + slot]`.
    pub tariff: Vec<f32>,
    /// Grid kg CO2 per kWh.
    pub grid_carbon: Vec<f32>,
    /// Green share, 0..1.
    pub green: Vec<f32>,
}

/// A topology ready to simulate on.
#[derive(Debug, Clone)]
pub struct World {
    /// The topology.
    pub topology: Topology,
    /// Its resolved network.
    pub network: Network,
    /// Its series.
    pub series: SeriesModel,
    /// Sites as the scheduler sees them.
    pub sites: Vec<SiteView>,
    /// Network as the scheduler sees it.
    pub net: NetView,
    /// Capacity per site.
    pub capacity: Vec<SiteCapacity>,
    /// Actual series.
    pub actuals: Actuals,
}

impl World {
    /// Resolves `topology` with `series`, precomputing actuals for slots
    /// `0 .. ceil(span_secs / slot_secs)`.
    pub fn new(topology: Topology, series: SeriesModel, slot_secs: i64, span_secs: i64) -> World {
        let network = Network::new(&topology);
        let mut jurisdictions: Vec<String> = Vec::new();
        let mut jurisdiction_index = |name: &str| -> usize {
            match jurisdictions.iter().position(|j| j == name) {
                Some(i) => i,
                None => {
                    jurisdictions.push(name.to_string());
                    jurisdictions.len() - 1
                }
            }
        };
        let mut sites = Vec::new();
        let mut capacity = Vec::new();
        for site in &topology.sites {
            let mut price = [0.0; N_CLASSES];
            let mut power = [0.0; N_CLASSES];
            let mut units = [0; N_CLASSES];
            for class in ResourceClass::all() {
                price[class.index()] = site.price_cny_per_unit_hour.get(class);
                power[class.index()] = topology.power_kw(site, class);
                units[class.index()] = site.capacity.get(class);
            }
            sites.push(SiteView {
                id: site.id.0.clone(),
                jurisdiction: jurisdiction_index(&site.jurisdiction.0),
                price_cny_per_unit_hour: price,
                power_kw_per_unit: power,
                pue: site.pue,
                available: true,
            });
            capacity.push(SiteCapacity {
                units,
                watts: site.power_cap_kw.map(|kw| (kw * 1000.0) as u32),
                nodes: site.nodes.as_ref().map(|shape| {
                    let mut per_node = [0; N_CLASSES];
                    for (class, units) in shape.per_node.iter() {
                        per_node[class.index()] = units;
                    }
                    Nodes {
                        count: shape.count,
                        per_node,
                    }
                }),
            });
        }
        let mut location_jurisdiction: Vec<usize> = sites.iter().map(|s| s.jurisdiction).collect();
        for region in &topology.regions {
            location_jurisdiction.push(jurisdiction_index(&region.jurisdiction.0));
        }
        let n_sites = sites.len();
        let n_loc = network.len();
        let mut latency_ms = Vec::with_capacity(n_loc * n_sites);
        let mut bandwidth_gbps = Vec::with_capacity(n_loc * n_sites);
        let mut price_cny_per_gb = Vec::with_capacity(n_loc * n_sites);
        let mut metro = Vec::with_capacity(n_loc * n_sites);
        for loc in 0..n_loc {
            for site in 0..n_sites {
                let link = network.between(loc, site);
                latency_ms.push(link.latency_ms);
                bandwidth_gbps.push(link.bandwidth_gbps);
                price_cny_per_gb.push(link.price_cny_per_gb);
                metro.push(
                    link.distance_km < suanwang_topology::network::METRO_KM
                        && location_jurisdiction[loc] == location_jurisdiction[site],
                );
            }
        }
        let net = NetView {
            locations: network.ids.clone(),
            n_sites,
            jurisdictions,
            location_jurisdiction,
            home_site: network.home_site.clone(),
            latency_ms,
            bandwidth_gbps,
            price_cny_per_gb,
            metro,
        };
        let n_slots = ((span_secs + slot_secs - 1) / slot_secs).max(1) as usize;
        let mut actuals = Actuals {
            slot_secs,
            n_slots,
            tariff: Vec::with_capacity(n_sites * n_slots),
            grid_carbon: Vec::with_capacity(n_sites * n_slots),
            green: Vec::with_capacity(n_sites * n_slots),
        };
        for site in 0..n_sites {
            for k in 0..n_slots {
                let t = SimTime(k as i64 * slot_secs);
                actuals
                    .tariff
                    .push(series.tariff_cny_per_kwh(site, t) as f32);
                actuals
                    .grid_carbon
                    .push(series.carbon_kg_per_kwh(site, t) as f32);
                actuals.green.push(series.green_share(site, t) as f32);
            }
        }
        World {
            topology,
            network,
            series,
            sites,
            net,
            capacity,
            actuals,
        }
    }

    /// Actual (tariff, grid carbon, green share) at `site` in `slot`.
    pub fn actual(&self, site: usize, slot: i64) -> (f64, f64, f64) {
        let a = &self.actuals;
        if slot >= 0 && (slot as usize) < a.n_slots {
            let i = site * a.n_slots + slot as usize;
            (
                a.tariff[i] as f64,
                a.grid_carbon[i] as f64,
                a.green[i] as f64,
            )
        } else {
            let t = SimTime(slot * a.slot_secs);
            (
                self.series.tariff_cny_per_kwh(site, t),
                self.series.carbon_kg_per_kwh(site, t),
                self.series.green_share(site, t),
            )
        }
    }

    /// The forecast issued at `issued_secs` for slots `base .. base + n`: actual ×
    /// (1 + e), e uniform with standard deviation `error × sqrt(lead / 24 h)` (capped
    /// at 3 × `error`), drawn from a hash of (seed, site, slot, issue time).
    pub fn forecast(
        &self,
        issued_secs: i64,
        base: i64,
        n: usize,
        error: f64,
        seed: u64,
    ) -> Forecast {
        let slot_secs = self.actuals.slot_secs;
        Forecast::from_fn(self.sites.len(), base, slot_secs, n, |site, t| {
            let slot = t.0.div_euclid(slot_secs);
            let (tariff, carbon, green) = self.actual(site, slot);
            let effective = carbon * (1.0 - green);
            if error <= 0.0 {
                return (tariff, effective);
            }
            let lead_h = ((t.0 - issued_secs).max(0) as f64) / 3600.0;
            let sigma = (error * (lead_h / 24.0).sqrt()).min(3.0 * error);
            let h = mix(seed ^ mix((site as u64) << 40 ^ slot as u64) ^ mix(issued_secs as u64));
            let u1 = (h >> 11) as f64 / (1u64 << 53) as f64;
            let u2 = (mix(h) >> 11) as f64 / (1u64 << 53) as f64;
            let half_width = sigma * 3f64.sqrt();
            let tariff_f = tariff * (1.0 + (2.0 * u1 - 1.0) * half_width);
            let carbon_f = effective * (1.0 + (2.0 * u2 - 1.0) * half_width);
            (tariff_f.max(0.0), carbon_f.max(0.0))
        })
    }

    /// The scheduler's view of `job`; an unknown location, region or site is an
    /// error naming it. A `provider:` spill-over choice names no site here (see
    /// [`World::request_with`]).
    pub fn request(&self, job: &Job) -> Result<Request, String> {
        self.request_with(job, &BTreeMap::new())
    }

    /// [`World::request`], reading the sites of a `provider:` spill-over choice
    /// from `providers` (provider name → site ids).
    pub fn request_with(
        &self,
        job: &Job,
        providers: &BTreeMap<String, Vec<String>>,
    ) -> Result<Request, String> {
        let net = &self.net;
        let location = |id: &str, what: &str| {
            net.location(id)
                .ok_or_else(|| format!("{what} {id:?} is not in the topology"))
        };
        let origin = location(&job.origin.0, "origin")?;
        let (data_location, data_gib) = match &job.data {
            Some(d) => (location(&d.location.0, "data location")?, d.size_gib),
            None => (origin, 0.0),
        };
        let latency = match &job.latency_target {
            Some(t) => Some((location(&t.region.0, "latency region")?, t.max_ms)),
            None => None,
        };
        let mut residency = 0u64;
        for j in &job.residency {
            // A jurisdiction no site has leaves no bit set; an otherwise empty set
            // then matches nothing, which the planner reports as a residency rejection.
            residency |= net.jurisdiction(&j.0).map_or(1 << 63, |i| 1 << i);
        }
        let pinned = job.pinned_site.as_ref().map(|s| {
            self.sites
                .iter()
                .position(|v| v.id == s.0)
                .unwrap_or(usize::MAX)
        });
        // A gang's demand is per node: it asks that much on each of its nodes.
        let gang = job.gang.max(1);
        let mut need = Need::default();
        for d in &job.demand {
            need.units[d.class.index()] += d.count.saturating_mul(gang);
        }
        if gang > 1 {
            need.nodes = gang;
        }
        Ok(Request {
            id: job.id,
            need,
            duration: SimDuration(job.duration.0.max(1)),
            release: job.release,
            deadline: job.deadline,
            origin,
            data_location,
            data_gib,
            latency,
            residency,
            priority: job.priority,
            delayable: job.delayable,
            pinned,
            class: job.class.rank(),
            preemptible: job.preemptible,
            tenant: 0,
            spill: self.spill_tiers(&job.spill, providers),
        })
    }

    /// A spill-over list as the core's tiers of site indices, each sorted.
    /// A choice that names no site now (a site gone from the topology, a
    /// provider without sites, a jurisdiction no site is in) is an empty tier,
    /// which the scheduler passes over.
    pub fn spill_tiers(
        &self,
        list: &[SpillChoice],
        providers: &BTreeMap<String, Vec<String>>,
    ) -> Vec<Vec<usize>> {
        let index = |id: &str| self.sites.iter().position(|s| s.id == id);
        list.iter()
            .map(|choice| {
                let mut sites: Vec<usize> = match choice {
                    SpillChoice::Site(id) => index(&id.0).into_iter().collect(),
                    SpillChoice::Provider(name) => providers
                        .get(name)
                        .into_iter()
                        .flatten()
                        .filter_map(|id| index(id))
                        .collect(),
                    SpillChoice::Jurisdiction(j) => match self.net.jurisdiction(&j.0) {
                        Some(j) => (0..self.sites.len())
                            .filter(|&s| self.sites[s].jurisdiction == j)
                            .collect(),
                        None => Vec::new(),
                    },
                    SpillChoice::Anywhere => (0..self.sites.len()).collect(),
                };
                sites.sort_unstable();
                sites.dedup();
                sites
            })
            .collect()
    }
}
