//! `suanwang serve` and `suanwang admin token`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;
use suanwang_server::{App, auth};
use suanwang_store::{PostgresStore, Role, SqliteStore};

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
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Operator,
    Tenant,
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

pub fn admin(command: AdminCommand) -> anyhow::Result<()> {
    let AdminCommand::Token {
        database,
        role,
        tenant,
    } = command;
    runtime()?.block_on(async {
        with_store!(&database, |store| {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Operator => Role::Operator,
                RoleArg::Tenant => Role::Tenant,
            };
            if role == Role::Tenant && tenant.is_none() {
                bail!("--role tenant needs --tenant NAME");
            }
            let token = auth::issue_token(&store, role, tenant.as_deref(), now()).await?;
            println!("{token}");
            Ok(())
        })
    })
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let topology = crate::load_topology(&args.topology)?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "suanwang serving on http://{} (database {})",
            listener.local_addr()?,
            args.database
        );
        with_store!(&args.database, |store| {
            if args.lease_ttl < args.heartbeat * 2 {
                bail!(
                    "--lease-ttl ({:?}) must be at least twice --heartbeat ({:?}), or one late heartbeat loses every lease",
                    args.lease_ttl,
                    args.heartbeat
                );
            }
            let mut app = App::new(store, topology);
            app.agents = suanwang_server::agent::AgentPolicy {
                heartbeat_every: args.heartbeat,
                lease_ttl: args.lease_ttl,
            };
            let edits = app.load_edits().await?;
            if edits > 0 {
                eprintln!("applied {edits} stored topology edit(s)");
            }
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(());
            let loop_task = app.start_scheduler(Duration::from_secs(5), async move {
                let _ = stop_rx.changed().await;
            });
            suanwang_server::run(listener, app, async move {
                shutdown_signal().await;
                let _ = stop_tx.send(());
            })
            .await?;
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
