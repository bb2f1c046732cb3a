//! `suanwang top`: a live terminal view of the network, redrawn from
//! `GET /v1/overview` every interval. It owns the frame layout and the refresh loop;
//! it computes nothing itself (every number is the server's) and draws with plain
//! ANSI escapes, so that it needs no terminal crate and `--once` output is plain text.

use crate::remote::{Remote, runtime};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::time::Duration;
use suanwang_client::Client;
use suanwang_client::api::{CapacityStatus, Overview, SiteOverview};
use suanwang_model::{ResourceClass, time::civil_from_days};
use suanwang_sim::report::table;

/// Clears the whole screen and moves the cursor home: drawn once, before the first frame.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";
/// Moves the cursor home; each frame overwrites the last in place instead of
/// clearing first, which would flicker.
const HOME: &str = "\x1b[H";
/// Clears from the cursor to the end of the line.
const CLEAR_LINE: &str = "\x1b[K";
/// Clears from the cursor to the end of the screen.
const CLEAR_BELOW: &str = "\x1b[J";
/// The shortest wait for an answer in live mode. A request that never returns would
/// freeze the view; after this (or the interval, if longer) the frame says so.
const MIN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    remote: Remote,
    /// Time between refreshes (500ms, 2s, 1m).
    #[arg(long, default_value = "2s", value_parser = crate::wall_duration)]
    interval: Duration,
    /// Print one frame without clearing the screen, and exit.
    #[arg(long)]
    once: bool,
    /// Print the overview document: once with --once, otherwise one line per interval.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TopArgs) -> anyhow::Result<()> {
    let interval = args.interval;
    let client = args.remote.client()?;
    let runtime = runtime()?;
    if args.once {
        let doc = runtime.block_on(client.overview())?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print!("{}", frame(&doc));
        }
        return Ok(());
    }
    runtime.block_on(live(&client, interval, args.json))
}

/// Redraws every interval until Ctrl-C. An unreachable server is shown in the frame
/// (with the last answer, if any) and retried; it does not end the view.
async fn live(client: &Client, interval: Duration, json: bool) -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut ticks = tokio::time::interval(interval);
    // After a slow answer, wait a whole interval again rather than firing a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = interval.max(MIN_FETCH_TIMEOUT);
    let mut last: Option<Overview> = None;
    let mut stdout = std::io::stdout();
    if !json {
        write!(stdout, "{CLEAR_SCREEN}")?;
    }
    loop {
        tokio::select! {
            signal = &mut ctrl_c => {
                signal.context("listening for ctrl-c")?;
                break;
            }
            _ = ticks.tick() => {}
        }
        let answer = tokio::select! {
            signal = &mut ctrl_c => {
                signal.context("listening for ctrl-c")?;
                break;
            }
            answer = tokio::time::timeout(timeout, client.overview()) => answer,
        };
        let answer = match answer {
            Ok(Ok(doc)) => Ok(doc),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "no answer from the control plane within {}s",
                timeout.as_secs()
            )),
        };
        match (json, answer) {
            (true, Ok(doc)) => writeln!(stdout, "{}", serde_json::to_string(&doc)?)?,
            // Keep stdout a clean stream of documents; the error goes to stderr.
            (true, Err(err)) => eprintln!("error: {err}"),
            (false, Ok(doc)) => {
                write!(stdout, "{}", in_place(&frame(&doc)))?;
                last = Some(doc);
            }
            (false, Err(err)) => {
                let text = error_frame(&err, interval, unix_now(), last.as_ref());
                write!(stdout, "{}", in_place(&text))?;
            }
        }
        stdout.flush()?;
    }
    Ok(())
}

/// `text` drawn over the previous frame: home, each line cleared to its end, and
/// whatever the previous frame had below cleared.
fn in_place(text: &str) -> String {
    let mut out = String::from(HOME);
    for line in text.lines() {
        out.push_str(line);
        out.push_str(CLEAR_LINE);
        out.push('\n');
    }
    out.push_str(CLEAR_BELOW);
    out
}

/// The frame shown while the server does not answer.
fn error_frame(error: &str, interval: Duration, now: i64, last: Option<&Overview>) -> String {
    let mut out = format!(
        "{}  error: {error}\nretrying every {}\n",
        utc(now),
        interval_text(interval)
    );
    if let Some(doc) = last {
        out.push_str(&format!("\nlast answer, at {}:\n", utc(doc.at)));
        out.push_str(&frame(doc));
    }
    out
}

fn interval_text(interval: Duration) -> String {
    suanwang_model::format_wall_duration(interval)
}

/// `drained`, `down` (its agents fell silent), `up`, or `-` (no agent ever
/// joined); `up, short` when its agents measure less than it declares.
fn site_state(site: &SiteOverview) -> &'static str {
    if site.drained {
        "drained"
    } else {
        match site.reachable {
            Some(true) if site.capacity_status == CapacityStatus::BelowDeclared => "up, short",
            Some(true) => "up",
            Some(false) => "down",
            None => "-",
        }
    }
}

/// One frame: a header line with the time and the network's totals, then one row
/// per site.
fn frame(doc: &Overview) -> String {
    let mut out = format!(
        "{}  pending {}  power {:.1} kW  carbon {:.1} kg CO2/h  cost {:.1} CNY/h\n\n",
        utc(doc.at),
        doc.pending,
        doc.power_kw,
        doc.carbon_kg_per_hour,
        doc.cost_cny_per_hour,
    );
    let mut rows = vec![
        [
            "site",
            "state",
            "use (busy/planned)",
            "use %",
            "running",
            "queued",
            "power kW",
            "tariff CNY/kWh",
            "grid kg/kWh",
            "green %",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &doc.sites {
        rows.push(vec![
            s.site.clone(),
            site_state(s).to_string(),
            classes(s),
            dominant_share(s).map_or("-".into(), |share| format!("{:.0}", share * 100.0)),
            s.running.to_string(),
            s.queued.to_string(),
            format!("{:.1}", s.power_kw),
            format!("{:.3}", s.tariff_cny_per_kwh),
            format!("{:.3}", s.grid_kg_per_kwh),
            format!("{:.0}", s.green_share * 100.0),
        ]);
    }
    // The table right-aligns every column but the first; padding the use column
    // to one width keeps its text left-aligned.
    let width = rows.iter().map(|r| r[2].chars().count()).max().unwrap_or(0);
    for row in &mut rows {
        let pad = width - row[2].chars().count();
        row[2].push_str(&" ".repeat(pad));
    }
    out.push_str(&table(&rows));
    out
}

/// Units of `name` the scheduler plans with at `site`: the planned figure, or
/// the declared one from a server that sends none.
fn planned(site: &SiteOverview, name: &str, declared: u32) -> u32 {
    if site.planned.is_empty() && site.capacity_status == CapacityStatus::Unmeasured {
        declared
    } else {
        site.planned.get(name).copied().unwrap_or(0)
    }
}

/// The site's classes as "cpu 120/4096  a800 8/64" (busy/planned), in the
/// canonical class order (CPU, memory, then accelerators); classes this build
/// does not know go last. A class whose agents measure less than the site
/// declares shows both: "cpu 1/2 (1536 declared)".
fn classes(site: &SiteOverview) -> String {
    let mut entries: Vec<(&String, &u32)> = site.capacity.iter().collect();
    entries.sort_by_key(|(name, _)| {
        let rank = ResourceClass::parse(name)
            .map(|c| c.index())
            .unwrap_or(usize::MAX);
        (rank, name.as_str())
    });
    entries
        .into_iter()
        .map(|(name, units)| {
            let busy = site.busy.get(name).copied().unwrap_or(0);
            let plan = planned(site, name, *units);
            if plan < *units {
                format!("{name} {busy}/{plan} ({units} declared)")
            } else {
                format!("{name} {busy}/{units}")
            }
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// The fullest class's share of its capacity. Units of different classes (cores,
/// GiB, GPUs) do not add up, so the dominant share stands for the site as a whole.
fn dominant_share(site: &SiteOverview) -> Option<f64> {
    site.capacity
        .iter()
        .map(|(name, units)| (name, planned(site, name, *units)))
        .filter(|(_, units)| *units > 0)
        .map(|(name, units)| {
            f64::from(site.busy.get(name).copied().unwrap_or(0)) / f64::from(units)
        })
        .reduce(f64::max)
}

/// Unix seconds as "2026-11-03 04:05:06 UTC".
pub(crate) fn utc(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86400));
    let second = unix.rem_euclid(86400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intervals_parse_and_zero_is_refused() {
        let parse = crate::wall_duration;
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1s500ms").unwrap(), Duration::from_millis(1500));
        for zero in ["0s", "0ms", "0h"] {
            let err = parse(zero).unwrap_err();
            assert!(err.contains("more than zero"), "{zero}: {err}");
        }
        for bad in [
            "soon", "-1s", "xms", "-5ms", "1e400s", "3", "1.5s", "1h1h", "2x",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
            assert!(err.contains("accepted: "), "{bad}: {err}");
        }
    }

    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn a_frame_has_the_totals_and_a_row_per_site() {
        let doc: Overview = serde_json::from_value(json!({
            "at": 1_700_000_000,
            "pending": 3,
            "power_kw": 12.34,
            "carbon_kg_per_hour": 5.67,
            "cost_cny_per_hour": 890.12,
            "sites": [
                {
                    "site": "hami",
                    "capacity": {"a800": 64, "cpu": 4096, "mem_gib": 16384},
                    "busy": {"a800": 8, "cpu": 120},
                    "queued": 1, "running": 2, "power_kw": 12.34, "reachable": true, "drained": false,
                    "grid_kg_per_kwh": 0.6612, "green_share": 0.35,
                    "tariff_cny_per_kwh": 0.3, "compute_cny_per_hour": 100.0
                },
                {
                    "site": "zhongwei",
                    "capacity": {"cpu": 1536},
                    "planned": {"cpu": 2},
                    "capacity_status": "below-declared",
                    "busy": {"cpu": 1},
                    "queued": 0, "running": 1, "power_kw": 0.0,
                    "grid_kg_per_kwh": 0.5, "green_share": 0.5,
                    "reachable": true, "drained": false,
                    "tariff_cny_per_kwh": 0.4, "compute_cny_per_hour": 0.0
                },
                {
                    "site": "singapore",
                    "capacity": {"cpu": 512},
                    "busy": {},
                    "queued": 0, "running": 0, "power_kw": 0.0,
                    "grid_kg_per_kwh": 0.4168, "green_share": 0.0,
                    "reachable": null, "drained": false,
                    "tariff_cny_per_kwh": 1.1, "compute_cny_per_hour": 0.0
                }
            ]
        }))
        .unwrap();
        let expected = "\
2023-11-14 22:13:20 UTC  pending 3  power 12.3 kW  carbon 5.7 kg CO2/h  cost 890.1 CNY/h

site           state  use (busy/planned)                        use %  running  queued  power kW  tariff CNY/kWh  grid kg/kWh  green %
hami              up  cpu 120/4096  mem_gib 0/16384  a800 8/64     12        2       1      12.3           0.300        0.661       35
zhongwei   up, short  cpu 1/2 (1536 declared)                      50        1       0       0.0           0.400        0.500       50
singapore          -  cpu 0/512                                     0        0       0       0.0           1.100        0.417        0
";
        assert_eq!(frame(&doc), expected);
    }

    #[test]
    fn the_error_frame_keeps_the_last_answer() {
        let last: Overview = serde_json::from_value(json!({"at": 0, "pending": 0, "sites": [],
            "power_kw": 0.0, "carbon_kg_per_hour": 0.0, "cost_cny_per_hour": 0.0}))
        .unwrap();
        let text = error_frame(
            "cannot reach it",
            Duration::from_millis(500),
            60,
            Some(&last),
        );
        assert!(
            text.starts_with(
                "1970-01-01 00:01:00 UTC  error: cannot reach it\nretrying every 500ms\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("last answer, at 1970-01-01 00:00:00 UTC"),
            "{text}"
        );
        assert!(in_place(&text).starts_with(HOME) && in_place(&text).ends_with(CLEAR_BELOW));
    }
}
