//! Domain types of suanwang: sites, links, jobs, resource classes and units.
//!
//! This crate owns the vocabulary every other crate speaks. It does no IO, reads
//! no clock and holds no global state; a type here that derives `Serialize` is part
//! of a boundary (topology files, JSON reports, the future HTTP API), so renaming a
//! field is a breaking change.

pub mod job;
pub mod resource;
pub mod site;
pub mod time;
pub mod units;

pub use job::{DataRef, Demand, Job, JobId, LatencyTarget};
pub use resource::{ClassMap, N_CLASSES, ResourceClass};
pub use site::{
    GeoPoint, Hub, Jurisdiction, Link, LinkDefaults, LocationId, Region, Site, SiteId, Tariff,
    TouBand,
};
pub use time::{
    DurationError, DurationProblem, Precision, SimDuration, SimTime, format_wall_duration,
    parse_duration, parse_wall_duration,
};
pub use units::{Cny, GiB, KgCo2, Kwh};
