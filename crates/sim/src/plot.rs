//! `--plot FILE.svg`: per-site facility load of each policy against the site's
//! effective carbon intensity over time, as a hand-written SVG (no dependencies).

use crate::engine::RunResult;
use crate::world::World;
use std::fmt::Write as _;
use suanwang_model::SimTime;

const COLOURS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#e15759",
];

/// Draws the plot for `runs` over hours `first_h .. last_h`.
pub fn svg(
    world: &World,
    runs: &[RunResult],
    first_h: i64,
    last_h: i64,
    carbon_label: &str,
) -> String {
    let n_sites = world.sites.len();
    let (width, panel_h, left, right, top) = (1100.0, 120.0, 70.0, 70.0, 50.0);
    let plot_w = width - left - right;
    let height = top + n_sites as f64 * (panel_h + 30.0) + 40.0;
    let span = (last_h - first_h).max(1);
    // At most ~1,000 points per line: average hours into buckets.
    let bucket = (span as f64 / 1000.0).ceil().max(1.0) as i64;
    let n_buckets = (span + bucket - 1) / bucket;
    let x = |b: i64| left + plot_w * b as f64 / n_buckets.max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="18" font-size="14">Facility load per site (kW, left) against effective carbon intensity (kg CO2/kWh, right, grey)</text>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="34" fill="#666">Carbon: {}</text>"##,
        escape(carbon_label)
    );
    for (p, run) in runs.iter().enumerate() {
        let lx = left + 110.0 * p as f64;
        let _ = writeln!(
            out,
            r##"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"##,
            height - 25.0,
            COLOURS[p % COLOURS.len()],
            lx + 14.0,
            height - 16.0,
            run.policy.kind.name()
        );
    }
    for site in 0..n_sites {
        let y0 = top + site as f64 * (panel_h + 30.0) + 15.0;
        let bucket_mean = |series: &dyn Fn(i64) -> f64, b: i64| -> f64 {
            let from = first_h + b * bucket;
            let to = (from + bucket).min(last_h);
            (from..to).map(series).sum::<f64>() / (to - from).max(1) as f64
        };
        let loads: Vec<Vec<f64>> = runs
            .iter()
            .map(|run| {
                let hours = &run.load_kw[site];
                (0..n_buckets)
                    .map(|b| bucket_mean(&|h| hours.get(h as usize).copied().unwrap_or(0.0), b))
                    .collect()
            })
            .collect();
        let carbon: Vec<f64> = (0..n_buckets)
            .map(|b| {
                bucket_mean(
                    &|h| world.series.effective_carbon(site, SimTime(h * 3600)),
                    b,
                )
            })
            .collect();
        let max_load = loads
            .iter()
            .flatten()
            .copied()
            .fold(0.0, f64::max)
            .max(1e-9);
        let max_carbon = carbon.iter().copied().fold(0.0, f64::max).max(1e-9);
        let _ = writeln!(
            out,
            r##"<text x="{left}" y="{}" font-weight="bold">{}</text><rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#ccc"/>"##,
            y0 - 4.0,
            escape(&world.sites[site].id)
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end">{:.0}</text>"##,
            left - 4.0,
            y0 + 10.0,
            max_load
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end">0</text>"##,
            left - 4.0,
            y0 + panel_h
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#888">{:.2}</text>"##,
            left + plot_w + 4.0,
            y0 + 10.0,
            max_carbon
        );
        let points = |values: &[f64], max: f64| -> String {
            values
                .iter()
                .enumerate()
                .map(|(b, v)| format!("{:.1},{:.1}", x(b as i64), y0 + panel_h - panel_h * v / max))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="#bbb" stroke-width="1" points="{}"/>"##,
            points(&carbon, max_carbon)
        );
        for (p, load) in loads.iter().enumerate() {
            let _ = writeln!(
                out,
                r##"<polyline fill="none" stroke="{}" stroke-width="1.2" points="{}"/>"##,
                COLOURS[p % COLOURS.len()],
                points(load, max_load)
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="end" fill="#666">hours {first_h}..{last_h} since the epoch ({bucket} h per point)</text>"##,
        left + plot_w,
        height - 16.0
    );
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
