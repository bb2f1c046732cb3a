//! Hourly series derived from a topology: electricity price (time-of-use), grid
//! carbon intensity and green-power share, per site, at any simulated instant.
//!
//! Carbon intensity = the site's official annual factor × a normalised shape (mean
//! 1). The shape is either the built-in month × hour profile (Germany's real 2020
//! series; see [`crate::profiles`]) read in the site's local solar time, or a full
//! series from a CSV file given by the user. Either way it is a shape *borrowed from
//! another grid*, since no public hourly series exists for Chinese provinces, and it
//! must be labelled so where shown.
//!
//! A series file is read by [`CarbonSeries::parse_csv`]; [`fill_gaps`] makes its
//! rows evenly spaced, filling gaps of at most [`MAX_FILLED_GAP`] by linear
//! interpolation (and listing them) and refusing longer ones by line.

use crate::Topology;
use crate::csv_text::{CsvError, CsvText};
use crate::profiles::{CARBON_SHAPE, CARBON_SHAPE_LON, RENEWABLE_SHAPE, RENEWABLE_SHAPE_LON};
use suanwang_model::time::{civil_from_days, days_from_civil};
use suanwang_model::{SimDuration, SimTime};

/// A real carbon-intensity series loaded from CSV, normalised to mean 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CarbonSeries {
    /// Normalised values, one per step (filled gaps included).
    pub values: Vec<f32>,
    /// Step between values, seconds.
    pub step_secs: i64,
    /// Mean of the raw values (gCO2/kWh or whatever unit the file used).
    pub raw_mean: f64,
    /// Unix time of the first row.
    pub start_unix: i64,
    /// Where it came from, for labels.
    pub origin: String,
    /// Data rows read from the file.
    pub rows: usize,
    /// Gaps filled by linear interpolation, in file order.
    pub filled: Vec<FilledGap>,
    /// Runs of rows finer than the step, averaged into it, in file order.
    pub averaged: Vec<AveragedRun>,
}

/// Why a carbon series file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The header has no usable time and intensity columns.
    #[error("{origin}: line 1: {message}")]
    Header {
        /// File name.
        origin: String,
        /// What is missing.
        message: String,
    },
    /// A row is malformed, out of order, or after a gap too long to fill.
    #[error("{origin}: line {line}: field {field:?}: {message}")]
    Row {
        /// File name.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Too few rows to define a step.
    #[error("{origin}: needs at least two data rows")]
    TooShort {
        /// File name.
        origin: String,
    },
}

/// The longest gap [`fill_gaps`] fills when a series is read: the time its
/// missing rows cover (rows × step). Longer gaps are refused, since a straight
/// line over them would stand in for real variation (a whole afternoon of solar
/// power, say) that the file does not give.
pub const MAX_FILLED_GAP: SimDuration = SimDuration::hours(2);

/// One data row of a time series as read: its line in the file, its time and
/// its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesRow {
    /// 1-based line number in the file.
    pub line: usize,
    /// Unix time, seconds.
    pub unix: i64,
    /// The value.
    pub value: f64,
}

/// Rows that one gap lacked, filled by linear interpolation between the rows on
/// either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilledGap {
    /// The line of the row after which the gap lies.
    pub after_line: usize,
    /// Unix time of the first row filled.
    pub first_unix: i64,
    /// Unix time of the last row filled.
    pub last_unix: i64,
    /// How many rows were filled.
    pub rows: usize,
}

/// Consecutive rows finer than the series' step (e.g. a grid that went from
/// 30-minute to 15-minute figures), each step's rows averaged into its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AveragedRun {
    /// The first row averaged.
    pub first_line: usize,
    /// The last row averaged.
    pub last_line: usize,
    /// Rows averaged.
    pub rows: usize,
    /// Steps they make.
    pub steps: usize,
}

/// An evenly spaced series.
#[derive(Debug, Clone, PartialEq)]
pub struct EvenSeries {
    /// Unix time of the first value.
    pub start_unix: i64,
    /// Step between values, seconds.
    pub step_secs: i64,
    /// One value per step, gaps filled.
    pub values: Vec<f64>,
    /// The gaps filled, in time order.
    pub filled: Vec<FilledGap>,
    /// Runs of rows finer than the step, averaged, in time order.
    pub averaged: Vec<AveragedRun>,
}

/// Why rows could not be made an evenly spaced series. Each variant but
/// `TooShort` belongs to a line ([`GapError::line`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GapError {
    /// Fewer than two rows: no step.
    #[error("needs at least two data rows")]
    TooShort,
    /// A row has the same time as the one before it.
    #[error("{time} repeats the time of line {previous_line}")]
    Duplicate {
        /// The repeating row.
        line: usize,
        /// The row it repeats.
        previous_line: usize,
        /// The time, `YYYY-MM-DD HH:MM:SS` UTC.
        time: String,
    },
    /// A row is earlier than the one before it.
    #[error("{time} goes back in time from {previous_time} on line {previous_line}")]
    Backwards {
        /// The earlier row.
        line: usize,
        /// The row before it in the file.
        previous_line: usize,
        /// Its time.
        time: String,
        /// The previous row's time.
        previous_time: String,
    },
    /// The time since the previous row is not a whole number of steps.
    #[error(
        "{time} is {interval} after line {previous_line}, not a whole number of the series' step ({step})"
    )]
    OffStep {
        /// The row.
        line: usize,
        /// The row before it.
        previous_line: usize,
        /// Its time.
        time: String,
        /// Time since the previous row.
        interval: SimDuration,
        /// The series' step (its most common interval).
        step: SimDuration,
    },
    /// Rows are missing for longer than the longest gap filled.
    #[error(
        "{rows} rows ({missing}, {first} to {last}) missing after line {previous_line}: \
         more than the {max} filled by interpolation"
    )]
    TooLong {
        /// The row after the gap.
        line: usize,
        /// The row before it.
        previous_line: usize,
        /// Rows missing.
        rows: usize,
        /// Time the missing rows cover.
        missing: SimDuration,
        /// Time of the first missing row.
        first: String,
        /// Time of the last missing row.
        last: String,
        /// The longest gap filled.
        max: SimDuration,
    },
}

impl GapError {
    /// The line at fault.
    pub fn line(&self) -> Option<usize> {
        match self {
            GapError::TooShort => None,
            GapError::Duplicate { line, .. }
            | GapError::Backwards { line, .. }
            | GapError::OffStep { line, .. }
            | GapError::TooLong { line, .. } => Some(*line),
        }
    }
}

/// Makes rows in file order an evenly spaced series. The step is the most common
/// time between consecutive rows (the smaller on a tie). Rows finer than the step
/// (their interval divides it) are averaged into one value per step and
/// reported. Where rows are missing for at most `max_gap` (rows missing × step),
/// they are filled by linear interpolation and reported; a longer gap, a
/// repeated or earlier time, or a time off the step's grid is an error naming
/// its line. Pure: no IO.
pub fn fill_gaps(rows: &[SeriesRow], max_gap: SimDuration) -> Result<EvenSeries, GapError> {
    if rows.len() < 2 {
        return Err(GapError::TooShort);
    }
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for pair in rows.windows(2) {
        let (previous, row) = (pair[0], pair[1]);
        let interval = row.unix - previous.unix;
        if interval == 0 {
            return Err(GapError::Duplicate {
                line: row.line,
                previous_line: previous.line,
                time: format_timestamp(row.unix),
            });
        }
        if interval < 0 {
            return Err(GapError::Backwards {
                line: row.line,
                previous_line: previous.line,
                time: format_timestamp(row.unix),
                previous_time: format_timestamp(previous.unix),
            });
        }
        *counts.entry(interval).or_default() += 1;
    }
    // The most common interval; on a tie the smallest, as iteration is ascending.
    let step = counts
        .iter()
        .fold(
            (0, 0),
            |best, (&interval, &n)| {
                if n > best.1 { (interval, n) } else { best }
            },
        )
        .0;
    // Rows finer than the step go into the step that holds them, averaged:
    // (the step's first row, how many rows, the line of its last).
    let start = rows[0].unix;
    let mut steps: Vec<(SeriesRow, usize, usize)> = vec![(rows[0], 1, rows[0].line)];
    for pair in rows.windows(2) {
        let (previous, row) = (pair[0], pair[1]);
        let interval = row.unix - previous.unix;
        let Some((current, n, last_line)) = steps.last_mut() else {
            continue;
        };
        if row.unix - current.unix < step && step % interval == 0 {
            current.value += row.value;
            *n += 1;
            *last_line = row.line;
        } else if (row.unix - start) % step != 0 {
            return Err(GapError::OffStep {
                line: row.line,
                previous_line: previous.line,
                time: format_timestamp(row.unix),
                interval: SimDuration(interval),
                step: SimDuration(step),
            });
        } else {
            steps.push((row, 1, row.line));
        }
    }
    let mut averaged: Vec<AveragedRun> = Vec::new();
    let mut previous_unix = None;
    for (row, n, last_line) in &steps {
        if *n > 1 {
            match averaged.last_mut() {
                Some(run) if previous_unix == Some(row.unix - step) => {
                    run.last_line = *last_line;
                    run.rows += n;
                    run.steps += 1;
                }
                _ => averaged.push(AveragedRun {
                    first_line: row.line,
                    last_line: *last_line,
                    rows: *n,
                    steps: 1,
                }),
            }
            previous_unix = Some(row.unix);
        } else {
            previous_unix = None;
        }
    }
    let rows: Vec<SeriesRow> = steps
        .into_iter()
        .map(|(row, n, _)| SeriesRow {
            value: row.value / n as f64,
            ..row
        })
        .collect();
    let mut values = Vec::with_capacity(rows.len());
    let mut filled = Vec::new();
    values.push(rows[0].value);
    for pair in rows.windows(2) {
        let (previous, row) = (pair[0], pair[1]);
        let interval = row.unix - previous.unix;
        if interval % step != 0 {
            return Err(GapError::OffStep {
                line: row.line,
                previous_line: previous.line,
                time: format_timestamp(row.unix),
                interval: SimDuration(interval),
                step: SimDuration(step),
            });
        }
        let steps = interval / step;
        let missing = steps - 1;
        if missing > 0 {
            let first_unix = previous.unix + step;
            let last_unix = row.unix - step;
            if missing * step > max_gap.0 {
                return Err(GapError::TooLong {
                    line: row.line,
                    previous_line: previous.line,
                    rows: missing as usize,
                    missing: SimDuration(missing * step),
                    first: format_timestamp(first_unix),
                    last: format_timestamp(last_unix),
                    max: max_gap,
                });
            }
            for k in 1..steps {
                let share = k as f64 / steps as f64;
                values.push(previous.value + (row.value - previous.value) * share);
            }
            filled.push(FilledGap {
                after_line: previous.line,
                first_unix,
                last_unix,
                rows: missing as usize,
            });
        }
        values.push(row.value);
    }
    Ok(EvenSeries {
        start_unix: rows[0].unix,
        step_secs: step,
        values,
        filled,
        averaged,
    })
}

/// Parses `YYYY-MM-DD HH:MM[:SS]` (or with `T`, optional trailing `Z`) as UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: f64 = t.next().map(|s| s.parse().ok()).unwrap_or(Some(0.0))?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second as i64)
}

/// Writes unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC), the form
/// [`parse_timestamp`] reads.
pub fn format_timestamp(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86400));
    let secs = unix.rem_euclid(86400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl CarbonSeries {
    /// Parses a CSV (quoted fields, CRLF line ends and a byte-order mark are
    /// fine) with a time column and an intensity column. The time column is the
    /// first whose header names time or date (else the first column); the
    /// intensity column is the first whose header mentions carbon, intensity or
    /// co2 (else the first other column). Rows must be evenly spaced, except for
    /// gaps of at most [`MAX_FILLED_GAP`], which are filled (see [`fill_gaps`])
    /// and listed in `filled`.
    pub fn parse_csv(text: &str, origin: &str) -> Result<CarbonSeries, SeriesError> {
        let mut csv = CsvText::new(text, true);
        let csv_err = |e: CsvError| SeriesError::Row {
            origin: origin.into(),
            line: e.line,
            field: "record".into(),
            message: e.message,
        };
        let names = csv.headers().map_err(csv_err)?;
        let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let time_col = lower
            .iter()
            .position(|n| n.contains("time") || n.contains("date"))
            .unwrap_or(0);
        let value_col = lower
            .iter()
            .enumerate()
            .position(|(i, n)| {
                i != time_col
                    && (n.contains("carbon") || n.contains("intensity") || n.contains("co2"))
            })
            .or_else(|| (0..names.len()).find(|&i| i != time_col))
            .ok_or_else(|| SeriesError::Header {
                origin: origin.into(),
                message: "needs a time column and an intensity column".into(),
            })?;
        let mut rows = Vec::new();
        while let Some(next) = csv.next_record() {
            let (line, record) = next.map_err(csv_err)?;
            let row_err = |field: usize, message: String| SeriesError::Row {
                origin: origin.into(),
                line,
                field: names[field].clone(),
                message,
            };
            let time_text = record
                .get(time_col)
                .ok_or_else(|| row_err(time_col, "missing".into()))?
                .trim();
            let unix = parse_timestamp(time_text).ok_or_else(|| {
                row_err(
                    time_col,
                    format!("{time_text:?} is not a timestamp like 2020-01-31 13:45:00"),
                )
            })?;
            let value_text = record
                .get(value_col)
                .ok_or_else(|| row_err(value_col, "missing".into()))?;
            let value_text = value_text.trim();
            let value: f64 = value_text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    row_err(value_col, format!("{value_text:?} is not a number >= 0"))
                })?;
            rows.push(SeriesRow { line, unix, value });
        }
        let even = fill_gaps(&rows, MAX_FILLED_GAP).map_err(|e| match e.line() {
            None => SeriesError::TooShort {
                origin: origin.into(),
            },
            Some(line) => SeriesError::Row {
                origin: origin.into(),
                line,
                field: names[time_col].clone(),
                message: e.to_string(),
            },
        })?;
        let raw_mean = even.values.iter().sum::<f64>() / even.values.len() as f64;
        let norm = if raw_mean > 0.0 { raw_mean } else { 1.0 };
        Ok(CarbonSeries {
            values: even.values.iter().map(|v| (v / norm) as f32).collect(),
            step_secs: even.step_secs,
            raw_mean,
            start_unix: even.start_unix,
            origin: origin.into(),
            rows: rows.len(),
            filled: even.filled,
            averaged: even.averaged,
        })
    }
}

/// Per-site parameters needed to evaluate the series quickly.
#[derive(Debug, Clone)]
struct SiteParams {
    grid_kg_per_kwh: f64,
    carbon_shift_secs: f64,
    green_share: f64,
    green_shaped: bool,
    green_shift_secs: f64,
    utc_offset_secs: i64,
    base_cny_per_kwh: f64,
    multipliers: [f64; 24],
}

/// Evaluates price, carbon and green share per site at simulated instants.
#[derive(Debug, Clone)]
pub struct SeriesModel {
    /// Unix time (UTC) of `SimTime(0)`.
    pub start_unix: i64,
    /// The user's series, if one replaced the built-in shape.
    pub carbon_series: Option<CarbonSeries>,
    /// Longitude the user's series was measured at, for the solar-time shift.
    pub carbon_series_lon: f64,
    sites: Vec<SiteParams>,
}

fn solar_shift_secs(site_lon: f64, shape_lon: f64) -> f64 {
    // A site east of the shape's grid reaches the same solar hour earlier in UTC,
    // so it reads the shape later in UTC terms.
    (site_lon - shape_lon) / 15.0 * 3600.0
}

/// Reads a month × UTC-hour table at unix time `unix`, interpolating between hours.
fn table_at(table: &[[f32; 24]; 12], unix: f64) -> f64 {
    let days = (unix / 86400.0).floor();
    let (_, month, _) = civil_from_days(days as i64);
    let hour = (unix - days * 86400.0) / 3600.0;
    let h0 = hour.floor() as usize % 24;
    let frac = hour - hour.floor();
    let row = &table[month as usize - 1];
    row[h0] as f64 * (1.0 - frac) + row[(h0 + 1) % 24] as f64 * frac
}

impl SeriesModel {
    /// Series for `topology`, with `SimTime(0)` at unix time `start_unix`; a given
    /// `carbon_series` replaces the built-in carbon shape.
    pub fn new(
        topology: &Topology,
        start_unix: i64,
        carbon_series: Option<CarbonSeries>,
        carbon_series_lon: f64,
    ) -> SeriesModel {
        let shape_lon = if carbon_series.is_some() {
            carbon_series_lon
        } else {
            CARBON_SHAPE_LON
        };
        let sites = topology
            .sites
            .iter()
            .map(|site| {
                let mut multipliers = [1.0; 24];
                for (hour, m) in multipliers.iter_mut().enumerate() {
                    *m = site.tariff.multiplier_at(hour as u32);
                }
                SiteParams {
                    grid_kg_per_kwh: site.carbon.grid_kg_per_kwh,
                    carbon_shift_secs: solar_shift_secs(site.location.lon, shape_lon),
                    green_share: site.green.share,
                    green_shaped: site.green.shaped,
                    green_shift_secs: solar_shift_secs(site.location.lon, RENEWABLE_SHAPE_LON),
                    utc_offset_secs: (site.utc_offset_hours * 3600.0).round() as i64,
                    base_cny_per_kwh: site.tariff.base_cny_per_kwh,
                    multipliers,
                }
            })
            .collect();
        SeriesModel {
            start_unix,
            carbon_series,
            carbon_series_lon,
            sites,
        }
    }

    /// A label saying where the carbon shape comes from.
    pub fn carbon_label(&self) -> String {
        match &self.carbon_series {
            Some(series) => format!(
                "official annual factor x hourly shape of {} (another grid's real series, normalised)",
                series.origin
            ),
            None => "official annual factor x built-in hourly shape (Germany 2020, ENTSO-E via Let's Wait Awhile; \
                     another grid's real series, normalised)"
                .to_string(),
        }
    }

    /// Grid carbon intensity at `site` at `t`, kg CO2 per kWh.
    pub fn carbon_kg_per_kwh(&self, site: usize, t: SimTime) -> f64 {
        let p = &self.sites[site];
        let shape = match &self.carbon_series {
            None => table_at(
                &CARBON_SHAPE,
                (self.start_unix + t.0) as f64 + p.carbon_shift_secs,
            ),
            Some(series) => {
                let offset = t.0 as f64 + p.carbon_shift_secs;
                let idx = (offset / series.step_secs as f64).floor() as i64;
                series.values[idx.rem_euclid(series.values.len() as i64) as usize] as f64
            }
        };
        p.grid_kg_per_kwh * shape
    }

    /// Share of `site`'s consumption covered by green power at `t`, 0..1.
    pub fn green_share(&self, site: usize, t: SimTime) -> f64 {
        let p = &self.sites[site];
        if !p.green_shaped {
            return p.green_share;
        }
        let shape = table_at(
            &RENEWABLE_SHAPE,
            (self.start_unix + t.0) as f64 + p.green_shift_secs,
        );
        (p.green_share * shape).clamp(0.0, 1.0)
    }

    /// Electricity price at `site` at `t`, CNY per kWh.
    pub fn tariff_cny_per_kwh(&self, site: usize, t: SimTime) -> f64 {
        let p = &self.sites[site];
        let local = self.start_unix + t.0 + p.utc_offset_secs;
        let hour = local.rem_euclid(86400) / 3600;
        p.base_cny_per_kwh * p.multipliers[hour as usize]
    }

    /// Carbon of one kWh drawn at `site` at `t` after green power: grid intensity ×
    /// (1 − green share), kg CO2.
    pub fn effective_carbon(&self, site: usize, t: SimTime) -> f64 {
        self.carbon_kg_per_kwh(site, t) * (1.0 - self.green_share(site, t))
    }

    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.sites.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SeriesModel {
        let topology = crate::builtin("cn-west").unwrap();
        SeriesModel::new(
            &topology,
            days_from_civil(2024, 1, 1) * 86400 - 8 * 3600,
            None,
            0.0,
        )
    }

    #[test]
    fn built_in_shape_keeps_the_annual_factor_on_average() {
        let model = model();
        let hami = 2;
        let hours = 24 * 366;
        let mean: f64 = (0..hours)
            .map(|h| model.carbon_kg_per_kwh(hami, SimTime(h * 3600)))
            .sum::<f64>()
            / hours as f64;
        assert!((mean - 0.6231).abs() / 0.6231 < 0.03, "mean {mean}");
    }

    #[test]
    fn tariff_follows_local_time_of_use_bands() {
        let model = model();
        // SimTime 0 is 00:00 in Beijing time: valley. 09:00 is peak, 13:00 flat.
        assert_eq!(model.tariff_cny_per_kwh(0, SimTime(0)), 0.65 * 0.5);
        assert_eq!(model.tariff_cny_per_kwh(0, SimTime(9 * 3600)), 0.65 * 1.5);
        assert_eq!(model.tariff_cny_per_kwh(0, SimTime(13 * 3600)), 0.65);
        // Singapore is flat.
        assert_eq!(model.tariff_cny_per_kwh(7, SimTime(9 * 3600)), 1.5);
    }

    #[test]
    fn green_share_stays_within_bounds() {
        let model = model();
        for site in 0..model.n_sites() {
            for h in 0..(24 * 30) {
                let g = model.green_share(site, SimTime(h * 3600 * 12));
                assert!((0.0..=1.0).contains(&g));
            }
        }
    }

    #[test]
    fn csv_series_parses_and_reports_bad_rows() {
        let text = "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,300\n2020-01-01 01:00:00,200\n";
        let series = CarbonSeries::parse_csv(text, "x.csv").unwrap();
        assert_eq!(series.step_secs, 1800);
        assert_eq!(series.values, vec![0.5, 1.5, 1.0]);
        assert_eq!((series.rows, series.filled.len()), (3, 0));
        let bad = "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,abc\n";
        let err = CarbonSeries::parse_csv(bad, "x.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.csv: line 3: field \"Carbon Intensity\": \"abc\" is not a number >= 0"
        );
    }

    #[test]
    fn csv_series_reads_quotes_crlf_and_a_byte_order_mark() {
        // A quoted field with a comma broke the reader that split on ','.
        let text = "\u{feff}\"Time\",\"Carbon Intensity, g/kWh\",note\r\n\
                    \"2020-01-01 00:00:00\",\"100\",\"a, b\"\r\n\
                    2020-01-01 00:30:00,300,\"say \"\"hi\"\"\"\r\n\
                    \r\n\
                    2020-01-01 01:00:00,200,\r\n";
        let series = CarbonSeries::parse_csv(text, "q.csv").unwrap();
        assert_eq!(series.values, vec![0.5, 1.5, 1.0]);
        let bad =
            "\u{feff}ci,Time\r\n1,2020-01-01 00:00:00\r\n\"x, y\",\"2020-01-01 00:30:00\"\r\n";
        let err = CarbonSeries::parse_csv(bad, "q.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "q.csv: line 3: field \"ci\": \"x, y\" is not a number >= 0"
        );
    }

    #[test]
    fn csv_series_fills_short_gaps_and_names_the_line_of_long_ones() {
        let text = "Time,ci\n2020-01-01 00:00:00,1\n2020-01-01 00:30:00,1\n2020-01-01 02:00:00,4\n2020-01-01 02:30:00,1\n";
        let series = CarbonSeries::parse_csv(text, "g.csv").unwrap();
        assert_eq!(series.rows, 4);
        assert_eq!(series.values.len(), 6);
        assert_eq!(
            series.filled,
            vec![FilledGap {
                after_line: 3,
                first_unix: parse_timestamp("2020-01-01 01:00").unwrap(),
                last_unix: parse_timestamp("2020-01-01 01:30").unwrap(),
                rows: 2,
            }]
        );
        let long = "Time,ci\n2020-01-01 00:00:00,1\n2020-01-01 00:30:00,1\n2020-01-01 01:00:00,1\n2020-01-01 04:00:00,1\n";
        let err = CarbonSeries::parse_csv(long, "g.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "g.csv: line 5: field \"Time\": 5 rows (2h30m, 2020-01-01 01:30:00 to \
             2020-01-01 03:30:00) missing after line 4: more than the 2h filled by interpolation"
        );
    }

    /// Rows every 15 minutes from midnight, at these step indices, on lines 2, 3, …
    fn rows(steps: &[i64]) -> Vec<SeriesRow> {
        steps
            .iter()
            .enumerate()
            .map(|(i, &k)| SeriesRow {
                line: i + 2,
                unix: 1_577_836_800 + k * 900,
                value: k as f64,
            })
            .collect()
    }

    #[test]
    fn rows_finer_than_the_step_are_averaged_into_it() {
        // Half-hourly rows, then quarter-hourly ones (as the British series
        // switch on 2020-10-31): each half hour is the mean of its quarters.
        let quarters = [0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20, 21];
        let mut rows = rows(&quarters);
        for (i, row) in rows.iter_mut().enumerate() {
            row.value = i as f64;
        }
        let even = fill_gaps(&rows, MAX_FILLED_GAP).unwrap();
        assert_eq!(even.step_secs, 1800);
        assert_eq!(
            even.values,
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5, 10.5, 12.5]
        );
        assert_eq!(
            even.averaged,
            [AveragedRun {
                first_line: 10,
                last_line: 15,
                rows: 6,
                steps: 3
            }]
        );
        assert!(even.filled.is_empty());
    }

    #[test]
    fn a_gap_of_one_step_is_filled_halfway() {
        let even = fill_gaps(&rows(&[0, 1, 2, 4, 5]), MAX_FILLED_GAP).unwrap();
        assert_eq!(even.step_secs, 900);
        assert_eq!(even.values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            even.filled,
            vec![FilledGap {
                after_line: 4,
                first_unix: 1_577_836_800 + 3 * 900,
                last_unix: 1_577_836_800 + 3 * 900,
                rows: 1,
            }]
        );
    }

    #[test]
    fn a_gap_of_exactly_two_hours_is_filled() {
        // Eight rows of 15 minutes missing between steps 1 and 10.
        let even = fill_gaps(&rows(&[0, 1, 10, 11]), MAX_FILLED_GAP).unwrap();
        assert_eq!(even.values, (0..12).map(|k| k as f64).collect::<Vec<_>>());
        assert_eq!(even.filled.len(), 1);
        assert_eq!(even.filled[0].rows, 8);
        assert_eq!(even.filled[0].after_line, 3);
    }

    #[test]
    fn a_gap_just_over_two_hours_is_refused_naming_the_line() {
        let err = fill_gaps(&rows(&[0, 1, 11, 12]), MAX_FILLED_GAP).unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert_eq!(
            err.to_string(),
            "9 rows (2h15m, 2020-01-01 00:30:00 to 2020-01-01 02:30:00) missing after line 3: \
             more than the 2h filled by interpolation"
        );
    }

    #[test]
    fn repeated_backwards_and_off_grid_times_are_errors_naming_the_line() {
        let err = fill_gaps(&rows(&[0, 1, 1, 2]), MAX_FILLED_GAP).unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert_eq!(
            err.to_string(),
            "2020-01-01 00:15:00 repeats the time of line 3"
        );
        let err = fill_gaps(&rows(&[0, 2, 1, 3]), MAX_FILLED_GAP).unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert_eq!(
            err.to_string(),
            "2020-01-01 00:15:00 goes back in time from 2020-01-01 00:30:00 on line 3"
        );
        let mut off = rows(&[0, 1, 2, 3]);
        off[3].unix -= 300;
        let err = fill_gaps(&off, MAX_FILLED_GAP).unwrap_err();
        assert_eq!(err.line(), Some(5));
        assert!(
            err.to_string()
                .contains("is 10m after line 4, not a whole number of the series' step (15m)"),
            "{err}"
        );
        assert_eq!(
            fill_gaps(&rows(&[0]), MAX_FILLED_GAP),
            Err(GapError::TooShort)
        );
    }

    #[test]
    fn the_step_is_the_most_common_interval_even_after_an_early_gap() {
        let even = fill_gaps(&rows(&[0, 2, 3, 4, 5]), MAX_FILLED_GAP).unwrap();
        assert_eq!(even.step_secs, 900);
        assert_eq!(even.values.len(), 6);
    }

    #[test]
    fn timestamps_format_as_they_parse() {
        for text in [
            "2020-12-19 23:15:00",
            "1969-12-31 23:59:59",
            "2024-02-29 00:00:00",
        ] {
            assert_eq!(format_timestamp(parse_timestamp(text).unwrap()), text);
        }
    }
}
