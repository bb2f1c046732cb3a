//! The network between locations (sites and demand regions): explicit links from the
//! topology, and derived ones for every other pair.
//!
//! Derived latency is a round trip over fibre: `2 × distance × route_factor /
//! fibre_km_per_ms`, with the great-circle (haversine, R = 6371 km) distance, floored
//! at `min_latency_ms`. No public inter-site latency matrix exists, so this is an
//! estimate and is labelled "derived" wherever it is shown. Two locations in one
//! metro area (< 50 km apart, same jurisdiction) exchange data for free.

use crate::Topology;
use std::collections::HashMap;
use suanwang_model::GeoPoint;

/// Distance under which two locations count as one metro area, km.
pub const METRO_KM: f64 = 50.0;

/// What moving data or requests between two locations costs.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkMetrics {
    /// Round-trip latency, ms.
    pub latency_ms: f64,
    /// Bandwidth, Gbit/s.
    pub bandwidth_gbps: f64,
    /// Price, CNY per GB moved.
    pub price_cny_per_gb: f64,
    /// Great-circle distance, km.
    pub distance_km: f64,
    /// Name of the explicit link, if there is one.
    pub name: Option<String>,
    /// Whether latency was derived from distance rather than given.
    pub latency_derived: bool,
}

/// Every location of a topology and the metrics between each pair. Sites come first,
/// in the topology's order, then regions.
#[derive(Debug, Clone)]
pub struct Network {
    /// Location ids: sites `0..n_sites`, then regions.
    pub ids: Vec<String>,
    /// How many of `ids` are sites.
    pub n_sites: usize,
    /// For each location, the site that serves it locally.
    pub home_site: Vec<usize>,
    index: HashMap<String, usize>,
    matrix: Vec<LinkMetrics>,
}

/// Great-circle distance between two points, km (haversine).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

impl Network {
    /// Resolves the topology's network.
    pub fn new(topology: &Topology) -> Network {
        let mut ids = Vec::new();
        let mut points = Vec::new();
        let mut jurisdictions = Vec::new();
        for site in &topology.sites {
            ids.push(site.id.0.clone());
            points.push(site.location);
            jurisdictions.push(site.jurisdiction.0.clone());
        }
        let n_sites = ids.len();
        for region in &topology.regions {
            ids.push(region.id.0.clone());
            points.push(region.location);
            jurisdictions.push(region.jurisdiction.0.clone());
        }
        let n = ids.len();
        let index: HashMap<String, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let d = &topology.link_defaults;
        let latency =
            |km: f64| (2.0 * km * d.route_factor / d.fibre_km_per_ms).max(d.min_latency_ms);
        let mut matrix = Vec::with_capacity(n * n);
        for a in 0..n {
            for b in 0..n {
                let km = distance_km(points[a], points[b]);
                let same_jurisdiction = jurisdictions[a] == jurisdictions[b];
                let metro = km < METRO_KM && same_jurisdiction;
                matrix.push(LinkMetrics {
                    latency_ms: if a == b { 0.0 } else { latency(km) },
                    bandwidth_gbps: if metro {
                        d.bandwidth_gbps * 10.0
                    } else {
                        d.bandwidth_gbps
                    },
                    price_cny_per_gb: if metro {
                        0.0
                    } else if same_jurisdiction {
                        d.price_cny_per_gb
                    } else {
                        d.international_price_cny_per_gb
                    },
                    distance_km: km,
                    name: None,
                    latency_derived: true,
                });
            }
        }
        for link in &topology.links {
            let (a, b) = (index[&link.a.0], index[&link.b.0]);
            for (x, y) in [(a, b), (b, a)] {
                let cell = &mut matrix[x * n + y];
                cell.bandwidth_gbps = link.bandwidth_gbps;
                cell.price_cny_per_gb = link.price_cny_per_gb;
                cell.name = link.name.clone();
                if let Some(ms) = link.latency_ms {
                    cell.latency_ms = ms;
                    cell.latency_derived = false;
                }
            }
        }
        let mut home_site = Vec::with_capacity(n);
        for (loc, point) in points.iter().enumerate() {
            if loc < n_sites {
                home_site.push(loc);
                continue;
            }
            let region = &topology.regions[loc - n_sites];
            let chosen = region
                .home_site
                .as_ref()
                .map(|s| index[&s.0])
                .unwrap_or_else(|| {
                    let candidates =
                        (0..n_sites).filter(|&s| jurisdictions[s] == jurisdictions[loc]);
                    let mut all: Vec<usize> = candidates.collect();
                    if all.is_empty() {
                        all = (0..n_sites).collect();
                    }
                    all.into_iter()
                        .min_by(|&x, &y| {
                            distance_km(*point, points[x])
                                .total_cmp(&distance_km(*point, points[y]))
                        })
                        .unwrap_or(0)
                });
            home_site.push(chosen);
        }
        Network {
            ids,
            n_sites,
            home_site,
            index,
            matrix,
        }
    }

    /// Number of locations.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no locations.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Index of location `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Metrics from location `a` to location `b`.
    pub fn between(&self, a: usize, b: usize) -> &LinkMetrics {
        &self.matrix[a * self.ids.len() + b]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_latency_follow_the_documented_formula() {
        let topology = crate::builtin("cn-west").unwrap();
        let net = Network::new(&topology);
        let (cq, hami) = (net.index("chongqing").unwrap(), net.index("hami").unwrap());
        let link = net.between(cq, hami);
        // Chongqing to Hami is about 2,000 km as the crow flies.
        assert!(
            (1800.0..2200.0).contains(&link.distance_km),
            "{}",
            link.distance_km
        );
        assert!((link.latency_ms - 2.0 * link.distance_km * 1.5 / 200.0).abs() < 1e-9);
        assert_eq!(link.name.as_deref(), Some("Chongqing–Hami backbone (渝疆)"));
        assert_eq!(link.bandwidth_gbps, 400.0);
        // Symmetric.
        assert_eq!(
            net.between(hami, cq).price_cny_per_gb,
            link.price_cny_per_gb
        );
    }

    #[test]
    fn regions_have_home_sites_and_metro_transfers_are_free() {
        let topology = crate::builtin("cn-west").unwrap();
        let net = Network::new(&topology);
        let cq = net.index("chongqing").unwrap();
        let home = net.home_site[cq];
        assert_eq!(net.ids[home], "cq-liangjiang");
        assert_eq!(net.between(cq, home).price_cny_per_gb, 0.0);
        assert_eq!(
            net.ids[net.home_site[net.index("beijing").unwrap()]],
            "helinger"
        );
        let sg = net.index("singapore").unwrap();
        let bj = net.index("beijing").unwrap();
        assert_eq!(
            net.between(bj, sg).price_cny_per_gb,
            0.80,
            "international default"
        );
    }
}
