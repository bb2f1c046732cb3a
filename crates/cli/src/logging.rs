//! Logging for every command: one `tracing` subscriber writing to stderr, set up
//! once by [`init`] before the command runs. Standard output stays the command's
//! own (tables, JSON documents, tokens).
//!
//! Which lines are written:
//! - `RUST_LOG`, when set and not empty, decides alone (EnvFilter syntax:
//!   `debug`, `warn,suanwang_server=debug`, `[request{route=/v1/jobs}]=debug`);
//!   `-v`/`-q` then change nothing in the logs.
//! - Otherwise the verbosity is the number of `-v` less the number of `-q`,
//!   counted from the command's default (0, or -1 for `demo`, whose own progress
//!   line tells the story): see [`directives`].
//!
//! `--log-format json` writes one JSON object per line (timestamp, level,
//! target, the event's fields, the current span and the spans it is in).

use clap::{ArgAction, Args, ValueEnum};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The global logging options.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// More log output on stderr: -v debug from suanwang (info from libraries),
    /// -vv trace, -vvv trace from everything. RUST_LOG, when set, decides instead.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Less output: -q warnings and errors only (and no progress bars), -qq
    /// errors only, -qqq no logs. RUST_LOG, when set, decides the logs instead.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    /// Format of the log lines on stderr: text, or json (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SUANWANG_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal unless NO_COLOR is set).
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter directives for a verbosity (the number of `-v` less the number of
/// `-q`, from the command's default): 0 is `warn,suanwang=info` — our crates at
/// info, libraries at warn.
pub fn directives(verbosity: i32) -> &'static str {
    match verbosity {
        i32::MIN..=-3 => "off",
        -2 => "error",
        -1 => "error,suanwang=warn",
        0 => "warn,suanwang=info",
        1 => "info,suanwang=debug",
        2 => "debug,suanwang=trace",
        _ => "trace",
    }
}

/// Installs the subscriber for this process: `default_verbosity` is the
/// command's, moved by `-v`/`-q`; `RUST_LOG`, when set, overrides it. A second
/// call changes nothing.
pub fn init(args: &LogArgs, default_verbosity: i32) {
    let verbosity = default_verbosity + i32::from(args.verbose) - i32::from(args.quiet);
    let filter = match std::env::var("RUST_LOG") {
        // Directives that do not parse are named on stderr and ignored.
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::builder().parse_lossy(spec),
        _ => EnvFilter::new(directives(verbosity)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr a pipe whose reader went
        // away) is dropped: by default the subscriber reports it with
        // `eprintln!` to the same broken stderr, which panics, and the panic
        // takes down the request or task that logged (tests/logging.rs).
        .log_internal_errors(false);
    // Nothing to do if a subscriber is already set (a test harness's, say).
    let _ = match args.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verbosity_parses_and_more_is_more() {
        let mut last = None;
        for v in -4..=4 {
            let filter = EnvFilter::try_new(directives(v)).unwrap();
            let max = filter.max_level_hint();
            if let Some(last) = last {
                assert!(max >= last, "verbosity {v}: {max:?} < {last:?}");
            }
            last = Some(max);
        }
        assert_eq!(directives(0), "warn,suanwang=info");
    }
}
