//! Simulated time. The core never reads a wall clock: every instant is a
//! [`SimTime`], whole seconds since the epoch of a run (a simulation's start, or
//! the control plane's chosen origin). Wall-clock time exists only at the edges.
//!
//! It also owns the project's one duration syntax ([`parse_duration`]): every
//! flag, job field and option that takes a duration reads it here.

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
    /// Parses the project's duration syntax (see [`parse_duration`]), in whole
    /// seconds: `90s`, `15m`, `2h`, `1d`, `1h30m`. The same as
    /// `text.parse::<SimDuration>()`, with the error as its message, for callers
    /// that pass it on as text.
    pub fn parse(text: &str) -> Result<SimDuration, String> {
        text.parse().map_err(|e: DurationError| e.to_string())
    }
}

impl std::str::FromStr for SimDuration {
    type Err = DurationError;
    /// Whole seconds: `ms` is refused. See [`parse_duration`].
    fn from_str(text: &str) -> Result<SimDuration, DurationError> {
        let millis = parse_duration(text, Precision::Seconds)?;
        i64::try_from(millis / 1000)
            .map(SimDuration)
            .map_err(|_| DurationError::new(text, Precision::Seconds, DurationProblem::TooLarge))
    }
}

/// The smallest unit a duration may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Whole seconds (simulated time, job run times and deadlines).
    Seconds,
    /// Milliseconds as well (wall-clock intervals of the control plane and tools).
    Millis,
}

impl Precision {
    fn accepted(self) -> &'static str {
        match self {
            Precision::Seconds => {
                "whole numbers with units d, h, m, s, largest first, e.g. 90s, 15m, 2h, 1d, 1h30m"
            }
            Precision::Millis => {
                "whole numbers with units d, h, m, s, ms, largest first, e.g. 500ms, 90s, 15m, 2h, 1h30m"
            }
        }
    }
}

/// What is wrong with a duration's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationProblem {
    /// Nothing was written.
    #[error("it is empty")]
    Empty,
    /// A number without a unit (`5`, or the `30` of `1h30`).
    #[error("{0} has no unit")]
    MissingUnit(String),
    /// A minus sign: a duration is never negative.
    #[error("it is negative")]
    Negative,
    /// Something other than a digit where a number must start (`h`, `+5s`).
    #[error("expected a number at {0:?}")]
    MissingNumber(String),
    /// A unit this syntax does not know.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// `ms` where only whole seconds are accepted.
    #[error("milliseconds are not accepted here")]
    SubSecond,
    /// A decimal point (`1.5h`: write `1h30m`).
    #[error("fractions are not accepted (write 1h30m, not 1.5h)")]
    Fraction,
    /// A unit repeated or after a smaller one (`1h1h`, `30m1h`).
    #[error("units must go from largest to smallest, each at most once")]
    Order,
    /// More than the type holds.
    #[error("it is too large")]
    TooLarge,
}

/// Why a duration's text was refused; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {problem} (accepted: {})", precision.accepted())]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub problem: DurationProblem,
    /// The smallest unit that was accepted.
    pub precision: Precision,
}

impl DurationError {
    fn new(text: &str, precision: Precision, problem: DurationProblem) -> DurationError {
        DurationError {
            text: text.to_string(),
            problem,
            precision,
        }
    }
}

/// Units of the duration syntax, largest first, in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The project's one duration syntax, in milliseconds: one or more whole numbers
/// each followed by a unit (`d`, `h`, `m`, `s`, and `ms` at
/// [`Precision::Millis`]), units from largest to smallest, each at most once, no
/// spaces inside: `90s`, `15m`, `2h`, `1d`, `1h30m`, `500ms`. Surrounding spaces
/// are ignored. A bare number, a fraction, a sign or an unknown unit is refused,
/// with a message that says what is accepted.
pub fn parse_duration(text: &str, precision: Precision) -> Result<u64, DurationError> {
    let fail = |problem| DurationError::new(text, precision, problem);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail(DurationProblem::Empty));
    }
    let mut rest = trimmed;
    let mut total: u64 = 0;
    // Index in UNITS of the last unit read; the next must come later.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if rest.starts_with('-') {
            return Err(fail(DurationProblem::Negative));
        }
        if digits == 0 {
            return Err(fail(DurationProblem::MissingNumber(rest.to_string())));
        }
        let (number, after) = rest.split_at(digits);
        if after.starts_with(['.', ',']) {
            return Err(fail(DurationProblem::Fraction));
        }
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            return Err(fail(DurationProblem::MissingUnit(number.to_string())));
        }
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| fail(DurationProblem::UnknownUnit(unit.to_string())))?;
        if unit == "ms" && precision == Precision::Seconds {
            return Err(fail(DurationProblem::SubSecond));
        }
        if last.is_some_and(|l| index <= l) {
            return Err(fail(DurationProblem::Order));
        }
        last = Some(index);
        let value: u64 = number
            .parse()
            .map_err(|_| fail(DurationProblem::TooLarge))?;
        total = value
            .checked_mul(UNITS[index].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| fail(DurationProblem::TooLarge))?;
        rest = after;
    }
    Ok(total)
}

/// Parses a wall-clock duration (milliseconds accepted): `500ms`, `5s`, `1m30s`.
pub fn parse_wall_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    parse_duration(text, Precision::Millis).map(std::time::Duration::from_millis)
}

/// Writes `secs` seconds and `millis` milliseconds in the duration syntax,
/// largest units first, zero parts left out: `1h30m`, `2s500ms`, `0s`.
fn write_duration(f: &mut impl std::fmt::Write, secs: u64, millis: u64) -> std::fmt::Result {
    if secs == 0 && millis == 0 {
        return f.write_str("0s");
    }
    let mut rest = secs;
    for (name, size) in &UNITS[..4] {
        let size = size / 1000;
        if rest >= size {
            write!(f, "{}{name}", rest / size)?;
            rest %= size;
        }
    }
    if millis > 0 {
        write!(f, "{millis}ms")?;
    }
    Ok(())
}

/// A wall-clock duration in the duration syntax (whole milliseconds; anything
/// finer is dropped): `500ms`, `1m30s`. [`parse_wall_duration`] reads it back.
pub fn format_wall_duration(duration: std::time::Duration) -> String {
    let mut out = String::new();
    write_duration(
        &mut out,
        duration.as_secs(),
        u64::from(duration.subsec_millis()),
    )
    .expect("writing to a String cannot fail");
    out
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
    /// The duration syntax, largest units first: `1h30m`, `90d`, `45s`, `0s`
    /// (negative spans with a leading `-`, which the parser refuses).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 < 0 {
            f.write_str("-")?;
        }
        write_duration(f, self.0.unsigned_abs(), 0)
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
        let secs = |t: &str| t.parse::<SimDuration>();
        assert_eq!(secs("90s"), Ok(SimDuration(90)));
        assert_eq!(secs("15m"), Ok(SimDuration(900)));
        assert_eq!(secs("2h"), Ok(SimDuration(7200)));
        assert_eq!(secs("1d"), Ok(SimDuration(86400)));
        assert_eq!(secs("7d"), Ok(SimDuration(604800)));
        assert_eq!(secs("1h30m"), Ok(SimDuration(5400)));
        assert_eq!(secs("1d2h3m4s"), Ok(SimDuration(93784)));
        assert_eq!(secs(" 0s "), Ok(SimDuration(0)));
        assert_eq!(
            parse_wall_duration("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_wall_duration("1s250ms"),
            Ok(std::time::Duration::from_millis(1250))
        );
        assert_eq!(SimDuration::parse("2h"), Ok(SimDuration(7200)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong_and_what_is_accepted() {
        let problem = |t: &str| t.parse::<SimDuration>().unwrap_err().problem;
        assert_eq!(problem("1h1h"), DurationProblem::Order);
        assert_eq!(problem("30m1h"), DurationProblem::Order);
        assert_eq!(problem("5"), DurationProblem::MissingUnit("5".into()));
        assert_eq!(problem("1h30"), DurationProblem::MissingUnit("30".into()));
        assert_eq!(problem("-3m"), DurationProblem::Negative);
        assert_eq!(problem("1h-3m"), DurationProblem::Negative);
        assert_eq!(problem("+3m"), DurationProblem::MissingNumber("+3m".into()));
        assert_eq!(problem("2x"), DurationProblem::UnknownUnit("x".into()));
        assert_eq!(problem("2H"), DurationProblem::UnknownUnit("H".into()));
        assert_eq!(problem("1.5h"), DurationProblem::Fraction);
        assert_eq!(
            problem("1h 30m"),
            DurationProblem::MissingNumber(" 30m".into())
        );
        assert_eq!(problem(""), DurationProblem::Empty);
        assert_eq!(
            problem("soon"),
            DurationProblem::MissingNumber("soon".into())
        );
        assert_eq!(problem("500ms"), DurationProblem::SubSecond);
        assert_eq!(problem("99999999999999999999d"), DurationProblem::TooLarge);
        assert_eq!(problem("999999999999999d"), DurationProblem::TooLarge);
        let message = "1h1h".parse::<SimDuration>().unwrap_err().to_string();
        assert_eq!(
            message,
            "\"1h1h\" is not a duration: units must go from largest to smallest, each at most \
             once (accepted: whole numbers with units d, h, m, s, largest first, e.g. 90s, 15m, \
             2h, 1d, 1h30m)"
        );
        let wall = parse_wall_duration("5").unwrap_err().to_string();
        assert!(wall.contains("5 has no unit"), "{wall}");
        assert!(wall.contains("500ms"), "{wall}");
    }

    #[test]
    fn durations_display_in_the_syntax_they_parse_from() {
        assert_eq!(SimDuration(5400).to_string(), "1h30m");
        assert_eq!(SimDuration(86400 * 90).to_string(), "90d");
        assert_eq!(SimDuration(0).to_string(), "0s");
        assert_eq!(SimDuration(-60).to_string(), "-1m");
        assert_eq!(
            format_wall_duration(std::time::Duration::from_millis(1500)),
            "1s500ms"
        );
        assert_eq!(format_wall_duration(std::time::Duration::ZERO), "0s");
    }

    proptest::proptest! {
        #[test]
        fn sim_durations_round_trip(secs in 0i64..1_000_000_000_000) {
            let d = SimDuration(secs);
            proptest::prop_assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
        }

        #[test]
        fn wall_durations_round_trip(millis in 0u64..1_000_000_000_000_000) {
            let d = std::time::Duration::from_millis(millis);
            proptest::prop_assert_eq!(parse_wall_duration(&format_wall_duration(d)), Ok(d));
        }

        #[test]
        fn any_text_parses_or_says_what_is_accepted(text in "[0-9a-z.+ -]{0,12}") {
            if let Err(e) = parse_duration(&text, Precision::Millis) {
                proptest::prop_assert!(e.to_string().contains("accepted: "));
            }
        }
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
