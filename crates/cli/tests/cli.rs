//! End-to-end tests of the `suanwang` binary: real process, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn suanwang(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_suanwang"))
        .args(args)
        .output()
        .expect("run suanwang")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("suanwang-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn topology_show_lists_every_site_and_the_backbones() {
    let out = suanwang(&["topology", "show", "cn-west"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for site in [
        "cq-liangjiang",
        "cd-tianfu",
        "hami",
        "zhongwei",
        "qingyang",
        "guian",
        "helinger",
        "singapore",
    ] {
        assert!(stdout.contains(site), "{site} missing");
    }
    assert!(stdout.contains("Chongqing–Hami backbone"));
    assert!(stdout.contains("Chongqing–Singapore"));
}

#[test]
fn topology_check_names_file_and_key() {
    let out = suanwang(&["topology", "show", "--json", "cn-west"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["site"].as_array().unwrap().len(), 8);

    let good = temp("good.toml");
    let builtin = include_str!("../../topology/topologies/cn-west.toml");
    std::fs::write(&good, builtin).unwrap();
    let out = suanwang(&["topology", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (8 sites, 5 regions"));

    let bad = temp("bad.toml");
    std::fs::write(
        &bad,
        builtin.replacen(
            "green = { share = 0.40, shaped = true }",
            "green = { share = 1.40, shaped = true }",
            1,
        ),
    )
    .unwrap();
    let out = suanwang(&["topology", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml: site[2] \"hami\".green.share: must be within 0..1"),
        "{stderr}"
    );

    let out = suanwang(&["topology", "check", "no-such-topology"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("neither a built-in (cn-west) nor an existing file"));
}

#[test]
fn simulate_json_is_byte_identical_for_the_same_seed() {
    let args = [
        "simulate",
        "--quiet",
        "--json",
        "--synthetic-jobs",
        "120",
        "--synthetic-days",
        "2",
    ];
    let a = suanwang(&args);
    let b = suanwang(&args);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let json: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(json["schema"], "suanwang.simulate/v1");
    assert_eq!(json["policies"].as_array().unwrap().len(), 6);
    assert_eq!(json["lp_bound"]["status"], "computed");
    let c = suanwang(&[&args[..], &["--seed", "9"]].concat());
    assert_ne!(a.stdout, c.stdout);
}

#[test]
fn a_malformed_trace_line_is_named_or_skipped_and_counted() {
    let bad = fixture("bad-line.csv");
    let out = suanwang(&[
        "simulate", "--quiet", "--trace", &bad, "--policy", "balanced",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad-line.csv: line 4: field \"length\": \"oops\" is not a number"),
        "{stderr}"
    );

    let out = suanwang(&[
        "simulate",
        "--quiet",
        "--json",
        "--trace",
        &bad,
        "--policy",
        "balanced",
        "--skip-bad-lines",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["trace"]["skipped_lines"], 1);
    assert_eq!(json["trace"]["jobs"], 3);
    assert_eq!(json["policies"][0]["jobs"]["done"], 3);
}

#[test]
fn unknown_policy_and_region_are_clear_errors() {
    let out = suanwang(&["simulate", "--quiet", "--policy", "fastest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown policy \"fastest\" (known: local-fifo"));
    let out = suanwang(&["simulate", "--quiet", "--origin", "mars"]);
    assert!(text(&out.stderr).contains("--origin \"mars\" is not a region or site"));
}

#[test]
fn carbon_series_swaps_the_shape_and_the_plot_draws_every_site() {
    let base = [
        "simulate",
        "--quiet",
        "--json",
        "--synthetic-jobs",
        "100",
        "--synthetic-days",
        "2",
        "--policy",
        "balanced",
        "--lp-max-jobs",
        "0",
    ];
    let builtin = suanwang(&base);
    let series = fixture("night-clean-series.csv");
    let plot = temp("plot.svg");
    let swapped = suanwang(
        &[
            &base[..],
            &["--carbon-series", &series, "--plot", plot.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(swapped.status.success(), "{}", text(&swapped.stderr));
    let a: serde_json::Value = serde_json::from_slice(&builtin.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&swapped.stdout).unwrap();
    assert_ne!(a["policies"][0]["carbon_t"], b["policies"][0]["carbon_t"]);
    assert!(
        b["carbon_shape"]
            .as_str()
            .unwrap()
            .contains("night-clean-series.csv")
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"));
    for site in ["cq-liangjiang", "hami", "singapore"] {
        assert!(svg.contains(&format!(">{site}<")), "{site} panel missing");
    }
}

#[test]
fn explain_shows_the_candidates_weighed() {
    let args = [
        "simulate",
        "--quiet",
        "--json",
        "--synthetic-jobs",
        "60",
        "--synthetic-days",
        "1",
        "--lp-max-jobs",
        "0",
        "--policy",
        "balanced,local-fifo",
        "--explain",
        "3,7",
    ];
    let out = suanwang(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let explanations = json["explanations"].as_array().unwrap();
    assert_eq!(explanations.len(), 4, "two jobs under two policies");
    let balanced = explanations
        .iter()
        .find(|e| e["policy"] == "balanced" && e["job"] == 3)
        .unwrap();
    let chosen = balanced["chosen"]["score"].as_f64().unwrap();
    let alternatives = balanced["alternatives"].as_array().unwrap();
    let pruned = balanced["pruned"].as_array().unwrap();
    assert!(
        !alternatives.is_empty() || !pruned.is_empty(),
        "balanced weighs other sites"
    );
    for p in pruned {
        assert!(
            p[1].as_f64().unwrap() >= chosen - 1e-9,
            "a pruned site's bound is no better than the choice"
        );
    }
    for alt in alternatives {
        if alt["guard_rejected"] == false {
            assert!(
                alt["score"].as_f64().unwrap() >= chosen - 1e-9,
                "the chosen candidate is the best admissible"
            );
        }
    }
    let table = suanwang(
        &args[..args.len()]
            .iter()
            .copied()
            .filter(|a| *a != "--json")
            .collect::<Vec<_>>(),
    );
    let stdout = text(&table.stdout);
    assert!(stdout.contains("job 3 under balanced:"), "{stdout}");
    // Without --explain the JSON carries no explanations.
    let plain = suanwang(&args[..args.len() - 2]);
    let json: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(json.get("explanations").is_none());
}

/// The real data (`../shared/data`, or `SUANWANG_DATA`), or `None` with a skip
/// message when this machine lacks it (CI has it).
fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SUANWANG_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("carbon").is_dir() && dir.join("traces").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no real data at {} (set SUANWANG_DATA; CI has ../shared/data)",
            dir.display()
        );
        None
    }
}

#[test]
fn the_german_carbon_series_is_read_with_its_two_missing_rows_filled() {
    let Some(data) = shared_data() else { return };
    let trace = data.join("traces/gaia_pai-100k.csv");
    let series = data.join("carbon/lwa_ger_ci.csv");
    let args = [
        "simulate",
        "--quiet",
        "--trace",
        trace.to_str().unwrap(),
        "--carbon-series",
        series.to_str().unwrap(),
        "--limit",
        "2000",
        "--policy",
        "balanced",
        "--lp-max-jobs",
        "0",
    ];
    let out = suanwang(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "lwa_ger_ci.csv: 37147 rows every 15m; 2 rows filled by linear interpolation: \
             after line 35134 (2020-12-19 23:15:00), after line 35135 (2020-12-19 23:45:00)"
        ),
        "{stdout}"
    );
    let out = suanwang(&[&args[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &json["carbon_series"];
    assert_eq!(summary["rows"], 37147);
    assert_eq!(summary["step_secs"], 900);
    assert_eq!(summary["filled_rows"], 2);
    assert_eq!(
        summary["filled"],
        serde_json::json!([
            {"after_line": 35134, "rows": 1, "from": "2020-12-19 23:15:00", "to": "2020-12-19 23:15:00"},
            {"after_line": 35135, "rows": 1, "from": "2020-12-19 23:45:00", "to": "2020-12-19 23:45:00"}
        ])
    );
}

#[test]
fn a_series_gap_too_long_to_fill_names_file_and_line() {
    let series = temp("long-gap.csv");
    std::fs::write(
        &series,
        "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:15:00,110\n2020-01-01 02:45:00,120\n2020-01-01 03:00:00,130\n",
    )
    .unwrap();
    let out = suanwang(&[
        "simulate",
        "--quiet",
        "--synthetic-jobs",
        "10",
        "--carbon-series",
        series.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "long-gap.csv: line 4: field \"Time\": 9 rows (2h15m, 2020-01-01 00:30:00 to \
             2020-01-01 02:30:00) missing after line 3: more than the 2h filled by interpolation"
        ),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_prints_its_os_error_once() {
    let missing = temp("no-such-dir").join("missing.csv");
    let missing = missing.to_str().unwrap();
    let cases: [&[&str]; 5] = [
        &["simulate", "--quiet", "--trace", missing],
        &["simulate", "--quiet", "--carbon-series", missing],
        &[
            "simulate",
            "--quiet",
            "--trace",
            &fixture("bad-line.csv"),
            "--format",
            "alibaba-gpu",
            "--node-list",
            missing,
        ],
        &["submit", "--url", "http://127.0.0.1:9", "-f", missing],
        &[
            "simulate",
            "--quiet",
            "--synthetic-jobs",
            "10",
            "--lp-max-jobs",
            "0",
            "--policy",
            "local-fifo",
            "--output",
            missing,
        ],
    ];
    for args in cases {
        let out = suanwang(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr.matches("os error 2").count(),
            1,
            "{args:?}: the OS error once in {stderr:?}"
        );
        assert!(
            stderr.contains(missing),
            "{args:?}: names the file: {stderr}"
        );
    }
}

#[test]
fn every_duration_flag_takes_one_syntax_and_a_mistake_names_the_flag() {
    let cases: [(&[&str], &str); 6] = [
        (&["simulate", "--slot", "1h1h"], "'--slot <SLOT>'"),
        (
            &["simulate", "--max-delay", "5"],
            "'--max-delay <MAX_DELAY>'",
        ),
        (
            &["submit", "--cpus", "1", "--duration=-3m"],
            "'--duration <DURATION>'",
        ),
        (
            &[
                "submit",
                "--cpus",
                "1",
                "--duration",
                "1h",
                "--deadline",
                "2x",
            ],
            "'--deadline <DEADLINE>'",
        ),
        (&["top", "--interval", "1.5s"], "'--interval <INTERVAL>'"),
        (&["demo", "--for", "0s"], "'--for <DURATION>'"),
    ];
    for (args, flag) in cases {
        let out = suanwang(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: names the flag: {stderr}");
        assert!(
            stderr.contains("accepted: ") || stderr.contains("more than zero"),
            "{args:?}: says what is accepted: {stderr}"
        );
    }
    let out = suanwang(&[
        "simulate",
        "--quiet",
        "--json",
        "--synthetic-jobs",
        "20",
        "--synthetic-days",
        "1",
        "--lp-max-jobs",
        "0",
        "--policy",
        "balanced",
        "--slot",
        "1h",
        "--horizon",
        "2d12h",
        "--deadline-slack",
        "1h30m",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config"]["slot_secs"], 3600);
    assert_eq!(json["config"]["horizon_slots"], 60);
    assert_eq!(json["fill"]["deadline_slack"], 5400);
}

#[test]
fn help_describes_the_binary_as_it_is() {
    let out = suanwang(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(!help.contains("to come"), "{help}");
    for part in [
        "simulator",
        "control plane",
        "serve",
        "demo",
        "site agent",
        "submit",
    ] {
        assert!(help.contains(part), "{part} missing from --help: {help}");
    }
    let short = text(&suanwang(&["-h"]).stdout);
    assert!(short.contains("control plane (serve, demo)"), "{short}");
}
