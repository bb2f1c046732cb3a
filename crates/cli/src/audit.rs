//! `suanwang audit`: the audit log read straight from the database — `verify`
//! recomputes its hash chain and names the first entry that does not match,
//! `export` writes it as JSON lines. Both walk the log page by page (constant
//! memory) and show progress on a terminal.

use crate::serve::with_store;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use suanwang_store::audit::{self, WALK_PAGE};
use suanwang_store::{AuditFilter, PostgresStore, SqliteStore, Store};

/// The exit code of `audit verify` when the chain is broken (1 is any other
/// error, 2 a bad command line).
pub const EXIT_BROKEN: u8 = 3;

/// The audit log, offline, against the database.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit log's hash chain and name the first entry that does
    /// not match (exit 0 when whole, 3 when broken, 1 when it cannot be read).
    Verify(DatabaseArgs),
    /// Write the audit log as JSON lines, oldest first, one entry a line.
    Export(ExportArgs),
}

/// The database to read.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The database (`sqlite://PATH` or `postgres://…`).
    #[arg(long, env = "SUANWANG_DATABASE")]
    database: String,
}

/// What to export.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Only entries after this seq (to continue an earlier export).
    #[arg(long, default_value_t = 0)]
    after: i64,
}

/// The chain is broken: what `verify` found.
#[derive(Debug)]
pub struct ChainBroken(pub audit::Finding);

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the audit log is broken at {}", self.0)
    }
}

impl std::error::Error for ChainBroken {}

pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        AuditCommand::Verify(args) => runtime.block_on(async {
            existing(&args.database)?;
            with_store!(&args.database, |store| verify(&store).await)
        }),
        AuditCommand::Export(args) => runtime.block_on(async {
            existing(&args.db.database)?;
            with_store!(&args.db.database, |store| export(
                &store,
                args.output.as_deref(),
                args.after
            )
            .await)
        }),
    }
}

/// Refuses a SQLite file that does not exist (opening would create an empty
/// database, whose empty log would verify).
fn existing(url: &str) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://")
        && !std::path::Path::new(path).exists()
    {
        bail!("--database {url}: no such file");
    }
    Ok(())
}

/// A progress bar over the log's `total` entries, drawn on a terminal only.
fn progress(total: i64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(total.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{pos}}/{{len}} entries [{{bar:30}}] {{per_sec}}, {{eta}} left"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn verify<S: Store>(store: &S) -> anyhow::Result<()> {
    let (head, hash) = store.audit_head().await.context("reading the audit head")?;
    let bar = progress(head, "verifying");
    let verdict = audit::verify(store, |checked| bar.set_position(checked))
        .await
        .context("reading the audit log")?;
    bar.finish_and_clear();
    match verdict.finding {
        None => {
            println!("audit log intact: {} entries, head {hash}", verdict.checked);
            Ok(())
        }
        Some(finding) => {
            println!(
                "audit log broken: {} entries match, then {finding}",
                verdict.checked
            );
            Err(ChainBroken(finding).into())
        }
    }
}

async fn export<S: Store>(
    store: &S,
    output: Option<&std::path::Path>,
    after: i64,
) -> anyhow::Result<()> {
    let out: Box<dyn Write> = match output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(out);
    let (head, _) = store.audit_head().await.context("reading the audit head")?;
    let bar = progress(head - after, "exporting");
    let mut filter = AuditFilter {
        after_seq: Some(after),
        limit: WALK_PAGE,
        ..AuditFilter::default()
    };
    let mut written = 0u64;
    loop {
        let page = store
            .audit(&filter)
            .await
            .context("reading the audit log")?;
        let Some(last) = page.last() else { break };
        filter.after_seq = Some(last.seq);
        for entry in page {
            serde_json::to_writer(&mut out, &suanwang_server::audit::audit_doc(entry))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        bar.set_position(written);
    }
    out.flush().context("writing the export")?;
    bar.finish_and_clear();
    eprintln!("exported {written} entries");
    Ok(())
}
