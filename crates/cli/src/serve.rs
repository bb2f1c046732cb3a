//! `suanwang serve` and `suanwang admin token`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;
use suanwang_server::{App, auth};
use suanwang_store::{Actor, PostgresStore, Role, SqliteStore, Store};

/// Default database: a SQLite file under `./suanwang-data/`.
pub const DEFAULT_DATABASE: &str = "sqlite://suanwang-data/suanwang.db";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, default_value = DEFAULT_DATABASE, env = "SUANWANG_DATABASE")]
    database: String,
    /// Topology jobs are checked against (built-in name or TOML file).
    #[arg(long, default_value = "cn-west")]
    topology: String,
    /// How often agents heartbeat (e.g. 5s, 500ms, 1m30s).
    #[arg(long, default_value = "5s", value_parser = crate::wall_duration)]
    heartbeat: Duration,
    /// How long a lease lasts without a heartbeat; a site silent this long is
    /// unreachable and its leased jobs are placed again.
    #[arg(long, default_value = "30s", value_parser = crate::wall_duration)]
    lease_ttl: Duration,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. `suanwang tls init DIR` makes a private CA and one.
    #[arg(long, requires = "tls_key", env = "SUANWANG_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", env = "SUANWANG_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS: ask clients for a certificate signed by this CA (PEM). An
    /// agent presenting one must present one naming its site.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Refuse agents that present no client certificate (needs --tls-client-ca).
    #[arg(long, requires = "tls_client_ca")]
    require_agent_certificate: bool,
    /// Request rate per tenant's, provider's or agent's token: RPS or
    /// RPS/BURST, or off. Over it: 429 with Retry-After.
    #[arg(long, default_value = "100/200", value_parser = parse_rate)]
    rate_limit: RateArg,
    /// Request rate per operator's or admin's token (RPS, RPS/BURST or off).
    #[arg(long, default_value = "off", value_parser = parse_rate)]
    staff_rate_limit: RateArg,
    /// Failed authentications allowed per client address per minute (0: no
    /// limit); past it the address gets 429 until the minute is out.
    #[arg(long, default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Network time runs this many times faster than the wall clock (for
    /// trials and tests: the scheduler's 15-minute slots pass in seconds).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Weighted fair share: how fast tenants' past usage is forgotten (its
    /// half-life, e.g. 7d, 12h), or `off` to consider jobs by priority and
    /// policy order alone. Weights: `suanwang share set`.
    #[arg(long, default_value = "7d", value_parser = parse_half_life)]
    fair_share_half_life: HalfLife,
    /// Preemption: seconds from the stop signal (SIGTERM) to the kill when a
    /// job is stopped for a job of a higher class; the preempting job starts
    /// after it (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_grace)]
    preempt_grace: i64,
    /// Preemption's rate limit: at most N jobs stopped per site within a
    /// window (e.g. 10/10m), or `off` for no preemption.
    #[arg(long, default_value = "10/10m", value_parser = parse_preempt_limit)]
    preempt_limit: PreemptLimit,
}

/// A parsed `--preempt-limit`: (jobs per site, window seconds); (0, _): off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreemptLimit(u32, i64);

fn parse_preempt_limit(text: &str) -> Result<PreemptLimit, String> {
    if text == "off" {
        return Ok(PreemptLimit(0, 600));
    }
    parse_preempt_limit_pair(text).map(|(n, window)| PreemptLimit(n, window))
}

/// Parses `N/WINDOW` (e.g. `10/10m`) into (jobs, window seconds).
pub(crate) fn parse_preempt_limit_pair(text: &str) -> Result<(u32, i64), String> {
    let (count, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected N/WINDOW, e.g. 10/10m, or off"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {count:?} is not a whole number of jobs"))?;
    let window = crate::wall_duration(window.trim())?;
    if window.as_secs() < 1 {
        return Err(format!("{text:?}: the window is at least 1s"));
    }
    Ok((count, window.as_secs() as i64))
}

fn parse_grace(text: &str) -> Result<i64, String> {
    let grace = crate::wall_duration(text)?;
    if grace.as_secs() > 3600 {
        return Err(format!("{text:?}: a grace period is at most 1h"));
    }
    Ok(grace.as_secs() as i64)
}

/// A parsed `--fair-share-half-life`: seconds, or `None` for off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HalfLife(Option<i64>);

fn parse_half_life(text: &str) -> Result<HalfLife, String> {
    if text == "off" {
        return Ok(HalfLife(None));
    }
    parse_half_life_secs(text).map(|secs| HalfLife(Some(secs)))
}

/// Parses a fair-share half-life (1m to 3650d) into seconds.
pub(crate) fn parse_half_life_secs(text: &str) -> Result<i64, String> {
    let duration = crate::wall_duration(text)?;
    if duration.as_secs() < 60 || duration.as_secs() > 3650 * 86400 {
        return Err(format!("{text:?}: a half-life is 1m to 3650d"));
    }
    Ok(duration.as_secs() as i64)
}

/// A parsed `--rate-limit` (clap wants a `Clone` value type of its own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateArg(Option<suanwang_server::limits::Rate>);

fn parse_rate(text: &str) -> Result<RateArg, String> {
    suanwang_server::limits::Rate::parse(text).map(RateArg)
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an API token offline, against the database, and print it. The
    /// database keeps only its digest: this is the one time the token is shown.
    Token {
        /// Database URL: sqlite://PATH or postgres://…
        #[arg(long, default_value = DEFAULT_DATABASE, env = "SUANWANG_DATABASE")]
        database: String,
        /// Role of the token.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Tenant the token acts for (created if new); required for --role tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Provider the token acts for (created if new); required for --role
        /// provider. With --role agent, the provider issuing it.
        #[arg(long)]
        provider: Option<String>,
        /// The one site an agent's token acts for; required for --role agent.
        #[arg(long)]
        site: Option<String>,
    },
    /// Say which sites a provider owns (creating the provider if new), offline:
    /// exactly the --site ones, replacing those it had. A site has one owner.
    Provider {
        /// Database URL: sqlite://PATH or postgres://…
        #[arg(long, default_value = DEFAULT_DATABASE, env = "SUANWANG_DATABASE")]
        database: String,
        /// The provider's name.
        name: String,
        /// A site it owns (repeat for several; none leaves it owning nothing).
        #[arg(long)]
        site: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Everything, including tenants, providers and tokens.
    Admin,
    /// Every site, link and job.
    Operator,
    /// One tenant's own jobs (--tenant).
    Tenant,
    /// One provider's own sites, their agents and jobs (--provider).
    Provider,
    /// One site's agent (--site).
    Agent,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `f` with the store behind `url`.
macro_rules! with_store {
    ($url:expr, |$store:ident| $body:expr) => {{
        let url: &str = $url;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let $store = PostgresStore::connect(url)
                .await
                .with_context(|| format!("database {url}"))?;
            $body
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let $store = SqliteStore::connect(url)
                .await
                .with_context(|| format!("database {url}"))?;
            $body
        } else {
            bail!("--database {url:?}: expected sqlite://PATH or postgres://…")
        }
    }};
}

pub(crate) use with_store;

/// A name of a tenant, provider or site as the API takes it.
fn check_name(flag: &str, name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("{flag} {name:?}: 1 to 64 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

pub fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Token {
            database,
            role,
            tenant,
            provider,
            site,
        } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Operator => Role::Operator,
                RoleArg::Tenant => Role::Tenant,
                RoleArg::Provider => Role::Provider,
                RoleArg::Agent => Role::Agent,
            };
            match role {
                Role::Tenant if tenant.is_none() => bail!("--role tenant needs --tenant NAME"),
                Role::Provider if provider.is_none() => {
                    bail!("--role provider needs --provider NAME")
                }
                Role::Agent if site.is_none() => bail!("--role agent needs --site SITE"),
                _ => {}
            }
            for (flag, value, allowed) in [
                ("--tenant", &tenant, role == Role::Tenant),
                (
                    "--provider",
                    &provider,
                    matches!(role, Role::Provider | Role::Agent),
                ),
                ("--site", &site, role == Role::Agent),
            ] {
                match value {
                    Some(_) if !allowed => {
                        bail!("{flag} does not go with --role {}", role.name())
                    }
                    Some(name) => check_name(flag, name)?,
                    None => {}
                }
            }
            runtime()?.block_on(async {
                with_store!(&database, |store| {
                    let scope = auth::Scope {
                        tenant: tenant.as_deref(),
                        provider: provider.as_deref(),
                        site: site.as_deref(),
                    };
                    let token =
                        auth::issue_scoped_token(&store, &Actor::system(), role, scope, now())
                            .await?;
                    println!("{token}");
                    Ok(())
                })
            })
        }
        AdminCommand::Provider {
            database,
            name,
            site,
        } => {
            check_name("provider", &name)?;
            for s in &site {
                check_name("--site", s)?;
            }
            runtime()?.block_on(async {
                with_store!(&database, |store| {
                    let system = Actor::system();
                    let provider = store.provider(&system, &name, now()).await?;
                    let provider = store
                        .set_provider_sites(&system, provider.id, &site, now())
                        .await?;
                    println!(
                        "provider {} (id {}) owns: {}",
                        provider.name,
                        provider.id,
                        if provider.sites.is_empty() {
                            "no site".to_string()
                        } else {
                            provider.sites.join(", ")
                        }
                    );
                    Ok(())
                })
            })
        }
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let topology = crate::load_topology(&args.topology)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(suanwang_server::tls::server_config(
            suanwang_server::tls::TlsFiles {
                cert,
                key,
                client_ca: args.tls_client_ca.as_deref(),
            },
        )?),
        _ => None,
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "suanwang serving on {}://{} (database {}{})",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr()?,
            args.database,
            match (&args.tls_client_ca, args.require_agent_certificate) {
                (Some(_), true) => ", agents must present a client certificate",
                (Some(_), false) => ", client certificates checked when presented",
                _ => "",
            }
        );
        with_store!(&args.database, |store| {
            if args.lease_ttl < args.heartbeat * 2 {
                bail!(
                    "--lease-ttl ({:?}) must be at least twice --heartbeat ({:?}), or one late heartbeat loses every lease",
                    args.lease_ttl,
                    args.heartbeat
                );
            }
            if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 100_000.0) {
                bail!("--speed must be in (0, 100000] (got {})", args.speed);
            }
            let mut app = if args.speed == 1.0 {
                App::new(store, topology)
            } else {
                App::with_clock(
                    store,
                    topology,
                    suanwang_server::clock::Clock::accelerated(now(), args.speed),
                )
            };
            app.agents = suanwang_server::agent::AgentPolicy {
                heartbeat_every: args.heartbeat,
                lease_ttl: args.lease_ttl,
            };
            app.limits = suanwang_server::limits::Limiter::new(suanwang_server::limits::LimitPolicy {
                parties: args.rate_limit.0,
                staff: args.staff_rate_limit.0,
                auth_failures_per_minute: args.auth_failures_per_minute,
            });
            app.require_agent_certificate = args.require_agent_certificate;
            app.fair_share = suanwang_server::scheduler::FairSharePolicy {
                half_life_secs: args.fair_share_half_life.0,
            };
            app.preemption = suanwang_server::scheduler::PreemptionPolicy {
                grace_secs: args.preempt_grace,
                per_site: args.preempt_limit.0,
                window_secs: args.preempt_limit.1,
            };
            let edits = app.load_edits().await?;
            if edits > 0 {
                eprintln!("applied {edits} stored topology edit(s)");
            }
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(());
            let loop_task = app.start_scheduler(Duration::from_secs(5), async move {
                let _ = stop_rx.changed().await;
            });
            let shutdown = async move {
                shutdown_signal().await;
                let _ = stop_tx.send(());
            };
            match tls {
                Some(config) => suanwang_server::run_tls(listener, config, app, shutdown).await?,
                None => suanwang_server::run(listener, app, shutdown).await?,
            }
            let _ = loop_task.await;
            eprintln!("suanwang stopped");
            Ok(())
        })
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
