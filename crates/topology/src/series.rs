//! Hourly series derived from a topology: electricity price (time-of-use), grid
//! carbon intensity and green-power share, per site, at any simulated instant.
//!
//! Carbon intensity = the site's official annual factor × a normalised shape (mean
//! 1). The shape is either the built-in month × hour profile (Germany's real 2020
//! series; see [`crate::profiles`]) read in the site's local solar time, or a full
//! series from a CSV file given by the user. Either way it is a shape *borrowed from
//! another grid*, since no public hourly series exists for Chinese provinces, and it
//! must be labelled so where shown.

use crate::Topology;
use crate::profiles::{CARBON_SHAPE, CARBON_SHAPE_LON, RENEWABLE_SHAPE, RENEWABLE_SHAPE_LON};
use suanwang_model::SimTime;
use suanwang_model::time::{civil_from_days, days_from_civil};

/// A real carbon-intensity series loaded from CSV, normalised to mean 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CarbonSeries {
    /// Normalised values, one per step.
    pub values: Vec<f32>,
    /// Step between values, seconds.
    pub step_secs: i64,
    /// Mean of the raw values (gCO2/kWh or whatever unit the file used).
    pub raw_mean: f64,
    /// Unix time of the first row.
    pub start_unix: i64,
    /// Where it came from, for labels.
    pub origin: String,
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
    /// A row is malformed.
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

impl CarbonSeries {
    /// Parses a CSV with a time column and an intensity column. The time column is
    /// the first whose header names time or date (else the first column); the
    /// intensity column is the first whose header mentions carbon, intensity or
    /// co2 (else the first other column). Rows must be evenly spaced.
    pub fn parse_csv(text: &str, origin: &str) -> Result<CarbonSeries, SeriesError> {
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().ok_or_else(|| SeriesError::TooShort {
            origin: origin.into(),
        })?;
        let names: Vec<String> = header.split(',').map(|h| h.trim().to_string()).collect();
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
        let mut values = Vec::new();
        let mut times = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let row_err = |field: usize, message: String| SeriesError::Row {
                origin: origin.into(),
                line: i + 1,
                field: names[field].clone(),
                message,
            };
            let time_text = fields
                .get(time_col)
                .ok_or_else(|| row_err(time_col, "missing".into()))?;
            let unix = parse_timestamp(time_text).ok_or_else(|| {
                row_err(
                    time_col,
                    format!("{time_text:?} is not a timestamp like 2020-01-31 13:45:00"),
                )
            })?;
            let value_text = fields
                .get(value_col)
                .ok_or_else(|| row_err(value_col, "missing".into()))?;
            let value: f64 = value_text
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    row_err(value_col, format!("{value_text:?} is not a number >= 0"))
                })?;
            if let (Some(&prev), Some(&first)) = (times.last(), times.first()) {
                let step = if times.len() >= 2 {
                    times[1] - first
                } else {
                    unix - prev
                };
                if unix - prev != step || step <= 0 {
                    return Err(row_err(
                        time_col,
                        format!("not one step ({step} s) after the previous row"),
                    ));
                }
            }
            times.push(unix);
            values.push(value);
        }
        if values.len() < 2 {
            return Err(SeriesError::TooShort {
                origin: origin.into(),
            });
        }
        let raw_mean = values.iter().sum::<f64>() / values.len() as f64;
        let norm = if raw_mean > 0.0 { raw_mean } else { 1.0 };
        Ok(CarbonSeries {
            values: values.iter().map(|v| (v / norm) as f32).collect(),
            step_secs: times[1] - times[0],
            raw_mean,
            start_unix: times[0],
            origin: origin.into(),
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
        let bad = "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,abc\n";
        let err = CarbonSeries::parse_csv(bad, "x.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.csv: line 3: field \"Carbon Intensity\": \"abc\" is not a number >= 0"
        );
        let gap = "Time,ci\n2020-01-01 00:00:00,1\n2020-01-01 00:30:00,1\n2020-01-01 02:00:00,1\n";
        let err = CarbonSeries::parse_csv(gap, "g.csv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g.csv: line 4: field \"Time\""), "{err}");
    }
}
