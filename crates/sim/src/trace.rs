//! Trace readers: Standard Workload Format (`.swf`, `.swf.gz`), the Alibaba
//! GPU-2023 pod list (with its node list for GPU models), and the
//! `arrival_time,length,cpus` CSV of the GAIA traces.
//!
//! A reader turns each data line into one [`TraceJob`] and keeps its line number.
//! A malformed line is an error naming file, line and field; with `skip_bad` it is
//! counted and reported instead, never silently dropped. The CSV formats are read
//! with the `csv` crate ([`suanwang_topology::csv_text`]: quoted fields, CRLF, a
//! byte-order mark), SWF by whitespace as its definition says.

use flate2::read::GzDecoder;
use serde::Serialize;
use std::io::Read;
use std::path::Path;
use suanwang_topology::csv_text::{CsvError, CsvText};

/// A job as a trace gives it, before fill-in rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceJob {
    /// 1-based line number in the file.
    pub line: usize,
    /// Name or id in the trace.
    pub name: String,
    /// Submission time, seconds from the trace's start.
    pub submit_secs: i64,
    /// Run time, seconds; `None` when the trace does not say.
    pub duration_secs: Option<i64>,
    /// CPU cores.
    pub cpus: u32,
    /// Memory, GiB, when given.
    pub mem_gib: Option<u32>,
    /// Whole accelerators.
    pub gpus: u32,
    /// Accelerator model named by the trace (or its node list).
    pub gpu_model: Option<String>,
    /// User or tenant named by the trace.
    pub user: Option<String>,
    /// Latency-sensitive service (Alibaba `LS` QoS) rather than batch.
    pub latency_sensitive: bool,
}

/// Which reader to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// Standard Workload Format.
    Swf,
    /// Alibaba cluster-trace-gpu-v2023 pod list.
    AlibabaGpu,
    /// GAIA `arrival_time,length,cpus`.
    Gaia,
    /// The built-in synthetic workload.
    Synthetic,
}

/// Time unit of a GAIA CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeUnit {
    /// Hours (the 100k files).
    Hours,
    /// Seconds (the `_1k` file).
    Seconds,
}

/// Options of [`read_trace`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Format; detected from the file name and header when `None`.
    pub format: Option<TraceFormat>,
    /// GAIA time unit; detected from the values when `None`.
    pub time_unit: Option<TimeUnit>,
    /// Skip malformed lines (counting them) instead of failing.
    pub skip_bad: bool,
    /// Alibaba node list, to draw GPU models from; looked for beside the pod list
    /// when `None`.
    pub node_list: Option<std::path::PathBuf>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What a reader returns.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The file read.
    pub path: String,
    /// The format used.
    pub format: TraceFormat,
    /// The GAIA time unit used, and whether it was detected.
    pub time_unit: Option<(TimeUnit, bool)>,
    /// Jobs in file order.
    pub jobs: Vec<TraceJob>,
    /// Lines skipped with `skip_bad`.
    pub skipped: Vec<BadLine>,
    /// GPU models of the node list with their GPU counts, when one was read.
    pub gpu_models: Vec<(String, u32)>,
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened, decompressed or decoded. The message names
    /// the file; the cause is the source (printed once, after it).
    #[error("cannot read {path}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A malformed line.
    #[error("{path}: line {line}: field {field:?}: {message}")]
    Line {
        /// File.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The format could not be told from the file.
    #[error(
        "{path}: cannot tell the trace format from the name or header (use --format swf|alibaba-gpu|gaia)"
    )]
    UnknownFormat {
        /// File.
        path: String,
    },
}

fn read_text(path: &Path) -> Result<String, TraceError> {
    read_file_text(path).map_err(|source| TraceError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a text file, gunzipping it if it is gzip, without a leading byte-order
/// mark. The error is the bare cause: callers name the file once, in their own
/// error, and keep this as its source.
pub fn read_file_text(path: &Path) -> Result<String, std::io::Error> {
    let bytes = std::fs::read(path)?;
    let mut text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        GzDecoder::new(&bytes[..]).read_to_string(&mut text)?;
        text
    } else {
        String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
    };
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Reads a trace file.
pub fn read_trace(path: &Path, options: &ReadOptions) -> Result<Trace, TraceError> {
    let text = read_text(path)?;
    let name = path.display().to_string();
    let format = match options.format {
        Some(f) => f,
        None => detect_format(&name, &text)
            .ok_or_else(|| TraceError::UnknownFormat { path: name.clone() })?,
    };
    let mut trace = match format {
        TraceFormat::Swf => parse_swf(&text, &name, options.skip_bad)?,
        TraceFormat::Gaia => parse_gaia(&text, &name, options.skip_bad, options.time_unit)?,
        TraceFormat::Synthetic => return Err(TraceError::UnknownFormat { path: name }),
        TraceFormat::AlibabaGpu => {
            let node_path = options.node_list.clone().or_else(|| {
                let sibling = path.with_file_name("alibaba_gpu2023_openb_node_list_all_node.csv");
                sibling.exists().then_some(sibling)
            });
            let nodes = match node_path {
                Some(p) => Some((p.display().to_string(), read_text(&p)?)),
                None => None,
            };
            parse_alibaba(
                &text,
                &name,
                options.skip_bad,
                nodes.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
            )?
        }
    };
    trace.path = name;
    Ok(trace)
}

/// Tells the format from the file name, then from the first line.
pub fn detect_format(name: &str, text: &str) -> Option<TraceFormat> {
    let lower = name.to_lowercase();
    if lower.ends_with(".swf") || lower.ends_with(".swf.gz") {
        return Some(TraceFormat::Swf);
    }
    let first_line = text.lines().next().unwrap_or("");
    if first_line.starts_with(';') {
        return Some(TraceFormat::Swf);
    }
    let header = CsvText::new(first_line, true)
        .headers()
        .unwrap_or_default()
        .join(",");
    if header.starts_with("name,cpu_milli") {
        return Some(TraceFormat::AlibabaGpu);
    }
    if header.starts_with("arrival_time,length,cpus") {
        return Some(TraceFormat::Gaia);
    }
    None
}

struct LineError {
    field: String,
    message: String,
}

fn field_err(field: &str, message: impl Into<String>) -> LineError {
    LineError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Records a bad line as skipped, or fails naming it.
fn bad_line(
    skipped: &mut Vec<BadLine>,
    path: &str,
    skip_bad: bool,
    line: usize,
    e: LineError,
) -> Result<(), TraceError> {
    if skip_bad {
        skipped.push(BadLine {
            line,
            field: e.field,
            message: e.message,
        });
        Ok(())
    } else {
        Err(TraceError::Line {
            path: path.to_string(),
            line,
            field: e.field,
            message: e.message,
        })
    }
}

/// Runs `parse` on each data line of a whitespace format (blank and `;` lines
/// skipped), turning errors into a failure or a skip.
fn each_line<F>(
    text: &str,
    path: &str,
    skip_bad: bool,
    mut parse: F,
) -> Result<Vec<BadLine>, TraceError>
where
    F: FnMut(usize, &str) -> Result<(), LineError>,
{
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with(';') {
            continue;
        }
        if let Err(e) = parse(i + 1, line) {
            bad_line(&mut skipped, path, skip_bad, i + 1, e)?;
        }
    }
    Ok(skipped)
}

/// Runs `parse` on each record after the header of CSV text, turning errors
/// into a failure or a skip. A CSV syntax error (a quote left open) fails even
/// with `skip_bad`: the records after it cannot be trusted.
fn each_record<F>(
    csv: &mut CsvText,
    path: &str,
    skip_bad: bool,
    mut parse: F,
) -> Result<Vec<BadLine>, TraceError>
where
    F: FnMut(usize, &csv::StringRecord) -> Result<(), LineError>,
{
    let mut skipped = Vec::new();
    while let Some(next) = csv.next_record() {
        let (line, record) = next.map_err(|e| csv_error(path, e))?;
        if let Err(e) = parse(line, record) {
            bad_line(&mut skipped, path, skip_bad, line, e)?;
        }
    }
    Ok(skipped)
}

fn csv_error(path: &str, e: CsvError) -> TraceError {
    TraceError::Line {
        path: path.to_string(),
        line: e.line,
        field: "record".into(),
        message: e.message,
    }
}

/// The header of CSV text, checked against the format's `expected` columns.
fn check_header(csv: &mut CsvText, path: &str, expected: &[&str]) -> Result<(), TraceError> {
    let names = csv.headers().map_err(|e| csv_error(path, e))?;
    if names != expected {
        return Err(TraceError::Line {
            path: path.into(),
            line: 1,
            field: "header".into(),
            message: format!(
                "expected {:?}, found {:?}",
                expected.join(","),
                names.join(",")
            ),
        });
    }
    Ok(())
}

fn number<T: std::str::FromStr>(text: &str, field: &str) -> Result<T, LineError> {
    text.trim()
        .parse()
        .map_err(|_| field_err(field, format!("{:?} is not a number", text.trim())))
}

const SWF_FIELDS: [&str; 18] = [
    "job_number",
    "submit_time",
    "wait_time",
    "run_time",
    "allocated_processors",
    "average_cpu_time",
    "used_memory",
    "requested_processors",
    "requested_time",
    "requested_memory",
    "status",
    "user_id",
    "group_id",
    "executable",
    "queue",
    "partition",
    "preceding_job",
    "think_time",
];

/// Standard Workload Format: 18 whitespace-separated fields, `;` comments, -1 for
/// unknown. Run time is field 4 (requested time, field 9, when unknown);
/// processors field 5 (requested, field 8, when unknown); memory field 7 in KB per
/// processor.
pub fn parse_swf(text: &str, path: &str, skip_bad: bool) -> Result<Trace, TraceError> {
    let mut jobs = Vec::new();
    let skipped = each_line(text, path, skip_bad, |line, raw| {
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.len() < 18 {
            return Err(field_err(
                SWF_FIELDS[fields.len().min(17)],
                format!("missing: {} of 18 fields", fields.len()),
            ));
        }
        let get = |i: usize| -> Result<f64, LineError> { number::<f64>(fields[i], SWF_FIELDS[i]) };
        let submit = get(1)?;
        if submit < 0.0 {
            return Err(field_err(SWF_FIELDS[1], format!("{submit} is negative")));
        }
        let run = get(3)?;
        let requested = get(8)?;
        let duration = if run >= 0.0 {
            Some(run.max(1.0) as i64)
        } else if requested > 0.0 {
            Some(requested as i64)
        } else {
            None
        };
        let procs = get(4)?;
        let procs = if procs > 0.0 { procs } else { get(7)? };
        if procs <= 0.0 {
            return Err(field_err(
                SWF_FIELDS[4],
                "no processor count (fields 5 and 8 are unknown)",
            ));
        }
        let mem_kb = get(6)?;
        let mem_gib =
            (mem_kb > 0.0).then(|| ((mem_kb * procs) / (1024.0 * 1024.0)).ceil().max(1.0) as u32);
        let user = get(11)?;
        jobs.push(TraceJob {
            line,
            name: fields[0].to_string(),
            submit_secs: submit as i64,
            duration_secs: duration,
            cpus: procs as u32,
            mem_gib,
            gpus: 0,
            gpu_model: None,
            user: (user >= 0.0).then(|| format!("user-{}", user as i64)),
            latency_sensitive: false,
        });
        Ok(())
    })?;
    Ok(Trace {
        path: path.into(),
        format: TraceFormat::Swf,
        time_unit: None,
        jobs,
        skipped,
        gpu_models: Vec::new(),
    })
}

/// GAIA CSV: `arrival_time,length,cpus`, in hours (the 100k files) or seconds
/// (the `_1k` file). Without an explicit unit: seconds when the median length
/// exceeds 48 (a two-day median job is implausible in hours), else hours.
pub fn parse_gaia(
    text: &str,
    path: &str,
    skip_bad: bool,
    unit: Option<TimeUnit>,
) -> Result<Trace, TraceError> {
    let mut rows: Vec<(usize, f64, f64, u32)> = Vec::new();
    let names = ["arrival_time", "length", "cpus"];
    let mut csv = CsvText::new(text, true);
    check_header(&mut csv, path, &names)?;
    let skipped = each_record(&mut csv, path, skip_bad, |line, fields| {
        if fields.len() != 3 {
            return Err(field_err(
                names[fields.len().min(2)],
                format!("expected 3 fields, found {}", fields.len()),
            ));
        }
        let arrival: f64 = number(&fields[0], names[0])?;
        let length: f64 = number(&fields[1], names[1])?;
        let cpus: f64 = number(&fields[2], names[2])?;
        if !arrival.is_finite() || arrival < 0.0 {
            return Err(field_err(names[0], format!("{arrival} is negative")));
        }
        if !length.is_finite() || length < 0.0 {
            return Err(field_err(names[1], format!("{length} is negative")));
        }
        if cpus < 1.0 || cpus.fract() != 0.0 || cpus > 1e6 {
            return Err(field_err(
                names[2],
                format!("{cpus} is not a whole number of cores >= 1"),
            ));
        }
        rows.push((line, arrival, length, cpus as u32));
        Ok(())
    })?;
    let (unit, detected) = match unit {
        Some(u) => (u, false),
        None => {
            let mut lengths: Vec<f64> = rows.iter().map(|r| r.2).collect();
            lengths.sort_by(f64::total_cmp);
            let median = lengths.get(lengths.len() / 2).copied().unwrap_or(0.0);
            (
                if median > 48.0 {
                    TimeUnit::Seconds
                } else {
                    TimeUnit::Hours
                },
                true,
            )
        }
    };
    let scale = match unit {
        TimeUnit::Hours => 3600.0,
        TimeUnit::Seconds => 1.0,
    };
    let jobs = rows
        .into_iter()
        .map(|(line, arrival, length, cpus)| TraceJob {
            line,
            name: format!("L{line}"),
            submit_secs: (arrival * scale).round() as i64,
            duration_secs: Some(((length * scale).round() as i64).max(1)),
            cpus,
            mem_gib: None,
            gpus: 0,
            gpu_model: None,
            user: None,
            latency_sensitive: false,
        })
        .collect();
    Ok(Trace {
        path: path.into(),
        format: TraceFormat::Gaia,
        time_unit: Some((unit, detected)),
        jobs,
        skipped,
        gpu_models: Vec::new(),
    })
}

/// Alibaba GPU-2023 pod list. Run time is `deletion_time - scheduled_time`; a pod
/// never scheduled (`Pending`) runs `deletion_time - creation_time` (how long its
/// owner wanted it). `gpu_spec` is empty in this file, so the node list's models,
/// weighted by their GPU counts, are returned for the fill-in rules.
pub fn parse_alibaba(
    text: &str,
    path: &str,
    skip_bad: bool,
    nodes: Option<(&str, &str)>,
) -> Result<Trace, TraceError> {
    let names = [
        "name",
        "cpu_milli",
        "memory_mib",
        "num_gpu",
        "gpu_milli",
        "gpu_spec",
        "qos",
        "pod_phase",
        "creation_time",
        "deletion_time",
        "scheduled_time",
    ];
    let mut csv = CsvText::new(text, true);
    check_header(&mut csv, path, &names)?;
    let mut jobs = Vec::new();
    let skipped = each_record(&mut csv, path, skip_bad, |line, f| {
        if f.len() != names.len() {
            return Err(field_err(
                names[f.len().min(names.len() - 1)],
                format!("expected 11 fields, found {}", f.len()),
            ));
        }
        let cpu_milli: f64 = number(&f[1], names[1])?;
        let mem_mib: f64 = number(&f[2], names[2])?;
        let num_gpu: f64 = number(&f[3], names[3])?;
        let creation: i64 = number(&f[8], names[8])?;
        let deletion: i64 = number(&f[9], names[9])?;
        let scheduled: Option<i64> = if f[10].trim().is_empty() {
            None
        } else {
            Some(number(&f[10], names[10])?)
        };
        if cpu_milli < 0.0 || mem_mib < 0.0 || num_gpu < 0.0 {
            return Err(field_err(names[1], "negative resources"));
        }
        let start = scheduled.unwrap_or(creation);
        if deletion < start {
            return Err(field_err(
                names[9],
                format!("{deletion} is before the start {start}"),
            ));
        }
        jobs.push(TraceJob {
            line,
            name: f[0].trim().to_string(),
            submit_secs: creation,
            duration_secs: Some((deletion - start).max(1)),
            cpus: ((cpu_milli / 1000.0).ceil() as u32).max(1),
            mem_gib: Some(((mem_mib / 1024.0).ceil() as u32).max(1)),
            gpus: num_gpu as u32,
            gpu_model: (!f[5].trim().is_empty()).then(|| f[5].trim().to_string()),
            user: None,
            latency_sensitive: f[6].trim() == "LS",
        });
        Ok(())
    })?;
    let mut gpu_models: Vec<(String, u32)> = Vec::new();
    if let Some((node_path, node_text)) = nodes {
        let mut counts: std::collections::BTreeMap<String, u32> = Default::default();
        let mut csv = CsvText::new(node_text, true);
        csv.headers().map_err(|e| csv_error(node_path, e))?;
        each_record(&mut csv, node_path, false, |_, f| {
            if f.len() != 5 {
                return Err(field_err(
                    "model",
                    format!("expected 5 fields, found {}", f.len()),
                ));
            }
            let gpus: u32 = number(&f[3], "gpu")?;
            if gpus > 0 && !f[4].trim().is_empty() {
                *counts.entry(f[4].trim().to_string()).or_default() += gpus;
            }
            Ok(())
        })?;
        gpu_models = counts.into_iter().collect();
    }
    Ok(Trace {
        path: path.into(),
        format: TraceFormat::AlibabaGpu,
        time_unit: None,
        jobs,
        skipped,
        gpu_models,
    })
}

/// The built-in synthetic workload (`--trace synthetic`), the project's own data so
/// that `simulate` runs on a fresh machine without ../shared. Deterministic in
/// `seed`. Arrivals follow a day-shaped Poisson process (twice as busy at 10:00 as
/// at 04:00, Beijing time); the mix is 70% CPU batch (1–16 cores, 15 min–12 h
/// log-uniform), 20% accelerator training (1–8 cards of the topology's models,
/// weighted by capacity, 2–48 h), 10% latency-sensitive inference (1 card, 1–24 h).
pub fn synthetic(seed: u64, jobs: usize, days: u32, gpu_models: &[(String, u32)]) -> Trace {
    use crate::fill::draw;
    let span = days as f64 * 86400.0;
    let mean_gap = span / jobs.max(1) as f64;
    let mut t = 0.0;
    let mut out = Vec::with_capacity(jobs);
    let mut i = 0u64;
    while out.len() < jobs {
        // Thinning: draw at the peak rate, keep with probability rate(t) / peak.
        let u = draw(seed, i, 101).max(1e-12);
        t += -u.ln() * mean_gap / 1.5;
        let hour = ((t / 3600.0) % 24.0 + 24.0) % 24.0;
        let rate = 1.0 + 0.5 * ((hour - 10.0) / 24.0 * std::f64::consts::TAU).cos();
        let keep = draw(seed, i, 102) < rate / 1.5;
        i += 1;
        if !keep {
            continue;
        }
        let index = out.len() as u64;
        let kind = draw(seed, index, 103);
        let log_uniform = |lo: f64, hi: f64, tag: u64| lo * (hi / lo).powf(draw(seed, index, tag));
        let (cpus, gpus, hours, latency_sensitive) = if kind < 0.7 {
            (
                (log_uniform(1.0, 17.0, 104) as u32).max(1),
                0,
                log_uniform(0.25, 12.0, 105),
                false,
            )
        } else if kind < 0.9 {
            let gpus = [1, 2, 4, 8][(draw(seed, index, 106) * 4.0) as usize % 4];
            (gpus * 8, gpus, log_uniform(2.0, 48.0, 107), false)
        } else {
            (8, 1, log_uniform(1.0, 24.0, 108), true)
        };
        let model = if gpus > 0 {
            let total: u32 = gpu_models.iter().map(|m| m.1).sum();
            let mut target = draw(seed, index, 109) * total as f64;
            gpu_models
                .iter()
                .find(|m| {
                    target -= m.1 as f64;
                    target < 0.0
                })
                .or(gpu_models.last())
                .map(|m| m.0.clone())
        } else {
            None
        };
        out.push(TraceJob {
            line: out.len() + 1,
            name: format!("syn-{}", out.len()),
            submit_secs: t as i64,
            duration_secs: Some((hours * 3600.0) as i64),
            cpus,
            mem_gib: Some(cpus * 4),
            gpus,
            gpu_model: model,
            user: None,
            latency_sensitive,
        });
    }
    Trace {
        path: format!("synthetic(seed={seed}, jobs={jobs}, days={days})"),
        format: TraceFormat::Synthetic,
        time_unit: None,
        jobs: out,
        skipped: Vec::new(),
        gpu_models: gpu_models.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaia_detects_hours_and_seconds() {
        let hours = "arrival_time,length,cpus\n0.0,2.5,1\n1.0,0.5,4\n";
        let t = parse_gaia(hours, "h.csv", false, None).unwrap();
        assert_eq!(t.time_unit, Some((TimeUnit::Hours, true)));
        assert_eq!(t.jobs[0].duration_secs, Some(9000));
        assert_eq!(t.jobs[1].submit_secs, 3600);
        let secs = "arrival_time,length,cpus\n0.0,6302.0,1\n68.0,1000.0,1\n";
        let t = parse_gaia(secs, "s.csv", false, None).unwrap();
        assert_eq!(t.time_unit, Some((TimeUnit::Seconds, true)));
        assert_eq!(t.jobs[1].submit_secs, 68);
    }

    #[test]
    fn bad_lines_name_file_line_and_field_or_are_counted() {
        let text = "arrival_time,length,cpus\n0.0,2.5,1\n1.0,x,4\n2.0,1.0\n";
        let err = parse_gaia(text, "g.csv", false, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "g.csv: line 3: field \"length\": \"x\" is not a number"
        );
        let t = parse_gaia(text, "g.csv", true, None).unwrap();
        assert_eq!(t.jobs.len(), 1);
        assert_eq!(t.skipped.len(), 2);
        assert_eq!(t.skipped[1].line, 4);
    }

    #[test]
    fn csv_traces_read_quoted_fields_crlf_and_a_byte_order_mark() {
        // The pod's name holds a comma inside quotes: splitting on ',' saw 12
        // fields and refused the line.
        let pods = "\u{feff}name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\r\n\
                    \"openb-pod-0017, retry\",12000,16384,1,1000,\"V100M32\",LS,Running,0,100,10\r\n\
                    \r\n\
                    p1,6000,12288,2,460,,BE,Pending,50,80,\r\n";
        let t = parse_alibaba(pods, "p.csv", false, None).unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.jobs[0].name, "openb-pod-0017, retry");
        assert_eq!(t.jobs[0].gpu_model.as_deref(), Some("V100M32"));
        assert_eq!((t.jobs[0].line, t.jobs[1].line), (2, 4));
        assert_eq!(
            detect_format("pods.csv", pods.trim_start_matches('\u{feff}')),
            Some(TraceFormat::AlibabaGpu)
        );

        let gaia = "\"arrival_time\",\"length\", cpus\r\n\"0.5\",2.5,1\r\n1.0,\"2,5\",4\r\n";
        assert_eq!(detect_format("g.csv", gaia), Some(TraceFormat::Gaia));
        let err = parse_gaia(gaia, "g.csv", false, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "g.csv: line 3: field \"length\": \"2,5\" is not a number"
        );
        let t = parse_gaia(gaia, "g.csv", true, None).unwrap();
        assert_eq!(t.jobs[0].submit_secs, 1800);
        assert_eq!(t.skipped[0].line, 3);

        let err = parse_gaia("arrival,length\n1,2\n", "g.csv", false, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "g.csv: line 1: field \"header\": expected \"arrival_time,length,cpus\", found \"arrival,length\""
        );
    }

    #[test]
    fn a_missing_file_names_it_and_keeps_the_cause_as_the_source() {
        let err = read_trace(Path::new("/no/such/trace.csv"), &ReadOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "cannot read /no/such/trace.csv");
        let source = std::error::Error::source(&err).expect("the OS error is the source");
        assert!(source.to_string().contains("os error"), "{source}");
    }

    #[test]
    fn swf_reads_fields_and_unknowns() {
        let text = "; comment\n    1        0     -1   1451  128     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1\n    2       10     -1     -1    4     -1  2048   -1    600    -1 -1   7   1  -1 -1 -1 -1 -1\n";
        let t = parse_swf(text, "x.swf", false).unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.jobs[0].line, 2);
        assert_eq!((t.jobs[0].cpus, t.jobs[0].duration_secs), (128, Some(1451)));
        assert_eq!(
            t.jobs[1].duration_secs,
            Some(600),
            "falls back to requested time"
        );
        assert_eq!(t.jobs[1].user.as_deref(), Some("user-7"));
        let err = parse_swf("1 2 3\n", "x.swf", false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.swf: line 1: field"), "{err}");
    }

    #[test]
    fn alibaba_reads_pods_and_node_models() {
        let pods = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,12000,16384,1,1000,,LS,Running,0,100,10\n\
                    p1,6000,12288,2,460,,BE,Pending,50,80,\n";
        let nodes = "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,8,V100M32\nn1,1,1,2,T4\nn2,1,1,0,\n";
        let t = parse_alibaba(pods, "p.csv", false, Some(("n.csv", nodes))).unwrap();
        assert_eq!(t.jobs[0].duration_secs, Some(90));
        assert!(t.jobs[0].latency_sensitive);
        assert_eq!(
            t.jobs[1].duration_secs,
            Some(30),
            "pending pod: deletion - creation"
        );
        assert_eq!(
            (t.jobs[1].cpus, t.jobs[1].mem_gib, t.jobs[1].gpus),
            (6, Some(12), 2)
        );
        assert_eq!(
            t.gpu_models,
            vec![("T4".to_string(), 2), ("V100M32".to_string(), 8)]
        );
    }

    #[test]
    fn synthetic_workload_is_deterministic_and_mixed() {
        let models = vec![("a800".to_string(), 64), ("l40s".to_string(), 128)];
        let a = synthetic(1, 500, 7, &models);
        assert_eq!(a.jobs, synthetic(1, 500, 7, &models).jobs);
        assert_ne!(a.jobs, synthetic(2, 500, 7, &models).jobs);
        assert_eq!(a.jobs.len(), 500);
        let gpu = a.jobs.iter().filter(|j| j.gpus > 0).count();
        assert!((100..200).contains(&gpu), "{gpu} accelerator jobs of 500");
        let last = a.jobs.last().unwrap().submit_secs;
        assert!(
            (5 * 86400..9 * 86400).contains(&last),
            "spans about a week: {last}"
        );
        assert!(
            a.jobs
                .windows(2)
                .all(|w| w[0].submit_secs <= w[1].submit_secs)
        );
    }
}
