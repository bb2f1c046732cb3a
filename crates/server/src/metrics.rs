//! Prometheus metrics at `/metrics`: requests by route, method and status with
//! their latencies, and the scheduler's passes, placements, refusals and queue.
//! The registry is explicit (no global state), so tests read the same values.
//!
//! Served in the Prometheus text exposition format 0.0.4 ([`CONTENT_TYPE`]), which
//! every Prometheus and `promtool check metrics` read: prometheus-client writes
//! OpenMetrics, whose counter families are named without `_total` while their
//! samples carry it, so [`Metrics::encode`] rewrites that text (see
//! [`to_prometheus_text`]). The metric names are the samples' names either way.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteClassLabels {
    site: String,
    class: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Per-site gauges, set from the overview when `/metrics` is scraped.
#[derive(Debug, Default)]
struct SiteGauges {
    utilisation: Family<SiteClassLabels, FloatGauge>,
    power_kw: Family<SiteLabels, FloatGauge>,
    grid_carbon: Family<SiteLabels, FloatGauge>,
    green_share: Family<SiteLabels, FloatGauge>,
    tariff: Family<SiteLabels, FloatGauge>,
    running: Family<SiteLabels, Gauge>,
    queued: Family<SiteLabels, Gauge>,
    reachable: Family<SiteLabels, Gauge>,
    network_carbon: FloatGauge,
    network_power: FloatGauge,
    reported_power: Family<SitePowerLabels, FloatGauge>,
    reported_running: Family<SiteLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SitePowerLabels {
    site: String,
    source: String,
}

/// Every metric of the control plane.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Scheduler passes.
    pub passes: Counter,
    /// How long scheduler passes take, seconds.
    pub pass_duration: Histogram,
    /// Jobs placed.
    pub placed: Counter,
    /// Jobs refused for good.
    pub rejected: Counter,
    /// Pending jobs seen by the last pass.
    pub queue_depth: Gauge,
    /// Agent heartbeats.
    pub heartbeats: Counter,
    /// Jobs handed to agents.
    pub dispatched: Counter,
    /// Jobs reported finished by agents.
    pub finished: Counter,
    /// Jobs whose lease expired.
    pub lost: Counter,
    /// Jobs stopped for a job of a higher class.
    pub preemptions: Counter,
    /// Run time lost to preemption, seconds (what the stopped jobs had run).
    pub preempted_work_seconds: Counter,
    /// Requests refused because the caller may not act for the site named.
    pub identity_refusals: Counter,
    /// Requests refused (429) because their token was over its rate.
    pub rate_limited: Counter,
    sites: SiteGauges,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("suanwang");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let (passes, placed, rejected, queue_depth) = (
            Counter::default(),
            Counter::default(),
            Counter::default(),
            Gauge::default(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("scheduler_passes", "Scheduler passes", passes.clone());
        // 1 ms to about 33 s.
        let pass_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "scheduler_pass_duration_seconds",
            "How long a scheduler pass takes, from reading the jobs to writing the decisions",
            pass_duration.clone(),
        );
        registry.register(
            "placements",
            "Jobs placed on a site and start",
            placed.clone(),
        );
        registry.register("rejections", "Jobs refused for good", rejected.clone());
        registry.register(
            "queue_depth",
            "Pending jobs seen by the last scheduler pass",
            queue_depth.clone(),
        );
        let (heartbeats, dispatched, finished, lost) = (
            Counter::default(),
            Counter::default(),
            Counter::default(),
            Counter::default(),
        );
        registry.register("agent_heartbeats", "Agent heartbeats", heartbeats.clone());
        let identity_refusals = Counter::default();
        registry.register(
            "identity_refusals",
            "Requests refused because the caller may not act for the site named",
            identity_refusals.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused (429) because their token was over its request rate",
            rate_limited.clone(),
        );
        registry.register(
            "dispatched",
            "Jobs handed to agents under a lease",
            dispatched.clone(),
        );
        registry.register(
            "finished",
            "Jobs reported finished by agents",
            finished.clone(),
        );
        registry.register(
            "lost",
            "Jobs whose lease expired (site silent)",
            lost.clone(),
        );
        let (preemptions, preempted_work_seconds) = (Counter::default(), Counter::default());
        registry.register(
            "preemptions",
            "Jobs stopped and requeued for a job of a higher class",
            preemptions.clone(),
        );
        registry.register(
            "preempted_work_seconds",
            "Run time lost to preemption: how long the stopped jobs had run, seconds",
            preempted_work_seconds.clone(),
        );
        let sites = SiteGauges::default();
        registry.register(
            "site_utilisation",
            "Share of a site's units of a class held by jobs now",
            sites.utilisation.clone(),
        );
        registry.register(
            "site_power_kw",
            "Facility power of a site's busy units, kW (estimated from its power model)",
            sites.power_kw.clone(),
        );
        registry.register(
            "site_grid_carbon_kg_per_kwh",
            "Grid carbon intensity at a site now, kg CO2/kWh",
            sites.grid_carbon.clone(),
        );
        registry.register(
            "site_green_share",
            "Green-power share at a site now",
            sites.green_share.clone(),
        );
        registry.register(
            "site_tariff_cny_per_kwh",
            "Electricity price at a site now, CNY/kWh",
            sites.tariff.clone(),
        );
        registry.register(
            "site_running_jobs",
            "Jobs holding resources at a site",
            sites.running.clone(),
        );
        registry.register(
            "site_queued_jobs",
            "Jobs placed at a site, not started",
            sites.queued.clone(),
        );
        registry.register(
            "site_reachable",
            "1 if an agent of the site heartbeated within the lease time, 0 if none did, absent if no agent ever joined",
            sites.reachable.clone(),
        );
        registry.register(
            "network_carbon_kg_per_hour",
            "Emissions rate of the network's busy units after green power, kg CO2/h",
            sites.network_carbon.clone(),
        );
        registry.register(
            "site_reported_power_watts",
            "Power reported by a site's live agents, W, by how it was obtained (rapl, nvml, estimated)",
            sites.reported_power.clone(),
        );
        registry.register(
            "site_reported_running_jobs",
            "Jobs a site's live agents report running",
            sites.reported_running.clone(),
        );
        registry.register(
            "network_power_kw",
            "Facility power of the network's busy units, kW",
            sites.network_power.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            passes,
            pass_duration,
            placed,
            rejected,
            queue_depth,
            heartbeats,
            dispatched,
            finished,
            lost,
            preemptions,
            preempted_work_seconds,
            identity_refusals,
            rate_limited,
            sites,
        }
    }
}

impl Metrics {
    /// Sets the gauges of what live agents report in their telemetry.
    pub fn set_reported(&self, agents: &[suanwang_store::AgentRecord], now: i64, lease_secs: i64) {
        use std::collections::BTreeMap;
        let mut power: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut running: BTreeMap<String, i64> = BTreeMap::new();
        for agent in agents {
            let live = agent.last_seen >= now - lease_secs;
            let sample: suanwang_api::Telemetry = agent
                .telemetry
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            let entry = running.entry(agent.site.clone()).or_insert(0);
            if !live {
                continue;
            }
            *entry += sample.running_jobs.unwrap_or(0) as i64;
            if let Some(p) = sample.power {
                *power.entry((agent.site.clone(), p.source)).or_insert(0.0) += p.watts;
            }
        }
        for ((site, source), watts) in power {
            self.sites
                .reported_power
                .get_or_create(&SitePowerLabels { site, source })
                .set(watts);
        }
        for (site, n) in running {
            self.sites
                .reported_running
                .get_or_create(&SiteLabels { site })
                .set(n);
        }
    }

    /// Sets the per-site gauges from an overview and the sites' reachability.
    pub fn set_sites(
        &self,
        overview: &suanwang_api::Overview,
        reachable: &std::collections::BTreeMap<String, bool>,
    ) {
        let g = &self.sites;
        for site in &overview.sites {
            let label = SiteLabels {
                site: site.site.clone(),
            };
            for (class, &capacity) in &site.capacity {
                let busy = site.busy.get(class).copied().unwrap_or(0);
                let share = if capacity == 0 {
                    0.0
                } else {
                    f64::from(busy) / f64::from(capacity)
                };
                g.utilisation
                    .get_or_create(&SiteClassLabels {
                        site: site.site.clone(),
                        class: class.clone(),
                    })
                    .set(share);
            }
            g.power_kw.get_or_create(&label).set(site.power_kw);
            g.grid_carbon
                .get_or_create(&label)
                .set(site.grid_kg_per_kwh);
            g.green_share.get_or_create(&label).set(site.green_share);
            g.tariff.get_or_create(&label).set(site.tariff_cny_per_kwh);
            g.running.get_or_create(&label).set(site.running as i64);
            g.queued.get_or_create(&label).set(site.queued as i64);
            if let Some(&live) = reachable.get(&site.site) {
                g.reachable.get_or_create(&label).set(i64::from(live));
            }
        }
        g.network_carbon.set(overview.carbon_kg_per_hour);
        g.network_power.set(overview.power_kw);
    }

    /// Every metric in the Prometheus text exposition format 0.0.4.
    pub fn encode(&self) -> String {
        let mut open_metrics = String::new();
        prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry)
            .expect("writing to a String cannot fail");
        to_prometheus_text(&open_metrics)
    }
}

/// The media type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites prometheus-client's OpenMetrics text as the Prometheus text format
/// 0.0.4. The two differ, for what this registry holds (counters, gauges and
/// histograms without units or exemplars), only in that a counter family's
/// `# HELP`/`# TYPE` lines name it without the `_total` that its sample carries
/// (0.0.4 names the family as the sample), in `# UNIT` lines and in the closing
/// `# EOF`. Samples and label escaping are the same in both.
fn to_prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len() + 8 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?.split_once(' ')?)));
        match descriptor {
            Some((tag, (family, rest))) if counters.contains(family) => {
                out.push_str(tag);
                out.push_str(family);
                out.push_str("_total ");
                out.push_str(rest);
            }
            Some(("# TYPE ", (family, "unknown"))) => {
                out.push_str("# TYPE ");
                out.push_str(family);
                out.push_str(" untyped");
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

impl Metrics {
    /// Counts and times one answered request by its matched route (called by
    /// [`crate::observe::trace`], the one middleware every request passes).
    pub fn record_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_their_samples_and_nothing_is_openmetrics_only() {
        let metrics = Metrics::default();
        metrics.placed.inc_by(3);
        metrics
            .latency
            .get_or_create(&RouteLabels {
                route: "/v1/jobs/{id}".into(),
            })
            .observe(0.002);
        let text = metrics.encode();
        assert!(
            text.contains(
                "# HELP suanwang_placements_total Jobs placed on a site and start.\n\
                 # TYPE suanwang_placements_total counter\n\
                 suanwang_placements_total 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE suanwang_queue_depth gauge\nsuanwang_queue_depth 0\n"));
        assert!(text.contains(
            "suanwang_http_request_duration_seconds_bucket{le=\"0.002\",route=\"/v1/jobs/{id}\"} 1\n"
        ));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        // Every family is declared once, before its samples, under the name
        // its samples carry.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(!declared.contains(&family.to_string()), "{line}");
                declared.push(family.to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = declared.last().unwrap();
                let histogram_part = ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family.as_str()));
                assert!(name == family || histogram_part, "{line} under {family}");
            }
        }
    }

    #[test]
    fn openmetrics_only_lines_are_dropped_and_unknown_is_untyped() {
        let open = "# HELP a_seconds A.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n\
                    # HELP b B.\n# TYPE b unknown\nb 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(open),
            "# HELP a_seconds A.\n# TYPE a_seconds gauge\na_seconds 1\n# HELP b B.\n# TYPE b untyped\nb 2\n"
        );
    }
}
