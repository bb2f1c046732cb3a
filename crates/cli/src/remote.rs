//! The client commands: `submit`, `jobs`, `job`, `cancel`, `explain`, `sites`.
//! Server and token come from flags or `SUANWANG_URL` / `SUANWANG_TOKEN`; human
//! output is aligned tables, `--json` prints the server's documents.

use anyhow::{Context, bail};
use clap::Args;
use suanwang_client::Client;
use suanwang_client::api::{
    DataIn, Decision, DemandIn, DurationValue, JobDoc, JobQuery, JobState, JobSubmission, LatencyIn,
};
use suanwang_model::{CandidateView, SimDuration};
use suanwang_sim::report::table;

#[derive(Debug, Args, Clone)]
pub struct Remote {
    /// Control plane URL.
    #[arg(
        long,
        env = "SUANWANG_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API token.
    #[arg(long, env = "SUANWANG_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The CA certificate (PEM) that signed an https:// control plane's
    /// certificate, trusted instead of the system's CAs (a private CA).
    #[arg(long, env = "SUANWANG_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
}

impl Remote {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let tls = suanwang_client::TlsOptions {
            ca_cert: self.ca_cert.clone(),
            identity: None,
        };
        Ok(Client::new(&self.url, self.token.clone()).with_tls(&tls)?)
    }
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    remote: Remote,
    /// CPU cores.
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory, GiB.
    #[arg(long)]
    mem: Option<u32>,
    /// Accelerators.
    #[arg(long, requires = "gpu_model")]
    gpus: Option<u32>,
    /// Accelerator model (a800, h800, h20, l40s, rtx4090, ascend910b).
    #[arg(long)]
    gpu_model: Option<String>,
    /// Nodes the job spans (a gang): --cpus, --mem and --gpus are then per node,
    /// and the site must declare nodes that hold them.
    #[arg(long)]
    gang: Option<u32>,
    /// Run time (90s, 15m, 2h, 1d, 1h30m).
    #[arg(long)]
    duration: Option<SimDuration>,
    /// Deadline after submission (same syntax).
    #[arg(long)]
    deadline: Option<SimDuration>,
    /// Input data: SIZE@PLACE, e.g. 500GiB@chongqing (GiB, TiB or GB).
    #[arg(long)]
    data: Option<String>,
    /// Submitting region.
    #[arg(long)]
    origin: Option<String>,
    /// Latency target: MS@REGION, the most round-trip milliseconds from that
    /// region to the site (e.g. 30@chongqing).
    #[arg(long)]
    latency: Option<String>,
    /// Pin to a site.
    #[arg(long)]
    site: Option<String>,
    /// Ordered spill-over: where the job may go, most wanted first, e.g.
    /// `site:chongqing-liangjiang,provider:acme,jurisdiction:cn-mainland,anywhere`;
    /// it goes to the first that can start it by its deadline.
    #[arg(long, value_name = "CHOICES")]
    spill: Option<String>,
    /// Allowed jurisdiction (repeatable).
    #[arg(long)]
    residency: Vec<String>,
    /// Priority (within a class).
    #[arg(long)]
    priority: Option<i32>,
    /// Priority class: batch, normal or urgent (at most your tenant's class,
    /// which is the default). With --deadline, a job that cannot otherwise meet
    /// it may preempt --preemptible jobs of lower classes.
    #[arg(long)]
    class: Option<suanwang_client::api::PriorityClass>,
    /// The job may be stopped (SIGTERM, a grace period, SIGKILL) and requeued
    /// for a job of a higher class; it runs again from the start.
    #[arg(long)]
    preemptible: bool,
    /// Start as soon as there is room: do not wait for cheaper or greener power.
    #[arg(long)]
    no_delay: bool,
    /// Idempotency key: a retried submit with the same key returns the same job.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Read the job from a file, TOML (`.toml`) or JSON, with the API's fields
    /// (flags given as well override it).
    #[arg(long, short = 'f')]
    file: Option<std::path::PathBuf>,
    /// Print the job document.
    #[arg(long)]
    json: bool,
    /// The command to run.
    #[arg(last = true)]
    command: Vec<String>,
}

/// Reads a comma-separated spill-over list given to `flag`, each choice in its
/// one spelling.
fn parse_spill(text: &str, flag: &str) -> anyhow::Result<Vec<String>> {
    let list =
        suanwang_model::Job::parse_spill(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(list.iter().map(ToString::to_string).collect())
}

fn parse_data(text: &str) -> anyhow::Result<DataIn> {
    let (size, place) = text
        .split_once('@')
        .context("--data must be SIZE@PLACE, e.g. 500GiB@chongqing")?;
    let lower = size.to_ascii_lowercase();
    let (number, scale) = if let Some(n) = lower.strip_suffix("tib") {
        (n, 1024.0)
    } else if let Some(n) = lower.strip_suffix("gib") {
        (n, 1.0)
    } else if let Some(n) = lower.strip_suffix("gb") {
        (n, 1e9 / 1_073_741_824.0)
    } else {
        (lower.as_str(), 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("--data size {size:?} is not a number"))?;
    Ok(DataIn {
        size_gib: value * scale,
        location: place.to_string(),
    })
}

/// A job file: TOML when it ends in `.toml`, else JSON, with the API's fields
/// (`POST /v1/jobs`'s body). Fields it leaves out that the job needs
/// (`demand`, `duration`) may come from flags: `fill` adds them, as the table
/// the file holds, before it is read as a job.
fn read_job_file(
    path: &std::path::Path,
    fill: impl FnOnce(&mut toml::Table) -> anyhow::Result<()>,
) -> anyhow::Result<JobSubmission> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut table: toml::Table = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).with_context(|| format!("{}: not a TOML job", path.display()))?
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON job", path.display()))?
    };
    fill(&mut table)?;
    let job = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| anyhow::anyhow!("{}: field {}: {}", path.display(), e.path(), e.inner()))?;
    Ok(job)
}

/// `MS@REGION`: the most round-trip latency allowed from a region.
fn parse_latency(text: &str) -> anyhow::Result<LatencyIn> {
    let (ms, region) = text
        .split_once('@')
        .context("--latency must be MS@REGION, e.g. 30@chongqing")?;
    let ms: f64 = ms
        .trim()
        .trim_end_matches("ms")
        .parse()
        .with_context(|| format!("--latency {ms:?} is not a number of milliseconds"))?;
    Ok(LatencyIn {
        region: region.to_string(),
        max_ms: ms,
    })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

impl SubmitArgs {
    /// The resources the flags ask for.
    fn demand(&self) -> Vec<DemandIn> {
        let mut demand = Vec::new();
        let mut add = |class: &str, count: Option<u32>| {
            if let Some(n) = count {
                demand.push(DemandIn {
                    class: class.to_string(),
                    count: i64::from(n),
                });
            }
        };
        add("cpu", self.cpus);
        add("mem_gib", self.mem);
        if let Some(model) = &self.gpu_model {
            add(model, self.gpus);
        }
        demand
    }

    /// The job: the file's (if any) with the flags given over it.
    fn job(&self) -> anyhow::Result<JobSubmission> {
        let demand = self.demand();
        let mut job = match &self.file {
            Some(path) => read_job_file(path, |table| {
                if !demand.is_empty() {
                    table
                        .entry("demand")
                        .or_insert_with(|| toml::Value::Array(Vec::new()));
                }
                if let Some(duration) = self.duration {
                    table.insert("duration".into(), toml::Value::Integer(duration.0));
                }
                Ok(())
            })?,
            None => {
                let duration = self
                    .duration
                    .context("--duration is required (e.g. --duration 2h)")?;
                JobSubmission::new(Vec::new(), DurationValue::Seconds(duration.0))
            }
        };
        job.demand.extend(demand);
        if job.demand.is_empty() {
            bail!("say what the job needs: --cpus, --mem, --gpus with --gpu-model, or -f job.json");
        }
        if let Some(deadline) = self.deadline {
            job.deadline = Some(DurationValue::Seconds(deadline.0));
        }
        if let Some(data) = &self.data {
            job.data = Some(parse_data(data)?);
        }
        if let Some(origin) = &self.origin {
            job.origin = Some(origin.clone());
        }
        if let Some(latency) = &self.latency {
            job.latency_target = Some(parse_latency(latency)?);
        }
        if let Some(site) = &self.site {
            job.site = Some(site.clone());
        }
        if let Some(priority) = self.priority {
            job.priority = priority;
        }
        if let Some(gang) = self.gang {
            job.gang = gang;
        }
        if let Some(class) = self.class {
            job.class = Some(class);
        }
        if self.preemptible {
            job.preemptible = true;
        }
        if self.no_delay {
            job.delayable = false;
        }
        if !self.residency.is_empty() {
            job.residency = self.residency.clone();
        }
        if let Some(spill) = &self.spill {
            job.spill = parse_spill(spill, "--spill")?;
        }
        if !self.command.is_empty() {
            job.command = self.command.clone();
        }
        Ok(job)
    }
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let job = args.job()?;
    let submitted = runtime()?.block_on(
        args.remote
            .client()?
            .submit(&job, args.idempotency_key.as_deref()),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&submitted.job)?);
    } else {
        println!("{}", submitted.job.id);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Only this state.
    #[arg(long)]
    state: Option<String>,
    /// Only this site.
    #[arg(long)]
    site: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Start after this job id (the previous page's last).
    #[arg(long)]
    after: Option<i64>,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

fn job_row(j: &JobDoc) -> Vec<String> {
    let spec = j.submission().ok();
    let demand = spec
        .as_ref()
        .map(|s| {
            s.demand
                .iter()
                .map(|d| format!("{} {}", d.count, d.class))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let duration = match spec.as_ref().map(|s| &s.duration) {
        Some(DurationValue::Seconds(s)) => s.to_string(),
        Some(DurationValue::Text(t)) => t.clone(),
        None => "-".into(),
    };
    vec![
        j.id.to_string(),
        j.state.to_string(),
        j.site.clone().unwrap_or_else(|| "-".into()),
        demand,
        duration,
        j.exit_code.map_or("-".into(), |c| c.to_string()),
    ]
}

pub fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let state = match &args.state {
        None => None,
        Some(s) => Some(JobState::parse(s).with_context(|| {
            format!(
                "--state {s:?} is not a state (one of {})",
                JobState::ALL.map(JobState::name).join(", ")
            )
        })?),
    };
    let query = JobQuery {
        state,
        site: args.site.clone(),
        after: args.after,
        limit: Some(args.limit),
        ..JobQuery::default()
    };
    let page = runtime()?.block_on(args.remote.client()?.jobs(&query))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    let mut rows = vec![
        ["id", "state", "site", "demand", "duration s", "exit"]
            .map(String::from)
            .to_vec(),
    ];
    rows.extend(page.jobs.iter().map(job_row));
    // Where jobs wait, one word for why (`suanwang explain ID` says more).
    if page.jobs.iter().any(|j| j.state == JobState::Pending) {
        rows[0].push("why".into());
        for (row, j) in rows[1..].iter_mut().zip(&page.jobs) {
            row.push(j.wait.map_or("-", |w| w.word()).to_string());
        }
    }
    print!("{}", table(&rows));
    if let Some(next) = page.next {
        println!("more: --after {next}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    remote: Remote,
    /// Job id.
    id: i64,
    /// Print the document as JSON.
    #[arg(long)]
    json: bool,
}

pub fn job(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.job(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let mut rows = vec![
            ["id", "state", "site", "demand", "duration s", "exit"]
                .map(String::from)
                .to_vec(),
        ];
        rows.push(job_row(&doc));
        print!("{}", table(&rows));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Job id.
    id: i64,
    /// Print the document as JSON.
    #[arg(long)]
    json: bool,
    /// Keep printing new output until the job ends.
    #[arg(long, short = 'f')]
    follow: bool,
}

/// `suanwang logs ID`: the tail of the job's output, as its agent last sent it.
pub fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    runtime()?.block_on(async {
        let mut shown = String::new();
        loop {
            let doc = client.logs(args.id).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            let tail = doc.tail.as_str();
            // Print what is new since the last look (the tail may have moved on).
            let new = match tail.find(shown.as_str()) {
                Some(at) if !shown.is_empty() => &tail[at + shown.len()..],
                _ => tail,
            };
            print!("{new}");
            shown = tail.to_string();
            if !args.follow || doc.complete {
                if tail.is_empty() && !args.follow {
                    eprintln!("(no output yet for job {})", args.id);
                }
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    })
}

pub fn cancel(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.cancel(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("job {} {}", doc.id, doc.state);
    }
    Ok(())
}

pub fn explain(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.explain(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("job {}: {}", doc.job.id, doc.job.state);
    for d in &doc.decisions {
        match &d.decision {
            Decision::Placed {
                explanation,
                preempts,
                spill_choice,
                passed_over,
                ..
            } => {
                print_spill(spill_choice.as_deref(), passed_over);
                for p in preempts {
                    println!(
                        "preempts: job {} ({}, attempt {}) at {}: it had run {} s, about {:.2} CNY of work lost",
                        p.job, p.class, p.attempt, p.site, p.ran_secs, p.lost_cny
                    );
                }
                let mut rows = vec![
                    [
                        "",
                        "site",
                        "start h",
                        "score",
                        "compute",
                        "energy",
                        "carbon kg",
                        "transfer",
                        "wait h",
                    ]
                    .map(String::from)
                    .to_vec(),
                ];
                let row = |mark: &str, c: &CandidateView| {
                    let mut row = vec![mark.to_string(), c.site.clone()];
                    row.extend(
                        [
                            c.start_h,
                            c.score,
                            c.compute_cny,
                            c.energy_cny,
                            c.carbon_kg,
                            c.transfer_cny,
                            c.wait_h,
                        ]
                        .map(|x| format!("{x:.3}")),
                    );
                    row
                };
                rows.push(row("chosen", &explanation.chosen));
                for a in &explanation.alternatives {
                    let mark = if a.guard_rejected {
                        "guard-refused"
                    } else {
                        "not chosen"
                    };
                    rows.push(row(mark, a));
                }
                print!("{}", table(&rows));
            }
            Decision::Pending { reason } => {
                let code = serde_json::to_value(reason.reason)?;
                match &reason.detail {
                    Some(detail) => {
                        println!("pending: {} ({detail})", code.as_str().unwrap_or("?"))
                    }
                    None => println!("pending: {}", code.as_str().unwrap_or("?")),
                }
            }
            Decision::Rejected { reason } => println!("rejected: {reason}"),
            Decision::Lost { reason } => println!("lost: {reason}"),
            Decision::Requeued { reason } => println!("requeued: {reason}"),
            Decision::Preempted { preemption, reason } => println!(
                "preempted (attempt {}) by job {} ({}): {reason}",
                preemption.attempt, preemption.by_job, preemption.by_class
            ),
            Decision::Report {
                state,
                site,
                agent,
                message,
            } => println!("report: {state} at {site} (agent {agent}): {message}"),
        }
    }
    if let Some(wait) = &doc.wait {
        print_wait(wait)?;
    }
    if !doc.wait_history.is_empty() {
        println!("why it waited, newest first:");
        let mut rows = vec![
            ["since", "reason", "earliest start"]
                .map(String::from)
                .to_vec(),
        ];
        for w in &doc.wait_history {
            rows.push(vec![
                crate::top::utc(w.at),
                wait_name(w.reason.reason)?,
                w.reason
                    .earliest_start
                    .map_or("none within 7 days".into(), crate::top::utc),
            ]);
        }
        print!("{}", table(&rows));
    }
    Ok(())
}

/// A wait code as the API writes it (`no-capacity-in-horizon`).
fn wait_name(code: suanwang_client::api::WaitCode) -> anyhow::Result<String> {
    Ok(serde_json::to_value(code)?
        .as_str()
        .unwrap_or("?")
        .to_string())
}

/// The job's current reason for waiting, site by site.
/// The spill-over choice a job was placed from and those passed over before
/// it, each site with its reason.
fn print_spill(choice: Option<&str>, passed_over: &[suanwang_client::api::PassedOverDoc]) {
    let Some(choice) = choice else {
        return;
    };
    if passed_over.is_empty() {
        println!("placed from its first spill-over choice, {choice}");
        return;
    }
    println!("placed from spill-over choice {choice}, after passing over:");
    let mut rows = vec![
        ["choice", "site", "reason", "until", "detail"]
            .map(String::from)
            .to_vec(),
    ];
    for o in passed_over {
        if o.sites.is_empty() {
            rows.push(vec![
                o.choice.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "names no site now".into(),
            ]);
        }
        for s in &o.sites {
            rows.push(vec![
                o.choice.clone(),
                s.site.clone(),
                s.reason.name().to_string(),
                s.until.map_or("-".into(), crate::top::utc),
                s.detail.clone(),
            ]);
        }
    }
    print!("{}", table(&rows));
}

fn print_wait(wait: &suanwang_client::api::WaitDoc) -> anyhow::Result<()> {
    let reason = &wait.reason;
    println!(
        "waiting: {} since {}; earliest start: {}",
        wait_name(reason.reason)?,
        crate::top::utc(wait.at),
        reason
            .earliest_start
            .map_or("none within 7 days".into(), crate::top::utc)
    );
    if let Some(detail) = &reason.detail {
        println!("  {detail}");
    }
    if !reason.sites.is_empty() {
        let mut rows = vec![
            ["site", "reason", "until", "detail"]
                .map(String::from)
                .to_vec(),
        ];
        for s in &reason.sites {
            rows.push(vec![
                s.site.clone(),
                s.reason.name().to_string(),
                s.until.map_or("-".into(), crate::top::utc),
                s.detail.clone(),
            ]);
        }
        print!("{}", table(&rows));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(flatten)]
    remote: Remote,
    /// Print the sites as JSON.
    #[arg(long)]
    json: bool,
}

pub fn sites(args: SitesArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.sites())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let mut rows = vec![
        [
            "id",
            "name",
            "jurisdiction",
            "PUE",
            "planned capacity",
            "measured vs declared",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &doc {
        let capacity = s
            .capacity
            .planned
            .iter()
            .map(|(class, units)| format!("{class} {units}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            s.id.clone(),
            s.site.name.clone(),
            s.site.jurisdiction.to_string(),
            s.site.pue.to_string(),
            capacity,
            capacity_note(&s.capacity),
        ]);
    }
    print!("{}", table(&rows));
    let probes: Vec<_> = doc
        .iter()
        .flat_map(|s| s.capacity.probes.iter().map(move |p| (&s.id, p)))
        .collect();
    if !probes.is_empty() {
        println!("\nprobes (nominal vs measured):");
        let mut rows = vec![
            [
                "site",
                "agent",
                "class",
                "units",
                "nominal GFLOPS",
                "measured GFLOPS",
                "how",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for (site, p) in probes {
            rows.push(vec![
                site.clone(),
                p.agent.clone(),
                p.probe.class.clone(),
                p.probe.units.to_string(),
                p.nominal_gflops.map_or("-".into(), |g| format!("{g:.0}")),
                p.probe
                    .gflops
                    .map_or("not run".into(), |g| format!("{g:.1}")),
                p.probe
                    .note
                    .clone()
                    .unwrap_or_else(|| p.probe.method.clone()),
            ]);
        }
        print!("{}", table(&rows));
    }
    Ok(())
}

/// How a site's measured capacity compares with its declared one, in words:
/// `unmeasured`, `as declared`, `BELOW declared: cpu 2 of 1536`…
fn capacity_note(doc: &suanwang_client::api::CapacityDoc) -> String {
    use suanwang_client::api::CapacityStatus;
    let measured = doc.measured.clone().unwrap_or_default();
    let differing = |below: bool| {
        doc.declared
            .keys()
            .chain(measured.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|class| {
                let declared = doc.declared.get(class).copied().unwrap_or(0);
                let got = measured.get(class).copied().unwrap_or(0);
                let shown = if below {
                    got < declared
                } else {
                    got > declared
                };
                shown.then(|| format!("{class} {got} of {declared}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let agents = doc.live_agents;
    match doc.status {
        CapacityStatus::Unmeasured => "unmeasured (no live agent): plans with declared".into(),
        CapacityStatus::AsDeclared => format!("as declared ({agents} agent(s))"),
        CapacityStatus::BelowDeclared => format!("BELOW declared: {}", differing(true)),
        CapacityStatus::AboveDeclared => format!("above declared: {}", differing(false)),
    }
}

#[derive(Debug, Args)]
pub struct AcceleratorsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Print the catalogue as JSON.
    #[arg(long)]
    json: bool,
}

pub fn accelerators(args: AcceleratorsArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.accelerators())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    print!("{}", accelerator_table(&doc));
    Ok(())
}

/// The catalogue as a table: one model a row, figures the vendor does not
/// publish as `—`, and where each row's figures come from.
fn accelerator_table(doc: &[suanwang_client::api::AcceleratorDoc]) -> String {
    let figure = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |v| format!("{v}"));
    let mut rows = vec![
        [
            "name",
            "vendor",
            "model",
            "family",
            "memory GiB",
            "FP16 TFLOPS (dense)",
            "",
            "source",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for model in doc {
        rows.push(vec![
            model.name.clone(),
            model.vendor.clone(),
            model.model.clone(),
            model.family.clone(),
            figure(model.memory_gib),
            figure(model.fp16_tflops),
            if model.builtin { "" } else { "added" }.to_string(),
            model.source.chars().take(60).collect::<String>()
                + if model.source.chars().count() > 60 {
                    "…"
                } else {
                    ""
                },
        ]);
    }
    table(&rows)
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    remote: Remote,
    /// Site id.
    site: String,
    /// Why (drain only), shown to other operators.
    #[arg(long, default_value = "")]
    reason: String,
    /// Print the site document as JSON.
    #[arg(long)]
    json: bool,
}

/// `suanwang drain SITE` / `undrain SITE` (operator token).
pub fn drain(args: DrainArgs, drain: bool) -> anyhow::Result<()> {
    let reason = drain.then_some(args.reason.as_str());
    let client = args.remote.client()?;
    let doc = runtime()?.block_on(async {
        match reason {
            Some(reason) => client.drain(&args.site, Some(reason)).await,
            None => client.undrain(&args.site).await,
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if doc.drained.is_none() {
        println!("site {} takes work", args.site);
    } else {
        println!(
            "site {} drained: no new work; placed jobs go elsewhere",
            args.site
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Print the agents as JSON.
    #[arg(long)]
    json: bool,
}

/// `suanwang agents` (operator token): every agent, live or not.
pub fn agents(args: AgentsArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client()?.agents())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let mut rows = vec![
        [
            "agent",
            "site",
            "live",
            "executor",
            "host",
            "last seen",
            "running",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in &doc {
        rows.push(vec![
            a.id.clone(),
            a.site.clone(),
            if a.live { "yes" } else { "no" }.to_string(),
            a.info.executor.clone(),
            a.info.hostname.clone().unwrap_or_else(|| "-".into()),
            a.last_seen.to_string(),
            a.telemetry
                .as_ref()
                .and_then(|t| t.running_jobs)
                .map_or("-".into(), |n| n.to_string()),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Option<TokensCommand>,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum TokensCommand {
    /// The tokens you manage (an admin: all; a provider: its sites' agent
    /// tokens), by id — never the tokens themselves. The default.
    List,
    /// Issue a token through the API and print it (the one time it is shown).
    Issue {
        /// Its role: a provider issues `agent` tokens for its own sites.
        #[arg(long, value_enum)]
        role: crate::serve::RoleArg,
        /// The tenant (--role tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The provider (--role provider).
        #[arg(long)]
        provider: Option<String>,
        /// The site (--role agent).
        #[arg(long)]
        site: Option<String>,
    },
    /// Revoke a token by its id (at least its first 12 hex digits): it stops
    /// working at once.
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// `suanwang tokens` (an admin's or a provider's token).
pub fn tokens(args: TokensArgs) -> anyhow::Result<()> {
    use crate::serve::RoleArg;
    use suanwang_client::api::NewToken;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    match args.command.unwrap_or(TokensCommand::List) {
        TokensCommand::List => {
            let doc = runtime.block_on(client.tokens())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            let mut rows = vec![
                ["id", "role", "tenant", "provider", "site", "created"]
                    .map(String::from)
                    .to_vec(),
            ];
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            for t in doc {
                rows.push(vec![
                    t.id,
                    t.role.name().to_string(),
                    or_dash(t.tenant_id.map(|i| i.to_string())),
                    or_dash(t.provider_id.map(|i| i.to_string())),
                    or_dash(t.site),
                    t.created_at.to_string(),
                ]);
            }
            print!("{}", table(&rows));
        }
        TokensCommand::Issue {
            role,
            tenant,
            provider,
            site,
        } => {
            let need = |v: Option<String>, flag: &str| {
                v.with_context(|| format!("this role needs {flag}"))
            };
            let request = match role {
                RoleArg::Admin => NewToken::Admin {},
                RoleArg::Operator => NewToken::Operator {},
                RoleArg::Tenant => NewToken::Tenant {
                    tenant: need(tenant, "--tenant")?,
                },
                RoleArg::Provider => NewToken::Provider {
                    provider: need(provider, "--provider")?,
                },
                RoleArg::Agent => NewToken::Agent {
                    site: need(site, "--site")?,
                },
            };
            let issued = runtime.block_on(client.create_token(&request))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&issued)?);
            } else {
                println!("{}", issued.token);
                eprintln!("token {} ({}) issued", issued.id, issued.role.name());
            }
        }
        TokensCommand::Revoke { id } => {
            let revoked = runtime.block_on(client.revoke_token(&id))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&revoked)?);
            } else {
                println!("token {} ({}) revoked", revoked.id, revoked.role.name());
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: QuotaCommand,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum QuotaCommand {
    /// Replace a tenant's caps for one scope (the whole network, or --site):
    /// `suanwang quota set acme cpu=64,a800=8 [--site hami]`. An empty list
    /// (`""`) clears the scope.
    Set {
        /// The tenant.
        tenant: String,
        /// CLASS=UNITS pairs, comma-separated.
        caps: String,
        /// Cap at this site only (default: network-wide).
        #[arg(long)]
        site: Option<String>,
    },
    /// The quotas you may see (an admin or operator: all; a tenant: its own),
    /// optionally of one tenant.
    Show {
        /// Only this tenant.
        tenant: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: ShareCommand,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum ShareCommand {
    /// Set a tenant's weight among its siblings and, with --parent, the tenant
    /// that groups it: `suanwang share set dept-a --weight 3 --parent acme`.
    /// Without --parent the tenant is at the top level.
    Set {
        /// The tenant.
        tenant: String,
        /// Its weight (more than 0, at most 1000000).
        #[arg(long)]
        weight: f64,
        /// The tenant that groups it.
        #[arg(long)]
        parent: Option<String>,
    },
    /// The shares you may see (an admin or operator: all; a tenant: its own),
    /// optionally of one tenant.
    Show {
        /// Only this tenant.
        tenant: Option<String>,
    },
}

fn print_shares(docs: Vec<suanwang_client::api::ShareDoc>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(());
    }
    let mut rows = vec![
        ["tenant", "group", "weight", "entitled", "usage"]
            .map(String::from)
            .to_vec(),
    ];
    for s in docs {
        rows.push(vec![
            s.tenant,
            s.parent.unwrap_or_else(|| "-".into()),
            format!("{}", s.weight),
            format!("{:.1}%", s.entitled * 100.0),
            s.usage
                .map_or_else(|| "-".into(), |u| format!("{:.1}%", u * 100.0)),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `suanwang share set|show`.
pub fn share(args: ShareArgs) -> anyhow::Result<()> {
    use suanwang_client::api::ShareSet;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    match args.command {
        ShareCommand::Set {
            tenant,
            weight,
            parent,
        } => {
            let doc = runtime.block_on(client.set_share(&tenant, &ShareSet { weight, parent }))?;
            print_shares(vec![doc], args.json)
        }
        ShareCommand::Show { tenant } => {
            let docs = runtime.block_on(client.shares())?;
            let docs = docs
                .into_iter()
                .filter(|s| tenant.as_ref().is_none_or(|t| *t == s.tenant))
                .collect();
            print_shares(docs, args.json)
        }
    }
}

#[derive(Debug, Args)]
pub struct ClassArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: ClassCommand,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum ClassCommand {
    /// Set a tenant's priority class, the highest its jobs run at and their
    /// default: `suanwang class set acme urgent`.
    Set {
        /// The tenant.
        tenant: String,
        /// batch, normal or urgent.
        class: suanwang_client::api::PriorityClass,
    },
    /// The classes you may see (an admin or operator: all; a tenant: its own),
    /// optionally of one tenant.
    Show {
        /// Only this tenant.
        tenant: Option<String>,
    },
}

/// `suanwang class set|show`.
pub fn class(args: ClassArgs) -> anyhow::Result<()> {
    use suanwang_client::api::ClassSet;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    let docs = match args.command {
        ClassCommand::Set { tenant, class } => {
            vec![runtime.block_on(client.set_class(&tenant, &ClassSet { class }))?]
        }
        ClassCommand::Show { tenant } => runtime
            .block_on(client.classes())?
            .into_iter()
            .filter(|c| tenant.as_ref().is_none_or(|t| *t == c.tenant))
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(());
    }
    let mut rows = vec![["tenant", "class"].map(String::from).to_vec()];
    rows.extend(
        docs.iter()
            .map(|d| vec![d.tenant.clone(), d.class.to_string()]),
    );
    print!("{}", table(&rows));
    Ok(())
}

#[derive(Debug, Args)]
pub struct SpillArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: SpillCommand,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum SpillCommand {
    /// Set a tenant's default spill-over list (used by its jobs that name
    /// none) and, with --own-provider, the provider whose own tenant it is
    /// (whose sites its jobs try first):
    /// `suanwang spill set lab site:chongqing-liangjiang,jurisdiction:cn-mainland --own-provider acme`.
    /// An empty list and no --own-provider clear both.
    Set {
        /// The tenant.
        tenant: String,
        /// Choices, most wanted first: site:ID, provider:NAME,
        /// jurisdiction:NAME or anywhere, comma-separated.
        #[arg(default_value = "")]
        choices: String,
        /// The provider that names this tenant as its own.
        #[arg(long)]
        own_provider: Option<String>,
    },
    /// The defaults you may see (an admin or operator: all; a tenant: its
    /// own), optionally of one tenant.
    Show {
        /// Only this tenant.
        tenant: Option<String>,
    },
}

fn print_spills(docs: Vec<suanwang_client::api::SpillDoc>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(());
    }
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.join(",")
        }
    };
    let mut rows = vec![
        ["tenant", "default", "own provider", "effective"]
            .map(String::from)
            .to_vec(),
    ];
    for s in docs {
        rows.push(vec![
            s.tenant,
            list(&s.spill),
            s.own_provider.unwrap_or_else(|| "-".into()),
            list(&s.effective),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `suanwang spill set|show`.
pub fn spill(args: SpillArgs) -> anyhow::Result<()> {
    use suanwang_client::api::SpillSet;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    match args.command {
        SpillCommand::Set {
            tenant,
            choices,
            own_provider,
        } => {
            let set = SpillSet {
                spill: parse_spill(&choices, "choices")?,
                own_provider,
            };
            let doc = runtime.block_on(client.set_spill(&tenant, &set))?;
            print_spills(vec![doc], args.json)
        }
        SpillCommand::Show { tenant } => {
            let docs = runtime.block_on(client.spills())?;
            let docs = docs
                .into_iter()
                .filter(|s| tenant.as_ref().is_none_or(|t| *t == s.tenant))
                .collect();
            print_spills(docs, args.json)
        }
    }
}

/// Parses `cpu=64,a800=8` into class → units, naming the pair at fault.
fn parse_caps(text: &str) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let mut caps = std::collections::BTreeMap::new();
    for (i, pair) in text.split(',').map(str::trim).enumerate() {
        if pair.is_empty() {
            continue;
        }
        let (class, units) = pair
            .split_once('=')
            .with_context(|| format!("quota pair {} ({pair:?}): expected CLASS=UNITS", i + 1))?;
        let units: i64 = units.trim().parse().with_context(|| {
            format!(
                "quota pair {} ({pair:?}): {:?} is not a whole number",
                i + 1,
                units.trim()
            )
        })?;
        if caps.insert(class.trim().to_string(), units).is_some() {
            anyhow::bail!(
                "quota pair {} ({pair:?}): {} given twice",
                i + 1,
                class.trim()
            );
        }
    }
    Ok(caps)
}

fn print_quotas(docs: Vec<suanwang_client::api::QuotaDoc>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(());
    }
    let mut rows = vec![
        ["tenant", "site", "class", "units", "updated"]
            .map(String::from)
            .to_vec(),
    ];
    for q in docs {
        rows.push(vec![
            q.tenant,
            q.site.unwrap_or_else(|| "(network)".into()),
            q.class,
            q.units.to_string(),
            q.updated_at.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `suanwang quota set|show`.
pub fn quota(args: QuotaArgs) -> anyhow::Result<()> {
    use suanwang_client::api::QuotaSet;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    match args.command {
        QuotaCommand::Set { tenant, caps, site } => {
            let set = QuotaSet {
                site,
                caps: parse_caps(&caps)?,
            };
            let docs = runtime.block_on(client.set_quota(&tenant, &set))?;
            print_quotas(docs, args.json)
        }
        QuotaCommand::Show { tenant } => {
            let docs = runtime.block_on(client.quotas())?;
            let docs = docs
                .into_iter()
                .filter(|q| tenant.as_ref().is_none_or(|t| *t == q.tenant))
                .collect();
            print_quotas(docs, args.json)
        }
    }
}
