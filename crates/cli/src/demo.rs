//! `suanwang demo`: the whole network on one machine. The control plane on SQLite
//! in a data directory, the topology's sites each run by an in-process agent that
//! speaks the real agent protocol over HTTP (with a simulated executor), a steady
//! stream of realistic jobs from several tenants, and a network clock running
//! `--speed` times faster than the wall clock so that hours of jobs pass in
//! minutes.

use anyhow::{Context, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use suanwang_agent::{AgentConfig, simulated::Simulated};
use suanwang_client::Client;
use suanwang_client::api::{DataIn, DemandIn, DurationValue, JobSubmission};
use suanwang_server::clock::Clock;
use suanwang_server::{App, agent::AgentPolicy, auth};
use suanwang_sim::fill::draw;
use suanwang_store::{JobState, Role, SqliteStore, Store};
use suanwang_topology::Topology;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to serve the API on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Data directory: the SQLite database and the network clock. Reused when
    /// it exists (see --reset).
    #[arg(long, default_value = "suanwang-demo")]
    data: PathBuf,
    /// Start from an empty data directory.
    #[arg(long)]
    reset: bool,
    /// Network seconds per wall second (60: an hour passes in a minute).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Jobs submitted per network hour, across all tenants.
    #[arg(long, default_value_t = 60.0)]
    rate: f64,
    /// Stop after this much wall time (e.g. 90s, 10m, 1h30m); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::wall_duration)]
    run_for: Option<Duration>,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Topology: a built-in name or a TOML file.
    #[arg(long, default_value = "cn-west")]
    topology: String,
    /// Run this site's jobs as real processes on this machine (the local
    /// executor) instead of simulating them (repeatable).
    #[arg(long = "real-site", value_name = "SITE")]
    real_sites: Vec<String>,
    /// Serve HTTPS with a self-signed private CA made in DATA/tls (kept across
    /// runs); the agents and the workload trust it, and so can you with
    /// SUANWANG_CA_CERT=DATA/tls/ca.pem.
    #[arg(long)]
    tls: bool,
}

/// A demo tenant: a name, where it submits from, and its mix of work.
struct Tenant {
    name: &'static str,
    origin: &'static str,
    /// Shares of training, batch inference, HPC and small-GPU jobs.
    mix: [f64; 4],
}

/// Tenants of the hub (names invented; origins are cn-west's regions).
const TENANTS: [Tenant; 5] = [
    Tenant {
        name: "yuzhou-auto",
        origin: "chongqing",
        mix: [0.3, 0.2, 0.5, 0.0],
    },
    Tenant {
        name: "tianfu-bio",
        origin: "chengdu",
        mix: [0.1, 0.3, 0.6, 0.0],
    },
    Tenant {
        name: "pudong-fin",
        origin: "shanghai",
        mix: [0.1, 0.7, 0.2, 0.0],
    },
    Tenant {
        name: "haidian-ai",
        origin: "beijing",
        mix: [0.7, 0.3, 0.0, 0.0],
    },
    Tenant {
        name: "liangjiang-smb",
        origin: "chongqing",
        mix: [0.0, 0.2, 0.1, 0.7],
    },
];

/// The `n`th job of the demo's workload for `tenant`, deterministic per seed. Its
/// command is runnable anywhere (`sh`): it prints what a real job would run and
/// then sleeps for part of its declared run time divided by the clock's `speed`,
/// so that a real agent joined to the demo (`--real-site`) runs it for real.
fn demo_job(seed: u64, n: u64, tenant: &Tenant, regions: &[String], speed: f64) -> JobSubmission {
    let (mut job, what) = demo_work(seed, n, tenant, regions);
    let declared = suanwang_agent::simulated::declared_secs(&job).unwrap_or(60) as f64;
    let share = 0.35 + 0.65 * draw(seed, n, 7);
    let secs = declared * share / speed;
    job.command = vec![
        "sh".into(),
        "-c".into(),
        format!(
            "echo \"suanwang demo job {n}: {what}\"; echo \"working for {secs:.1}s (of {declared:.0}s declared, at clock speed {speed})\"; sleep {secs:.1}; echo done"
        ),
    ];
    job
}

/// The job's resources, times and data, and what it stands for (a command line).
fn demo_work(seed: u64, n: u64, tenant: &Tenant, regions: &[String]) -> (JobSubmission, String) {
    let u = |tag: u64| draw(seed, n, tag);
    let log_uniform = |lo: f64, hi: f64, tag: u64| lo * (hi / lo).powf(u(tag));
    let pick = |options: &[&'static str], tag: u64| {
        options[(u(tag) * options.len() as f64) as usize % options.len()]
    };
    let origin = if regions.iter().any(|r| r == tenant.origin) {
        tenant.origin.to_string()
    } else {
        regions.first().cloned().unwrap_or_default()
    };
    let kind = {
        let x = u(1);
        let mut acc = 0.0;
        tenant
            .mix
            .iter()
            .position(|w| {
                acc += w;
                x < acc
            })
            .unwrap_or(2)
    };
    let hours = |h: f64| DurationValue::Text(format!("{}m", (h * 60.0).round().max(5.0) as i64));
    let units = |class: &str, count: u32| DemandIn {
        class: class.to_string(),
        count: i64::from(count),
    };
    let data = |size_gib: f64| DataIn {
        size_gib: size_gib.round(),
        location: origin.clone(),
    };
    let cn = vec!["cn-mainland".to_string()];
    let (mut job, what, deadline) = match kind {
        0 => {
            let gpus = [8, 8, 16][(u(2) * 3.0) as usize % 3];
            let demand = vec![
                units(pick(&["a800", "h800", "ascend910b"], 3), gpus),
                units("cpu", gpus * 8),
                units("mem_gib", gpus * 64),
            ];
            let mut job = JobSubmission::new(demand, hours(log_uniform(2.0, 12.0, 4)));
            job.data = Some(data(log_uniform(200.0, 2000.0, 5)));
            job.residency = cn;
            let what = format!("torchrun --nproc-per-node {} train.py", gpus.min(8));
            (job, what, Some("48h"))
        }
        1 => {
            let gpus = [1, 2, 4][(u(2) * 3.0) as usize % 3];
            let demand = vec![
                units(pick(&["l40s", "h20", "rtx4090"], 3), gpus),
                units("cpu", gpus * 8),
            ];
            let mut job = JobSubmission::new(demand, hours(log_uniform(0.25, 2.0, 4)));
            job.data = Some(data(log_uniform(10.0, 100.0, 5)));
            job.residency = cn;
            let what = format!("python batch_infer.py --shard {}", n % 16);
            (job, what, Some("8h"))
        }
        3 => {
            let demand = vec![units("rtx4090", 1 + (u(2) * 2.0) as u32), units("cpu", 8)];
            let mut job = JobSubmission::new(demand, hours(log_uniform(0.5, 3.0, 4)));
            job.residency = cn;
            (job, "python finetune_lora.py".to_string(), None)
        }
        _ => {
            let cores = (log_uniform(64.0, 1024.0, 2) / 32.0).round().max(1.0) as u32 * 32;
            let demand = vec![units("cpu", cores), units("mem_gib", cores * 2)];
            let mut job = JobSubmission::new(demand, hours(log_uniform(1.0, 8.0, 4)));
            job.data = Some(data(log_uniform(20.0, 500.0, 5)));
            (job, format!("mpirun -n {cores} ./solver"), Some("24h"))
        }
    };
    job.origin = Some(origin.clone());
    job.deadline = deadline.map(|d| DurationValue::Text(d.to_string()));
    (job, what)
}

/// Empties the data directory, refusing one that does not look like ours.
fn reset(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let ours = dir.join("suanwang.db").exists()
        || std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
    if !ours {
        bail!(
            "--reset: {} has no suanwang.db and is not empty; refusing to delete it",
            dir.display()
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn format_unix(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (y, m, d) = suanwang_model::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn capacity_of(site: &suanwang_model::Site) -> BTreeMap<String, u64> {
    site.capacity
        .iter()
        .filter(|(_, units)| *units > 0)
        .map(|(class, units)| (class.name().to_string(), u64::from(units)))
        .collect()
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 100_000.0) {
        bail!("--speed must be in (0, 100000] (got {})", args.speed);
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!(
            "--rate must be a positive number of jobs per network hour (got {})",
            args.rate
        );
    }
    let run_for = args.run_for;
    let topology = crate::load_topology(&args.topology)?;
    for site in &args.real_sites {
        if topology.site(site).is_none() {
            bail!(
                "--real-site {site:?}: no such site in {} (sites: {})",
                topology.name,
                topology
                    .sites
                    .iter()
                    .map(|s| s.id.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if args.reset {
        reset(&args.data)?;
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args, topology, run_for))
}

async fn demo(args: DemoArgs, topology: Topology, run_for: Option<Duration>) -> anyhow::Result<()> {
    let db = args.data.join("suanwang.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    // The network clock carries on from where the last run left it.
    let clock_file = args.data.join("clock");
    let resumed = std::fs::read_to_string(&clock_file)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    let clock = Clock::accelerated(resumed.unwrap_or(0).max(wall_now()), args.speed);
    let now = clock.now();
    let admin = auth::issue_token(&store, Role::Admin, None, now).await?;
    let operator = auth::issue_token(&store, Role::Operator, None, now).await?;
    let mut tenants = Vec::new();
    for tenant in &TENANTS {
        let token = auth::issue_token(&store, Role::Tenant, Some(tenant.name), now).await?;
        tenants.push((tenant, token));
    }
    std::fs::write(args.data.join("admin.token"), format!("{admin}\n"))
        .context("cannot write admin.token")?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (try --listen 127.0.0.1:0)",
                args.listen
            )
        })?;
    let tls = if args.tls {
        let dir = args.data.join("tls");
        let ca = dir.join("ca.pem");
        if !ca.exists() {
            let hosts = ["localhost", "127.0.0.1", "::1"].map(String::from);
            crate::tls::init(&dir, &hosts, 397)?;
        }
        let config = suanwang_server::tls::server_config(suanwang_server::tls::TlsFiles {
            cert: &dir.join("server.pem"),
            key: &dir.join("server-key.pem"),
            client_ca: None,
        })?;
        Some((config, ca))
    } else {
        None
    };
    let client_tls = suanwang_client::TlsOptions {
        ca_cert: tls.as_ref().map(|(_, ca)| ca.clone()),
        identity: None,
    };
    let url = format!(
        "{}://{}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    // Reads the CA once here, so that a bad one stops the demo with its name.
    Client::new(&url, None).with_tls(&client_tls)?;
    let mut app = App::with_clock(store.clone(), topology.clone(), clock);
    app.load_edits().await?;
    app.agents = AgentPolicy {
        heartbeat_every: Duration::from_millis(1000),
        lease_ttl: Duration::from_secs(10),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let scheduler = app.start_scheduler(Duration::from_secs(2), stopped());
    let server = match &tls {
        Some((config, _)) => tokio::spawn(suanwang_server::run_tls(
            listener,
            Arc::clone(config),
            app,
            stopped(),
        )),
        None => tokio::spawn(suanwang_server::run(listener, app, stopped())),
    };

    let mut agents = Vec::new();
    for (i, site) in topology.sites.iter().enumerate() {
        let mut config = AgentConfig::new(&url, &operator, &site.id.0);
        config.tls = client_tls.clone();
        if args.real_sites.contains(&site.id.0) {
            let dir = args.data.join("agents").join(&site.id.0);
            let (executor, _) = suanwang_agent::local::Local::new(&dir, Some(capacity_of(site)))
                .with_context(|| format!("cannot use {}", dir.display()))?;
            config.hostname = sysinfo::System::host_name();
            agents.push(tokio::spawn(suanwang_agent::run(
                config,
                Arc::new(executor),
                stopped(),
            )));
            continue;
        }
        let executor = Arc::new(Simulated::new(
            capacity_of(site),
            args.speed,
            0.02,
            args.seed ^ (i as u64 + 1) << 32,
        ));
        config.hostname = Some(format!("sim-{}", site.id.0));
        agents.push(tokio::spawn(suanwang_agent::run(
            config,
            executor,
            stopped(),
        )));
    }

    let submitted = Arc::new(AtomicU64::new(0));
    let generator = tokio::spawn(generate(
        url.clone(),
        client_tls.clone(),
        tenants.clone(),
        topology.regions.iter().map(|r| r.id.0.clone()).collect(),
        args.seed,
        args.rate,
        args.speed,
        Arc::clone(&submitted),
        stopped(),
    ));

    println!(
        "suanwang demo: {} sites of {} run by simulated agents, clock ×{} (network time {} UTC), data in {}",
        topology.sites.len(),
        topology.name,
        args.speed,
        format_unix(now),
        args.data.display()
    );
    println!("  URL          {url}");
    println!("  admin token  {admin}");
    println!(
        "  tenant token {} (tenant {})",
        tenants[0].1, tenants[0].0.name
    );
    for site in &args.real_sites {
        println!(
            "  site {site} runs its jobs as real processes here (`suanwang logs JOB_ID` shows their output)"
        );
    }
    println!("In another terminal:");
    match &tls {
        Some((_, ca)) => println!(
            "  export SUANWANG_URL={url} SUANWANG_TOKEN={admin} SUANWANG_CA_CERT={}",
            ca.display()
        ),
        None => println!("  export SUANWANG_URL={url} SUANWANG_TOKEN={admin}"),
    }
    println!("  suanwang top        # or: cargo run --release -- top");
    println!("  suanwang jobs --state Running");
    println!("  suanwang explain JOB_ID");
    match run_for {
        Some(d) => println!("Stops after {}s (or Ctrl-C).", d.as_secs()),
        None => println!("Ctrl-C stops."),
    }

    let deadline = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let shutdown = crate::serve::shutdown_signal();
    tokio::pin!(shutdown);
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = &mut shutdown => break,
            _ = progress.tick() => {
                let _ = std::fs::write(&clock_file, clock.now().to_string());
                if let Ok(counts) = store.count_by_state().await {
                    eprintln!("{}", progress_line(clock.now(), submitted.load(Ordering::Relaxed), &counts));
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = generator.await;
    for agent in agents {
        if let Ok(Err(e)) = agent.await {
            eprintln!("agent: {e}");
        }
    }
    let _ = scheduler.await;
    server.await.context("server task")?.context("server")?;
    std::fs::write(&clock_file, clock.now().to_string()).context("cannot save the clock")?;
    let counts = store.count_by_state().await?;
    println!(
        "{}",
        progress_line(clock.now(), submitted.load(Ordering::Relaxed), &counts)
    );
    println!(
        "demo stopped; `suanwang demo --data {}` carries on from here.",
        args.data.display()
    );
    Ok(())
}

fn progress_line(now: i64, submitted: u64, counts: &BTreeMap<JobState, i64>) -> String {
    let mut line = format!("[{} UTC] submitted {submitted}", format_unix(now));
    for state in JobState::ALL {
        if let Some(n) = counts.get(&state) {
            line.push_str(&format!(" · {} {n}", state.name().to_lowercase()));
        }
    }
    line
}

/// Submits the workload: a Poisson stream of `rate` jobs per network hour, each
/// from a tenant drawn at random, each with an idempotency key so that a retry
/// cannot submit twice.
#[allow(clippy::too_many_arguments)]
async fn generate(
    url: String,
    tls: suanwang_client::TlsOptions,
    tenants: Vec<(&'static Tenant, String)>,
    regions: Vec<String>,
    seed: u64,
    rate: f64,
    speed: f64,
    submitted: Arc<AtomicU64>,
    stop: impl std::future::Future<Output = ()>,
) {
    let clients: Vec<Client> = tenants
        .iter()
        .map(|(_, token)| {
            let client =
                Client::new(&url, Some(token.clone())).with_timeout(Duration::from_secs(10));
            // The CA was read once already, at start: it reads again.
            client.clone().with_tls(&tls).unwrap_or(client)
        })
        .collect();
    // Continue the numbering of an earlier run so keys stay unique.
    let run = wall_now();
    tokio::pin!(stop);
    let mut n: u64 = 0;
    loop {
        let gap_network = -draw(seed ^ run as u64, n, 900).max(1e-9).ln() * 3600.0 / rate;
        let gap = Duration::from_secs_f64((gap_network / speed).min(3600.0));
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(gap) => {}
        }
        let who = (draw(seed ^ run as u64, n, 901) * tenants.len() as f64) as usize % tenants.len();
        let job = demo_job(seed ^ run as u64, n, tenants[who].0, &regions, speed);
        let key = format!("demo-{run}-{n}");
        match clients[who].submit(&job, Some(&key)).await {
            Ok(_) => {
                submitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "demo submit failed"),
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_valid_and_mixed() {
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        let regions: Vec<String> = topology.regions.iter().map(|r| r.id.0.clone()).collect();
        let mut gpu = 0;
        for n in 0..400 {
            let tenant = &TENANTS[n as usize % TENANTS.len()];
            let job = demo_job(3, n, tenant, &regions, 60.0);
            assert_eq!(job, demo_job(3, n, tenant, &regions, 60.0));
            assert_eq!(job.command[0], "sh");
            suanwang_server::check_submission(job.clone(), &topology)
                .unwrap_or_else(|e| panic!("job {n} {job:?}: {e}"));
            if job.demand[0].class != "cpu" {
                gpu += 1;
            }
        }
        assert!((120..360).contains(&gpu), "{gpu} accelerator jobs of 400");
    }

    #[test]
    fn reset_refuses_a_directory_that_is_not_ours() {
        let dir = std::env::temp_dir().join(format!("suanwang-demo-reset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("precious.txt"), "keep").unwrap();
        assert!(reset(&dir).unwrap_err().to_string().contains("refusing"));
        assert!(dir.join("precious.txt").exists());
        std::fs::write(dir.join("suanwang.db"), "").unwrap();
        reset(&dir).unwrap();
        assert!(!dir.exists());
    }
}
