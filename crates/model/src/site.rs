//! Sites (data centres), demand regions and the links between them, as written in
//! a topology file. Derived quantities (latency from distance, hourly series) are
//! computed by the `suanwang-topology` crate, not stored here.

use crate::resource::ClassMap;
use serde::{Deserialize, Serialize};

/// Identifier of a site, e.g. `hami`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SiteId(pub String);

/// Identifier of a place data can live or demand can come from: a site or a demand
/// region. Sites and regions share one namespace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocationId(pub String);

/// A legal jurisdiction for data-residency rules, e.g. `cn-mainland`, `sg`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Jurisdiction(pub String);

impl std::fmt::Display for SiteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Display for LocationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The eight national computing hubs of 东数西算, plus the places outside them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hub {
    /// 京津冀 Beijing–Tianjin–Hebei.
    JingJinJi,
    /// 长三角 Yangtze River Delta.
    YangtzeRiverDelta,
    /// 粤港澳大湾区 Guangdong–Hong Kong–Macao Greater Bay Area.
    GreaterBayArea,
    /// 成渝 Chengdu–Chongqing.
    ChengduChongqing,
    /// 内蒙古 Inner Mongolia.
    InnerMongolia,
    /// 贵州 Guizhou.
    Guizhou,
    /// 甘肃 Gansu.
    Gansu,
    /// 宁夏 Ningxia.
    Ningxia,
    /// A mainland site outside the eight hubs (e.g. Hami, Xinjiang).
    Other,
    /// A site outside mainland China (e.g. Singapore).
    Overseas,
}

impl Hub {
    /// Chinese name of the hub.
    pub fn name_zh(self) -> &'static str {
        match self {
            Hub::JingJinJi => "京津冀",
            Hub::YangtzeRiverDelta => "长三角",
            Hub::GreaterBayArea => "粤港澳大湾区",
            Hub::ChengduChongqing => "成渝",
            Hub::InnerMongolia => "内蒙古",
            Hub::Guizhou => "贵州",
            Hub::Gansu => "甘肃",
            Hub::Ningxia => "宁夏",
            Hub::Other => "其他",
            Hub::Overseas => "境外",
        }
    }
}

/// A point on the Earth, degrees.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
}

/// One time-of-use band of an electricity tariff (峰 peak, 谷 valley, …). Hours not
/// covered by any band are billed at the flat (平) base price.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouBand {
    /// Band name, e.g. `peak`.
    pub name: String,
    /// First local hour of the band, 0..=23.
    pub from: u32,
    /// Local hour the band ends (exclusive), 1..=24; `from > to` wraps past midnight.
    pub to: u32,
    /// Price as a multiple of the flat base price.
    pub multiplier: f64,
}

impl TouBand {
    /// Whether local hour `hour` (0..24) falls in this band.
    pub fn contains(&self, hour: u32) -> bool {
        if self.from < self.to {
            hour >= self.from && hour < self.to
        } else {
            hour >= self.from || hour < self.to
        }
    }
}

/// An electricity tariff with time-of-use bands, in the site's local time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Flat (平) price, CNY per kWh.
    pub base_cny_per_kwh: f64,
    /// Peak and valley bands; the rest of the day is flat.
    #[serde(default)]
    pub bands: Vec<TouBand>,
}

impl Tariff {
    /// Multiplier in force at local hour `hour` (0..24).
    pub fn multiplier_at(&self, hour: u32) -> f64 {
        self.bands
            .iter()
            .find(|band| band.contains(hour))
            .map_or(1.0, |band| band.multiplier)
    }
}

/// How a site's grid carbon intensity is given: an annual average factor, shaped
/// hour by hour by a normalised profile (see the topology crate).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarbonSpec {
    /// Annual average grid emission factor, kg CO2 per kWh.
    pub grid_kg_per_kwh: f64,
    /// Where the factor comes from.
    pub source: String,
}

/// Share of a site's consumption covered by green power (PPA, 绿电直供).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenSpec {
    /// Annual average share, 0..=1.
    pub share: f64,
    /// Whether the share follows the hourly renewable profile (wind and solar
    /// output) or stays constant (a flat contract).
    #[serde(default)]
    pub shaped: bool,
}

/// A data centre (or a pool of one) that runs jobs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Unique id, shared namespace with regions.
    pub id: SiteId,
    /// Display name.
    pub name: String,
    /// Chinese display name.
    #[serde(default)]
    pub name_zh: Option<String>,
    /// Province or country.
    pub province: String,
    /// National hub it belongs to.
    pub hub: Hub,
    /// Cluster (集群) within the hub, e.g. 天府, 中卫.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Where it is.
    pub location: GeoPoint,
    /// Legal jurisdiction for residency rules.
    pub jurisdiction: Jurisdiction,
    /// Offset of local clock time from UTC, hours (tariff bands are in local time).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_hours: f64,
    /// Power usage effectiveness (facility power / IT power), ≥ 1.
    pub pue: f64,
    /// Optional cap on facility power for the network's jobs, kW.
    #[serde(default)]
    pub power_cap_kw: Option<f64>,
    /// Units of each resource class offered to the network. With [`Site::nodes`]
    /// it may be left out (the nodes define it); when both are given they must
    /// agree class by class.
    #[serde(default)]
    pub capacity: ClassMap<u32>,
    /// The site's nodes, all of one shape (`[site.nodes]`), for jobs that span
    /// several whole nodes (gangs). A site without it runs no gang.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeShape>,
    /// Price per unit-hour of each offered class, CNY (excluding electricity).
    pub price_cny_per_unit_hour: ClassMap<f64>,
    /// IT power per busy unit, kW; classes left out take the topology's defaults.
    #[serde(default)]
    pub power_kw_per_unit: ClassMap<f64>,
    /// Electricity tariff.
    pub tariff: Tariff,
    /// Grid carbon intensity.
    pub carbon: CarbonSpec,
    /// Green-power share.
    pub green: GreenSpec,
}

/// The nodes of a site: how many, and the units of each class one node holds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeShape {
    /// Number of nodes.
    pub count: u32,
    /// Units of each class on one node, e.g. `{ cpu = 64, mem_gib = 512, a800 = 8 }`.
    pub per_node: ClassMap<u32>,
}

impl NodeShape {
    /// The units of `class` on all the nodes together.
    pub fn total(&self, class: crate::resource::ResourceClass) -> u64 {
        u64::from(self.count) * u64::from(self.per_node.get(class))
    }
}

fn default_utc_offset() -> f64 {
    8.0
}

/// A demand region: where users and data are, with no compute of its own.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Unique id, shared namespace with sites.
    pub id: LocationId,
    /// Display name.
    pub name: String,
    /// Chinese display name.
    #[serde(default)]
    pub name_zh: Option<String>,
    /// Where it is.
    pub location: GeoPoint,
    /// Legal jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// The site that serves this region "locally" (for the `local-fifo` baseline);
    /// by default the nearest site in the same jurisdiction.
    #[serde(default)]
    pub home_site: Option<SiteId>,
}

/// A network link between two locations. Pairs without a link get the topology's
/// [`LinkDefaults`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// One end.
    pub a: LocationId,
    /// Other end.
    pub b: LocationId,
    /// Display name, e.g. the backbone's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Round-trip latency, ms; derived from distance when left out.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Bandwidth available to the network's transfers, Gbit/s.
    pub bandwidth_gbps: f64,
    /// Price of moving data, CNY per GB.
    pub price_cny_per_gb: f64,
}

/// Parameters for pairs of locations with no explicit [`Link`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDefaults {
    /// Bandwidth, Gbit/s.
    pub bandwidth_gbps: f64,
    /// Price within one jurisdiction, CNY per GB.
    pub price_cny_per_gb: f64,
    /// Price across jurisdictions, CNY per GB.
    pub international_price_cny_per_gb: f64,
    /// Fibre propagation, km per ms one way (≈ 200 in glass).
    #[serde(default = "default_fibre_km_per_ms")]
    pub fibre_km_per_ms: f64,
    /// Ratio of fibre route length to great-circle distance (≈ 1.5).
    #[serde(default = "default_route_factor")]
    pub route_factor: f64,
    /// Latency floor for two locations in one metro area, ms round trip.
    #[serde(default = "default_min_latency")]
    pub min_latency_ms: f64,
}

fn default_fibre_km_per_ms() -> f64 {
    200.0
}
fn default_route_factor() -> f64 {
    1.5
}
fn default_min_latency() -> f64 {
    1.0
}
