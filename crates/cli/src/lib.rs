//! Command-line interface of suanwang. Parses arguments with clap and calls the
//! library crates; human output is aligned tables, `--json` gives documents.

mod agent;
mod audit;
mod demo;
mod loadgen;
mod logging;
mod remote;
mod serve;
mod simulate;
mod tls;
mod top;
mod topology;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What `suanwang --help` says above the commands.
const LONG_ABOUT: &str = "\
suanwang (算网) decides where and when work runs in a network of data centres, \
weighing price, carbon, waiting and data transfer.

  simulator      simulate (replay a trace under each policy), topology
  control plane  serve (HTTP API and scheduler), demo (the whole network on this \
machine), admin
  site agent     agent (runs a site's work: local processes or Slurm)
  clients        submit, jobs, job, logs, cancel, explain, sites, agents, drain, \
undrain, top, loadgen

Durations are written 90s, 15m, 2h, 1d or 1h30m (and 500ms where a wall-clock \
interval takes it).";

/// suanwang (算网): simulator, control plane, site agent and client of a
/// computing-power network.
#[derive(Debug, Parser)]
#[command(name = "suanwang", version, about, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show or check topologies.
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// Replay a trace through a topology under one policy or all.
    Simulate(Box<simulate::SimulateArgs>),
    /// The whole network on this machine: control plane, simulated site agents
    /// and a stream of jobs from several tenants, on an accelerated clock.
    Demo(demo::DemoArgs),
    /// A site's agent: joins the network and runs its work (local processes or
    /// Slurm).
    Agent(Box<agent::AgentArgs>),
    /// Run the control plane's HTTP API.
    Serve(serve::ServeArgs),
    /// Administration offline, against the database.
    #[command(subcommand)]
    Admin(serve::AdminCommand),
    /// The audit log, against the database: verify its hash chain, export it.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Submit a job; prints its id.
    Submit(Box<remote::SubmitArgs>),
    /// List jobs.
    Jobs(remote::JobsArgs),
    /// Show one job.
    Job(remote::JobArgs),
    /// The tail of a job's output (stdout and stderr).
    Logs(remote::LogsArgs),
    /// Cancel a job.
    Cancel(remote::JobArgs),
    /// Why a job is where it is: the candidates weighed, or why it waits.
    Explain(remote::JobArgs),
    /// Drain a site: it takes no new work; placed jobs go elsewhere (operator).
    Drain(remote::DrainArgs),
    /// Undrain a site (operator).
    Undrain(remote::DrainArgs),
    /// List the agents, live or not (operator).
    Agents(remote::AgentsArgs),
    /// List the sites.
    Sites(remote::SitesArgs),
    /// List the accelerator models the control plane knows (the catalogue).
    Accelerators(remote::AcceleratorsArgs),
    /// List, issue and revoke API tokens through the API (admins; providers for
    /// their sites' agents).
    Tokens(remote::TokensArgs),
    /// Show and set per-tenant quotas: the most units of each class a tenant's
    /// placed and running jobs hold at once (admins set; tenants see their own).
    Quota(remote::QuotaArgs),
    /// Show and set weighted fair share: each tenant's weight among its
    /// siblings and the tenant that groups it (admins set; tenants see their own).
    Share(remote::ShareArgs),
    /// Show and set tenants' priority classes (batch, normal, urgent): a
    /// higher class goes first and, to meet a deadline, may preempt
    /// preemptible jobs of lower classes (admins set; tenants see their own).
    Class(remote::ClassArgs),
    /// Show and set ordered spill-over defaults: the list of sites, providers
    /// and jurisdictions a tenant's jobs try in order, and the provider whose
    /// own tenant it is (admins set; tenants see their own).
    Spill(remote::SpillArgs),
    /// Load generator: concurrent durable submits against a running server.
    Loadgen(loadgen::LoadgenArgs),
    /// A live terminal view of the network: sites, use, power, carbon, price, queues.
    Top(top::TopArgs),
    /// Print the API's OpenAPI document (as `GET /openapi.json` serves it).
    Openapi,
    /// A private CA and certificates for TLS and agents' mutual TLS.
    #[command(subcommand)]
    Tls(tls::TlsCommand),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's own progress line tells the story: its logs start at warnings.
    let default_verbosity = if matches!(cli.command, Command::Demo(_)) {
        -1
    } else {
        0
    };
    logging::init(&cli.log, default_verbosity);
    let result = match cli.command {
        Command::Topology(cmd) => topology::run(cmd),
        Command::Simulate(mut args) => {
            args.quiet = cli.log.quiet > 0;
            simulate::run(*args)
        }
        Command::Demo(args) => demo::run(args),
        Command::Agent(args) => agent::run(*args),
        Command::Logs(args) => remote::logs(args),
        Command::Serve(args) => serve::serve(args),
        Command::Admin(cmd) => serve::admin(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Submit(args) => remote::submit(*args),
        Command::Jobs(args) => remote::jobs(args),
        Command::Job(args) => remote::job(args),
        Command::Cancel(args) => remote::cancel(args),
        Command::Explain(args) => remote::explain(args),
        Command::Sites(args) => remote::sites(args),
        Command::Accelerators(args) => remote::accelerators(args),
        Command::Drain(args) => remote::drain(args, true),
        Command::Undrain(args) => remote::drain(args, false),
        Command::Agents(args) => remote::agents(args),
        Command::Tokens(args) => remote::tokens(args),
        Command::Quota(args) => remote::quota(args),
        Command::Share(args) => remote::share(args),
        Command::Class(args) => remote::class(args),
        Command::Spill(args) => remote::spill(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Top(args) => top::run(args),
        Command::Openapi => openapi(),
        Command::Tls(cmd) => tls::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<audit::ChainBroken>().is_some() {
                ExitCode::from(audit::EXIT_BROKEN)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Prints the OpenAPI document, pretty, with a final newline (the console's
/// `openapi.json` is this output).
fn openapi() -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&suanwang_server::openapi())?;
    println!("{text}");
    Ok(())
}

/// Loads a topology by built-in name or file path.
pub(crate) fn load_topology(name_or_file: &str) -> anyhow::Result<suanwang_topology::Topology> {
    if suanwang_topology::BUILTIN.contains(&name_or_file) {
        return Ok(suanwang_topology::builtin(name_or_file)?);
    }
    let path = std::path::Path::new(name_or_file);
    if !path.exists() {
        anyhow::bail!(
            "topology {name_or_file:?} is neither a built-in ({}) nor an existing file",
            suanwang_topology::BUILTIN.join(", ")
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(suanwang_topology::parse(
        &text,
        &path.display().to_string(),
    )?)
}

/// A wall-clock duration flag (`--heartbeat`, `--lease-ttl`, `demo --for`,
/// `top --interval`, `loadgen --every`): the project's duration syntax with `ms`
/// (`500ms`, `5s`, `1m30s`), more than zero.
pub(crate) fn wall_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = suanwang_model::parse_wall_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err(format!("{text:?} must be more than zero (e.g. 500ms, 2s)"));
    }
    Ok(duration)
}
