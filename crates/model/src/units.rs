//! Units as newtypes, so that a price is never added to a mass by accident.
//!
//! The wrapped value is `f64` in the unit the name says; arithmetic is provided only
//! where it has a meaning (sums of the same unit, scaling by a plain number).

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Mul, Sub};

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $suffix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            /// Zero of this unit.
            pub const ZERO: $name = $name(0.0);
            /// The plain number, in this unit.
            pub fn get(self) -> f64 {
                self.0
            }
        }
        impl Add for $name {
            type Output = $name;
            fn add(self, rhs: $name) -> $name {
                $name(self.0 + rhs.0)
            }
        }
        impl Sub for $name {
            type Output = $name;
            fn sub(self, rhs: $name) -> $name {
                $name(self.0 - rhs.0)
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, rhs: $name) {
                self.0 += rhs.0;
            }
        }
        impl Mul<f64> for $name {
            type Output = $name;
            fn mul(self, rhs: f64) -> $name {
                $name(self.0 * rhs)
            }
        }
        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = $name>>(iter: I) -> $name {
                $name(iter.map(|v| v.0).sum())
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:.3} {}", self.0, $suffix)
            }
        }
    };
}

unit!(
    /// Chinese yuan (CNY).
    Cny,
    "CNY"
);
unit!(
    /// Kilograms of CO2.
    KgCo2,
    "kgCO2"
);
unit!(
    /// Kilowatt-hours of electricity.
    Kwh,
    "kWh"
);
unit!(
    /// Gibibytes of data (2^30 bytes).
    GiB,
    "GiB"
);
