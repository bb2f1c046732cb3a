//! `suanwang simulate`.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use suanwang_model::{ResourceClass, SimDuration};
use suanwang_sched::PolicyKind;
use suanwang_sim::trace::{TimeUnit, TraceFormat};
use suanwang_sim::{ProgressEvent, SimulateParams, report};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Swf,
    AlibabaGpu,
    Gaia,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum UnitArg {
    Hours,
    Seconds,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Built-in topology name or TOML file.
    #[arg(long, default_value = "cn-west")]
    topology: String,
    /// Trace file (.swf, .swf.gz, Alibaba GPU pod list, GAIA CSV), or `synthetic`
    /// for the built-in workload.
    #[arg(long, default_value = "synthetic")]
    trace: PathBuf,
    /// Policy: local-fifo, least-loaded, cheapest, greenest-now, wait-for-green,
    /// balanced, or all. Repeat or separate with commas for several.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    policy: Vec<String>,
    /// Print the report as JSON (suanwang.simulate/v1).
    #[arg(long)]
    json: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Draw per-site load against carbon intensity over time to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Replace the built-in carbon shape by a real series (CSV: time, intensity;
    /// gaps of up to 2h are filled by linear interpolation and reported).
    #[arg(long)]
    carbon_series: Option<PathBuf>,
    /// Longitude where the --carbon-series was measured (degrees east), for the
    /// solar-time shift to each site.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    carbon_series_lon: f64,
    /// Seed of the fill-in rules and forecast errors.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep only the first N jobs of the trace.
    #[arg(long)]
    limit: Option<usize>,
    /// Trace format (detected from the name and header by default).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Time unit of a GAIA CSV (detected by default).
    #[arg(long, value_enum)]
    time_unit: Option<UnitArg>,
    /// Skip malformed trace lines, reporting how many, instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Alibaba node list (default: beside the pod list).
    #[arg(long)]
    node_list: Option<PathBuf>,
    /// Fill-in: every job's origin region.
    #[arg(long)]
    origin: Option<String>,
    /// Fill-in: every job's input size, GiB.
    #[arg(long)]
    data_gib: Option<f64>,
    /// Fill-in: deadline = release + run time + slack.
    #[arg(long, default_value = "24h")]
    deadline_slack: SimDuration,
    /// Fill-in: share of mainland-origin jobs that must stay in the mainland.
    #[arg(long, default_value_t = 0.8)]
    residency_share: f64,
    /// Fill-in: put every accelerator job on this model.
    #[arg(long, value_parser = parse_class)]
    gpu_model: Option<ResourceClass>,
    /// Multiply every site's capacity (what-if).
    #[arg(long, default_value_t = 1.0)]
    capacity_scale: f64,
    /// Relative forecast error (standard deviation at 24 h lead).
    #[arg(long, default_value_t = 0.1)]
    forecast_error: f64,
    /// Calendar slot.
    #[arg(long, default_value = "15m")]
    slot: SimDuration,
    /// Calendar horizon.
    #[arg(long, default_value = "7d")]
    horizon: SimDuration,
    /// Longest delay of a job without a deadline.
    #[arg(long, default_value = "24h")]
    max_delay: SimDuration,
    /// Objective: shadow carbon price, CNY per tonne.
    #[arg(long, default_value_t = 500.0)]
    carbon_price: f64,
    /// Objective: cost of an hour of waiting, as a fraction of an hour of compute.
    #[arg(long, default_value_t = 0.05)]
    wait_weight: f64,
    /// Let `balanced` trade carbon for cost (or back) against the local
    /// counterfactual instead of keeping to Pareto improvements.
    #[arg(long)]
    no_pareto_guard: bool,
    /// Compute the LP lower bound only up to this many jobs.
    #[arg(long, default_value_t = 5000)]
    lp_max_jobs: usize,
    /// Jobs of the synthetic workload.
    #[arg(long, default_value_t = 1000)]
    synthetic_jobs: usize,
    /// Days of the synthetic workload.
    #[arg(long, default_value_t = 7)]
    synthetic_days: u32,
    /// Replay with weighted fair share among the trace's tenants (its users, or
    /// the fill-in's tenants), forgetting usage with this half-life (e.g. 7d, as
    /// `serve`'s default); the report adds each tenant's use against its
    /// entitlement and Jain's fairness index. Default: off.
    #[arg(long, value_parser = crate::serve::parse_half_life_secs)]
    fair_share_half_life: Option<i64>,
    /// Fair-share weights, TENANT=WEIGHT (comma-separated or repeated); 1 for
    /// a tenant not named.
    #[arg(long, value_delimiter = ',', value_parser = parse_share_weight)]
    share_weight: Vec<(String, f64)>,
    /// Priority classes, TENANT=CLASS (batch, normal, urgent; comma-separated
    /// or repeated); `normal` for a tenant not named. A batch tenant's jobs are
    /// preemptible, an urgent tenant's have a deadline --urgent-deadline-slack
    /// after they could end, and with any class given the run preempts as the
    /// live scheduler does (see --preempt-limit); the report adds preemptions,
    /// the work lost and each class's wait.
    #[arg(long, value_delimiter = ',', value_parser = parse_tenant_class)]
    tenant_class: Vec<(String, suanwang_model::PriorityClass)>,
    /// Quotas as `suanwang quota set` caps them live:
    /// TENANT:CLASS=UNITS[,CLASS=UNITS…][@SITE] (repeatable), the most units
    /// of each class the tenant's jobs hold at once, network-wide or at one site.
    #[arg(long, value_parser = parse_quota)]
    quota: Vec<Vec<suanwang_sim::QuotaRow>>,
    /// Deadline slack of an urgent tenant's jobs (fill-in rule).
    #[arg(long, default_value = "1h")]
    urgent_deadline_slack: SimDuration,
    /// Preemption's grace period: the preempting job starts this long after
    /// the stop signal (as `serve --preempt-grace`).
    #[arg(long, default_value = "30s")]
    preempt_grace: SimDuration,
    /// Preemption's rate limit, N/WINDOW jobs stopped per site, or `off` (as
    /// `serve --preempt-limit`); used when --tenant-class is given.
    #[arg(long, default_value = "10/10m")]
    preempt_limit: String,
    /// An ordered spill-over list for every job: site:ID, jurisdiction:NAME or
    /// anywhere, comma-separated, most wanted first (each job goes to the
    /// first that can start it by its deadline).
    #[arg(long, value_name = "CHOICES", value_parser = parse_spill)]
    spill: Option<Vec<suanwang_model::SpillChoice>>,
    /// Explain the decisions for these jobs (trace index from 0; comma-separated
    /// or repeated): every candidate weighed, with its score terms.
    #[arg(long, value_delimiter = ',')]
    explain: Vec<usize>,
    /// No progress bars: set by the global -q/--quiet.
    #[arg(skip)]
    pub(crate) quiet: bool,
}

fn parse_class(text: &str) -> Result<ResourceClass, String> {
    ResourceClass::parse(text)
        .filter(|c| c.is_accelerator())
        .ok_or_else(|| format!("unknown accelerator model {text:?}"))
}

fn policies(names: &[String]) -> anyhow::Result<Vec<PolicyKind>> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(PolicyKind::ALL);
        } else {
            let kind = PolicyKind::parse(name).with_context(|| {
                format!(
                    "unknown policy {name:?} (known: {}, all)",
                    PolicyKind::ALL.map(|p| p.name()).join(", ")
                )
            })?;
            out.push(kind);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let mut topology = crate::load_topology(&args.topology)?;
    if !(args.capacity_scale > 0.0 && args.capacity_scale.is_finite()) {
        bail!("--capacity-scale must be > 0");
    }
    if args.capacity_scale != 1.0 {
        topology.scale_capacity(args.capacity_scale);
    }
    if !(0.0..=1.0).contains(&args.residency_share) {
        bail!("--residency-share must be within 0..1");
    }
    if args.slot.0 <= 0 || args.horizon.0 < args.slot.0 {
        bail!("--slot must be > 0 and --horizon at least one slot");
    }
    if let Some(origin) = &args.origin
        && !topology.regions.iter().any(|r| &r.id.0 == origin)
        && topology.site(origin).is_none()
    {
        bail!(
            "--origin {origin:?} is not a region or site of topology {}",
            topology.name
        );
    }
    let carbon_series = args
        .carbon_series
        .as_deref()
        .map(suanwang_sim::series::read_carbon_series)
        .transpose()?;
    let mut params = SimulateParams::new(topology, args.trace.clone());
    params.read.format = args.format.map(|f| match f {
        FormatArg::Swf => TraceFormat::Swf,
        FormatArg::AlibabaGpu => TraceFormat::AlibabaGpu,
        FormatArg::Gaia => TraceFormat::Gaia,
    });
    params.read.time_unit = args.time_unit.map(|u| match u {
        UnitArg::Hours => TimeUnit::Hours,
        UnitArg::Seconds => TimeUnit::Seconds,
    });
    params.read.skip_bad = args.skip_bad_lines;
    params.read.node_list = args.node_list.clone();
    params.limit = args.limit;
    params.fill.seed = args.seed;
    params.fill.origin = args.origin.clone();
    params.fill.data_gib = args.data_gib;
    params.fill.deadline_slack = args.deadline_slack;
    params.fill.residency_share = args.residency_share;
    params.fill.gpu_model = args.gpu_model;
    params.config.seed = args.seed;
    params.config.forecast_error = args.forecast_error;
    params.config.explain_jobs = args.explain.clone();
    params.config.slot_secs = args.slot.0;
    params.config.horizon_slots = (args.horizon.0 / args.slot.0) as usize;
    params.policies = policies(&args.policy)?;
    params.weights.carbon_cny_per_t = args.carbon_price;
    params.weights.wait = args.wait_weight;
    params.max_delay = args.max_delay;
    params.carbon_series = carbon_series;
    params.carbon_series_lon = args.carbon_series_lon;
    params.lp_max_jobs = args.lp_max_jobs;
    params.pareto_guard = !args.no_pareto_guard;
    params.synthetic_jobs = args.synthetic_jobs;
    params.synthetic_days = args.synthetic_days;
    params.fair_share_half_life_secs = args.fair_share_half_life;
    params.share_weights = args.share_weight.clone();
    params.tenant_classes = args.tenant_class.clone();
    params.quotas = args.quota.concat();
    params.urgent_deadline_slack = args.urgent_deadline_slack;
    if !args.tenant_class.is_empty() && args.preempt_limit != "off" {
        let (per_site, window_secs) = crate::serve::parse_preempt_limit_pair(&args.preempt_limit)
            .map_err(|e| anyhow::anyhow!("--preempt-limit {e}"))?;
        params.config.preemption = Some(suanwang_sim::engine::SimPreemption {
            grace_secs: args.preempt_grace.0,
            per_site,
            window_secs,
        });
    }
    params.spill = args.spill.clone().unwrap_or_default();

    // Progress: one bar per policy and a spinner for the LP bound, on stderr.
    let multi = MultiProgress::with_draw_target(if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template("{prefix:>15} [{bar:30}] {pos}/{len} jobs {elapsed}")
        .expect("valid template")
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = params
        .policies
        .iter()
        .map(|p| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(p.name());
            bar
        })
        .collect();
    let lp_bar = ProgressBar::new_spinner();
    lp_bar.set_prefix("LP bound");
    lp_bar.set_style(
        ProgressStyle::with_template("{prefix:>15} {spinner} {msg} {elapsed}")
            .expect("valid template"),
    );
    let progress = |event: ProgressEvent| match event {
        ProgressEvent::Jobs(total) => bars.iter().for_each(|bar| bar.set_length(total as u64)),
        ProgressEvent::Decided(policy, done) => {
            let bar = &bars[policy];
            bar.set_position(done as u64);
            if bar.length() == Some(done as u64) {
                bar.finish();
            }
        }
        ProgressEvent::LpStarted => {
            let bar = multi.add(lp_bar.clone());
            bar.set_message("solving");
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        ProgressEvent::LpFinished => lp_bar.finish_with_message("done"),
    };
    let simulation = suanwang_sim::run(&params, &progress)?;
    for bar in &bars {
        bar.finish();
    }
    lp_bar.finish_and_clear();
    multi.clear().ok();

    if let Some(path) = &args.plot {
        let svg = suanwang_sim::plot::svg(
            &simulation.world,
            &simulation.runs,
            simulation.hours.0,
            simulation.hours.1,
            &simulation.report.carbon_shape,
        );
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&simulation.report)?;
        s.push('\n');
        s
    } else {
        report::render_tables(&simulation.report)
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Parses `TENANT:CLASS=UNITS[,CLASS=UNITS…][@SITE]`.
fn parse_quota(text: &str) -> Result<Vec<suanwang_sim::QuotaRow>, String> {
    let (tenant, caps) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected TENANT:CLASS=UNITS[,…][@SITE]"))?;
    let (caps, site) = match caps.rsplit_once('@') {
        Some((caps, site)) => (caps, Some(site.trim().to_string())),
        None => (caps, None),
    };
    let mut out = Vec::new();
    for pair in caps.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (class, units) = pair
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: {pair:?} is not CLASS=UNITS"))?;
        let class = ResourceClass::parse(class.trim()).ok_or_else(|| {
            format!(
                "{text:?}: unknown class {:?} (known: {})",
                class.trim(),
                ResourceClass::known_names()
            )
        })?;
        let units: u32 = units
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {:?} is not a whole number", units.trim()))?;
        out.push((tenant.trim().to_string(), class, site.clone(), units));
    }
    if out.is_empty() {
        return Err(format!("{text:?}: no CLASS=UNITS given"));
    }
    Ok(out)
}

/// Parses `TENANT=CLASS`.
fn parse_tenant_class(text: &str) -> Result<(String, suanwang_model::PriorityClass), String> {
    let (tenant, class) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected TENANT=CLASS"))?;
    let class = class.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok((tenant.trim().to_string(), class))
}

/// Parses `TENANT=WEIGHT` (a weight more than 0, at most 1000000).
fn parse_spill(text: &str) -> Result<Vec<suanwang_model::SpillChoice>, String> {
    suanwang_model::Job::parse_spill(text)
}

fn parse_share_weight(text: &str) -> Result<(String, f64), String> {
    let (tenant, weight) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected TENANT=WEIGHT"))?;
    let weight: f64 = weight
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {:?} is not a number", weight.trim()))?;
    if !(weight.is_finite() && weight > 0.0 && weight <= 1_000_000.0) {
        return Err(format!(
            "{text:?}: a weight is more than 0 and at most 1000000"
        ));
    }
    Ok((tenant.trim().to_string(), weight))
}
