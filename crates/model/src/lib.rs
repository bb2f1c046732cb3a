//! Domain types of suanwang: sites, links, jobs, resource classes and units.
//!
//! This crate owns the vocabulary every other crate speaks. It does no IO and reads
//! no clock; its one piece of global state is the accelerator catalogue
//! ([`catalogue`]), an append-only registry of resource classes; a type here that derives `Serialize` is part
//! of a boundary (topology files, JSON reports, the HTTP API of `suanwang-api`), so renaming a
//! field is a breaking change. With the `openapi` feature, the types the HTTP API
//! carries also derive their OpenAPI schema (`utoipa::ToSchema`).

pub mod catalogue;
pub mod control;
pub mod explain;
pub mod job;
pub mod objective;
pub mod resource;
pub mod site;
pub mod time;
pub mod units;

pub use catalogue::{AcceleratorSpec, CatalogueError, ClassInfo, ClassKind};
pub use control::{HeldVerdict, JobState, Role};
pub use explain::{CandidateView, Explanation};
pub use job::{
    DataRef, Demand, Job, JobId, LatencyTarget, PriorityClass, SpillChoice, tenant_spill,
};
pub use objective::Weights;
pub use resource::{ClassMap, N_CLASSES, ResourceClass};
pub use site::{
    GeoPoint, Hub, Jurisdiction, Link, LinkDefaults, LocationId, NodeShape, Region, Site, SiteId,
    Tariff, TouBand,
};
pub use time::{
    DurationError, DurationProblem, Precision, SimDuration, SimTime, format_wall_duration,
    parse_duration, parse_wall_duration,
};
pub use units::{Cny, GiB, KgCo2, Kwh};
