//! Simulated time. The core never reads a wall clock: every instant is a
//! [`SimTime`], whole seconds since the epoch of a run (a simulation's start, or
//! the control plane's chosen origin). Wall-clock time exists only at the edges.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};

/// An instant: seconds since the run's epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimTime(pub i64);

/// A span of time in seconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimDuration(pub i64);

impl SimDuration {
    /// Zero seconds.
    pub const ZERO: SimDuration = SimDuration(0);
    /// `n` seconds.
    pub const fn secs(n: i64) -> SimDuration {
        SimDuration(n)
    }
    /// `n` minutes.
    pub const fn minutes(n: i64) -> SimDuration {
        SimDuration(n * 60)
    }
    /// `n` hours.
    pub const fn hours(n: i64) -> SimDuration {
        SimDuration(n * 3600)
    }
    /// The span in hours, fractional.
    pub fn as_hours(self) -> f64 {
        self.0 as f64 / 3600.0
    }
    /// Parses `90s`, `15m`, `2h`, `1.5h`, `7d` or a plain number of seconds.
    pub fn parse(text: &str) -> Result<SimDuration, String> {
        let text = text.trim();
        let (number, scale) = match text.char_indices().last() {
            Some((i, 's')) => (&text[..i], 1.0),
            Some((i, 'm')) => (&text[..i], 60.0),
            Some((i, 'h')) => (&text[..i], 3600.0),
            Some((i, 'd')) => (&text[..i], 86400.0),
            _ => (text, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?} (expected e.g. 90s, 15m, 2h, 7d)"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "invalid duration {text:?}: must be a non-negative number"
            ));
        }
        Ok(SimDuration((value * scale).round() as i64))
    }
}

impl SimTime {
    /// The epoch itself.
    pub const ZERO: SimTime = SimTime(0);
    /// Hours since the epoch, fractional.
    pub fn as_hours(self) -> f64 {
        self.0 as f64 / 3600.0
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0 + rhs.0)
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, rhs: SimTime) -> SimDuration {
        SimDuration(self.0 - rhs.0)
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0 + rhs.0)
    }
}

impl std::fmt::Display for SimDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        if s % 86400 == 0 && s != 0 {
            write!(f, "{}d", s / 86400)
        } else if s % 3600 == 0 && s != 0 {
            write!(f, "{}h", s / 3600)
        } else if s % 60 == 0 && s != 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{}s", s)
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The (year, month 1..=12, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(SimDuration::parse("90s"), Ok(SimDuration(90)));
        assert_eq!(SimDuration::parse("15m"), Ok(SimDuration(900)));
        assert_eq!(SimDuration::parse("1.5h"), Ok(SimDuration(5400)));
        assert_eq!(SimDuration::parse("7d"), Ok(SimDuration(604800)));
        assert_eq!(SimDuration::parse("42"), Ok(SimDuration(42)));
        assert!(SimDuration::parse("-1h").is_err());
        assert!(SimDuration::parse("soon").is_err());
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        for days in [-1000, 0, 19723, 20000, 30000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
