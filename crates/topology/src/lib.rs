//! Topology files: the TOML format, its validation, the built-in `cn-west`, and the
//! quantities derived from a topology (latency from distance, hourly price, carbon
//! and green-share series).
//!
//! Parsing takes text, never a path: the caller reads the file and passes its name
//! for error messages. Nothing here reads a clock or the disk.

pub mod csv_text;
pub mod network;
#[rustfmt::skip]
#[allow(clippy::approx_constant)] // measured data, not an approximation of pi
pub mod profiles;
pub mod series;

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use suanwang_model::{
    AcceleratorSpec, ClassMap, Link, LinkDefaults, LocationId, Region, ResourceClass, Site, SiteId,
    catalogue,
};

pub use network::{LinkMetrics, Network};
pub use series::{CarbonSeries, SeriesModel};

/// The names of the built-in topologies.
pub const BUILTIN: &[&str] = &["cn-west"];

/// A whole topology as written in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Short name, e.g. `cn-west`.
    pub name: String,
    /// One line saying what it models.
    #[serde(default)]
    pub description: String,
    /// Accelerator models missing from the built-in catalogue (`[[accelerator]]`),
    /// registered before the sites that use them are read.
    #[serde(rename = "accelerator", default, skip_serializing_if = "Vec::is_empty")]
    pub accelerators: Vec<AcceleratorSpec>,
    /// IT power per busy unit for classes a site does not set, kW.
    #[serde(default)]
    pub power_kw_per_unit: ClassMap<f64>,
    /// Parameters for location pairs without an explicit link.
    pub link_defaults: LinkDefaults,
    /// Data centres.
    #[serde(rename = "site", default)]
    pub sites: Vec<Site>,
    /// Demand regions.
    #[serde(rename = "region", default)]
    pub regions: Vec<Region>,
    /// Explicit links.
    #[serde(rename = "link", default)]
    pub links: Vec<Link>,
}

/// Why a topology was refused. Every variant names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The text is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{origin}: {message}")]
    Syntax {
        /// File name or built-in name.
        origin: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// The TOML is well formed but a value breaks a rule.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// File name or built-in name.
        origin: String,
        /// Path of the offending key, e.g. `site[2] "hami".capacity.a800`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No built-in topology has this name.
    #[error("unknown topology {name:?} (built-in: {})", BUILTIN.join(", "))]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
    },
}

/// The built-in topology named `name`.
pub fn builtin(name: &str) -> Result<Topology, TopologyError> {
    let text = match name {
        "cn-west" => include_str!("../topologies/cn-west.toml"),
        _ => {
            return Err(TopologyError::UnknownBuiltin {
                name: name.to_string(),
            });
        }
    };
    parse(text, name)
}

/// The `[[accelerator]]` tables of a topology or site file, each with the line it
/// starts on.
pub fn declared_accelerators(
    text: &str,
    origin: &str,
) -> Result<Vec<(usize, AcceleratorSpec)>, TopologyError> {
    // Only the accelerator tables are read here; the rest of the file is
    // checked by its own parser.
    #[derive(Deserialize)]
    struct Declarations {
        #[serde(rename = "accelerator", default)]
        accelerators: Vec<toml::Spanned<AcceleratorSpec>>,
    }
    let declared: Declarations = toml::from_str(text).map_err(|err| TopologyError::Syntax {
        origin: origin.to_string(),
        message: err.to_string().trim_end().to_string(),
    })?;
    Ok(declared
        .accelerators
        .into_iter()
        .map(|spanned| {
            let line = text[..spanned.span().start.min(text.len())]
                .matches('\n')
                .count()
                + 1;
            (line, spanned.into_inner())
        })
        .collect())
}

/// Registers the `[[accelerator]]` models of a topology or site file in this
/// process's catalogue (see [`suanwang_model::catalogue::register`]) and returns
/// them; an error names the file, the table, its line and the field.
pub fn register_accelerators(
    text: &str,
    origin: &str,
) -> Result<Vec<AcceleratorSpec>, TopologyError> {
    let declared = declared_accelerators(text, origin)?;
    for (i, (line, spec)) in declared.iter().enumerate() {
        catalogue::register(spec).map_err(|err| TopologyError::Invalid {
            origin: origin.to_string(),
            key: format!("accelerator[{i}] {:?} (line {line})", spec.name),
            message: err.to_string(),
        })?;
    }
    Ok(declared.into_iter().map(|(_, spec)| spec).collect())
}

/// Parses and validates a topology from TOML text; `origin` names the file in errors.
/// Its `[[accelerator]]` models are registered first, so that its sites may use
/// them.
pub fn parse(text: &str, origin: &str) -> Result<Topology, TopologyError> {
    register_accelerators(text, origin)?;
    let mut topology: Topology = toml::from_str(text).map_err(|err| TopologyError::Syntax {
        origin: origin.to_string(),
        message: err.to_string().trim_end().to_string(),
    })?;
    capacity_from_nodes(&mut topology);
    validate(&topology).map_err(|(key, message)| TopologyError::Invalid {
        origin: origin.to_string(),
        key,
        message,
    })?;
    Ok(topology)
}

impl Topology {
    /// Checks a topology built or edited in code as [`parse`] checks a file:
    /// `Err((key, message))` names the first key at fault (e.g.
    /// `site[3] "hami".pue`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        validate(self)
    }

    /// Gives each site that declares nodes but no capacity the capacity of its
    /// nodes, as [`parse`] does for a file: call before [`Topology::validate`]
    /// on a topology built or edited in code.
    pub fn capacity_from_nodes(&mut self) {
        capacity_from_nodes(self);
    }

    /// IT power per busy unit of `class` at `site`, kW.
    pub fn power_kw(&self, site: &Site, class: ResourceClass) -> f64 {
        let own = site.power_kw_per_unit.get(class);
        if own > 0.0 {
            own
        } else {
            self.power_kw_per_unit.get(class)
        }
    }

    /// The site with id `id`.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id.0 == id)
    }

    /// Multiplies every site's capacity by `factor` (rounding, at least one unit
    /// where the site had any), for "what if" runs. A site with nodes scales its
    /// node count instead (at least one node), and its capacity follows.
    pub fn scale_capacity(&mut self, factor: f64) {
        for site in &mut self.sites {
            if let Some(nodes) = &mut site.nodes {
                nodes.count = ((nodes.count as f64) * factor).round().max(1.0) as u32;
                site.capacity = ClassMap::default();
                continue;
            }
            for class in ResourceClass::all() {
                let units = site.capacity.get(class);
                if units > 0 {
                    let scaled = ((units as f64) * factor).round().max(1.0) as u32;
                    site.capacity.set(class, scaled);
                }
            }
        }
        capacity_from_nodes(self);
    }
}

/// Gives each site that declares nodes but no capacity the capacity of its nodes
/// (a total past `u32::MAX` is left for [`validate`] to refuse).
fn capacity_from_nodes(topology: &mut Topology) {
    for site in &mut topology.sites {
        let Some(nodes) = &site.nodes else { continue };
        if site.capacity.iter().any(|(_, u)| u > 0) {
            continue;
        }
        for (class, _) in nodes.per_node.iter() {
            if let Ok(total) = u32::try_from(nodes.total(class)) {
                site.capacity.set(class, total);
            }
        }
    }
}

/// Checks a site's `[site.nodes]`: a sane count, at least one class per node, and
/// a capacity equal, class by class, to the nodes' total.
fn check_nodes(site: &Site, at: &dyn Fn(&str) -> String) -> Result<(), Invalid> {
    let Some(nodes) = &site.nodes else {
        return Ok(());
    };
    check(
        (1..=1_000_000).contains(&nodes.count),
        || at("nodes.count"),
        || format!("{} is out of range 1..=1000000", nodes.count),
    )?;
    check(
        nodes.per_node.iter().any(|(_, u)| u > 0),
        || at("nodes.per_node"),
        || "a node must hold at least one resource class".into(),
    )?;
    for class in ResourceClass::all() {
        let total = nodes.total(class);
        let declared = site.capacity.get(class);
        check(
            u64::from(declared) == total,
            || at(&format!("capacity.{class}")),
            || {
                format!(
                    "{declared} does not match the nodes: {} × {} = {total} \
                     (leave capacity out to take it from the nodes)",
                    nodes.count,
                    nodes.per_node.get(class)
                )
            },
        )?;
    }
    Ok(())
}

type Invalid = (String, String);

fn check(
    ok: bool,
    key: impl FnOnce() -> String,
    message: impl FnOnce() -> String,
) -> Result<(), Invalid> {
    if ok { Ok(()) } else { Err((key(), message())) }
}

fn validate(topology: &Topology) -> Result<(), Invalid> {
    for (i, spec) in topology.accelerators.iter().enumerate() {
        check(
            ResourceClass::parse(&spec.name).is_some_and(|c| c.name() == spec.name),
            || format!("accelerator[{i}] {:?}", spec.name),
            || "not registered in the catalogue (parse the topology, or register it first)".into(),
        )?;
    }
    check(
        !topology.name.trim().is_empty(),
        || "name".into(),
        || "must not be empty".into(),
    )?;
    check(
        !topology.sites.is_empty(),
        || "site".into(),
        || "a topology needs at least one [[site]]".into(),
    )?;
    let d = &topology.link_defaults;
    check(
        d.bandwidth_gbps > 0.0,
        || "link_defaults.bandwidth_gbps".into(),
        || "must be > 0".into(),
    )?;
    check(
        d.price_cny_per_gb >= 0.0,
        || "link_defaults.price_cny_per_gb".into(),
        || "must be >= 0".into(),
    )?;
    check(
        d.international_price_cny_per_gb >= 0.0,
        || "link_defaults.international_price_cny_per_gb".into(),
        || "must be >= 0".into(),
    )?;
    check(
        d.fibre_km_per_ms > 0.0,
        || "link_defaults.fibre_km_per_ms".into(),
        || "must be > 0".into(),
    )?;
    check(
        d.route_factor >= 1.0,
        || "link_defaults.route_factor".into(),
        || "must be >= 1".into(),
    )?;
    for (class, kw) in topology.power_kw_per_unit.iter() {
        check(
            (0.0..10.0).contains(&kw),
            || format!("power_kw_per_unit.{class}"),
            || format!("{kw} kW per unit is out of range 0..10"),
        )?;
    }

    let mut ids: HashSet<&str> = HashSet::new();
    for (i, site) in topology.sites.iter().enumerate() {
        let at = |field: &str| format!("site[{i}] {:?}.{field}", site.id.0);
        check(
            is_id(&site.id.0),
            || format!("site[{i}].id"),
            || {
                format!(
                    "{:?} is not a valid id (lower-case letters, digits, '-' and '_')",
                    site.id.0
                )
            },
        )?;
        check(
            ids.insert(&site.id.0),
            || format!("site[{i}].id"),
            || format!("duplicate id {:?}", site.id.0),
        )?;
        check_point(site.location.lat, site.location.lon).map_err(|m| (at("location"), m))?;
        check(
            site.pue >= 1.0 && site.pue <= 3.0,
            || at("pue"),
            || format!("{} is out of range 1..3", site.pue),
        )?;
        check(
            site.utc_offset_hours.abs() <= 14.0,
            || at("utc_offset_hours"),
            || "must be within -14..14".into(),
        )?;
        if let Some(cap) = site.power_cap_kw {
            check(cap > 0.0, || at("power_cap_kw"), || "must be > 0".into())?;
        }
        check_nodes(site, &at)?;
        check(
            site.capacity.iter().any(|(_, u)| u > 0),
            || at("capacity"),
            || "a site must offer at least one resource class".into(),
        )?;
        for (class, units) in site.capacity.iter() {
            let price = site.price_cny_per_unit_hour.get(class);
            if units > 0 {
                check(
                    price > 0.0,
                    || at(&format!("price_cny_per_unit_hour.{class}")),
                    || format!("missing or not > 0, but the site offers {units} {class}"),
                )?;
                check(
                    topology.power_kw(site, class) > 0.0,
                    || at(&format!("power_kw_per_unit.{class}")),
                    || {
                        format!(
                            "no power per unit for {class}, here or in the topology's [power_kw_per_unit]"
                        )
                    },
                )?;
            }
            check(
                price >= 0.0 && price.is_finite(),
                || at(&format!("price_cny_per_unit_hour.{class}")),
                || "must be a finite number >= 0".into(),
            )?;
        }
        check(
            site.tariff.base_cny_per_kwh > 0.0 && site.tariff.base_cny_per_kwh < 20.0,
            || at("tariff.base_cny_per_kwh"),
            || {
                format!(
                    "{} CNY/kWh is out of range (0, 20)",
                    site.tariff.base_cny_per_kwh
                )
            },
        )?;
        let mut covered = [false; 24];
        for (b, band) in site.tariff.bands.iter().enumerate() {
            let key = || at(&format!("tariff.bands[{b}]"));
            check(
                band.from < 24 && band.to >= 1 && band.to <= 24 && band.from != band.to,
                key,
                || {
                    format!(
                        "hours {}..{} are invalid (from 0..=23, to 1..=24, not equal)",
                        band.from, band.to
                    )
                },
            )?;
            check(band.multiplier > 0.0 && band.multiplier < 10.0, key, || {
                "multiplier must be in (0, 10)".into()
            })?;
            for hour in (0..24u32).filter(|h| band.contains(*h)) {
                check(!covered[hour as usize], key, || {
                    format!("hour {hour} is already in another band")
                })?;
                covered[hour as usize] = true;
            }
        }
        check(
            site.carbon.grid_kg_per_kwh >= 0.0 && site.carbon.grid_kg_per_kwh <= 2.0,
            || at("carbon.grid_kg_per_kwh"),
            || {
                format!(
                    "{} kg/kWh is out of range 0..2",
                    site.carbon.grid_kg_per_kwh
                )
            },
        )?;
        check(
            (0.0..=1.0).contains(&site.green.share),
            || at("green.share"),
            || "must be within 0..1".into(),
        )?;
    }
    let site_ids: HashSet<&str> = topology.sites.iter().map(|s| s.id.0.as_str()).collect();
    for (i, region) in topology.regions.iter().enumerate() {
        check(
            is_id(&region.id.0),
            || format!("region[{i}].id"),
            || format!("{:?} is not a valid id", region.id.0),
        )?;
        check(
            ids.insert(&region.id.0),
            || format!("region[{i}].id"),
            || {
                format!(
                    "duplicate id {:?} (sites and regions share one namespace)",
                    region.id.0
                )
            },
        )?;
        check_point(region.location.lat, region.location.lon)
            .map_err(|m| (format!("region[{i}] {:?}.location", region.id.0), m))?;
        if let Some(home) = &region.home_site {
            check(
                site_ids.contains(home.0.as_str()),
                || format!("region[{i}] {:?}.home_site", region.id.0),
                || format!("no site {:?}", home.0),
            )?;
        }
    }
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, link) in topology.links.iter().enumerate() {
        for (end, id) in [("a", &link.a), ("b", &link.b)] {
            check(
                ids.contains(id.0.as_str()),
                || format!("link[{i}].{end}"),
                || format!("no site or region {:?}", id.0),
            )?;
        }
        check(
            link.a != link.b,
            || format!("link[{i}]"),
            || "a link needs two different ends".into(),
        )?;
        let key = if link.a.0 < link.b.0 {
            (link.a.0.as_str(), link.b.0.as_str())
        } else {
            (link.b.0.as_str(), link.a.0.as_str())
        };
        if let Some(first) = pairs.insert(key, i) {
            return Err((
                format!("link[{i}]"),
                format!("{} <-> {} is already link[{first}]", link.a, link.b),
            ));
        }
        check(
            link.bandwidth_gbps > 0.0,
            || format!("link[{i}].bandwidth_gbps"),
            || "must be > 0".into(),
        )?;
        check(
            link.price_cny_per_gb >= 0.0,
            || format!("link[{i}].price_cny_per_gb"),
            || "must be >= 0".into(),
        )?;
        if let Some(ms) = link.latency_ms {
            check(
                ms >= 0.0,
                || format!("link[{i}].latency_ms"),
                || "must be >= 0".into(),
            )?;
        }
    }
    Ok(())
}

fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_point(lat: f64, lon: f64) -> Result<(), String> {
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("lat {lat} is out of range -90..90"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("lon {lon} is out of range -180..180"));
    }
    Ok(())
}

/// The id of a site as a location.
pub fn location_of(site: &SiteId) -> LocationId {
    LocationId(site.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_west_has_the_named_sites_regions_and_links() {
        let topology = builtin("cn-west").unwrap();
        for id in [
            "cq-liangjiang",
            "cd-tianfu",
            "hami",
            "zhongwei",
            "qingyang",
            "guian",
            "helinger",
            "singapore",
        ] {
            assert!(topology.site(id).is_some(), "missing site {id}");
        }
        let regions: Vec<&str> = topology.regions.iter().map(|r| r.id.0.as_str()).collect();
        assert_eq!(
            regions,
            ["chongqing", "chengdu", "shanghai", "beijing", "guangzhou"]
        );
        let has = |a: &str, b: &str| {
            topology
                .links
                .iter()
                .any(|l| (l.a.0 == a && l.b.0 == b) || (l.a.0 == b && l.b.0 == a))
        };
        assert!(has("chongqing", "hami"), "Chongqing–Hami backbone");
        assert!(has("cq-liangjiang", "singapore"), "Chongqing–Singapore");
        for city in ["beijing", "shanghai", "guangzhou"] {
            assert!(has("cq-liangjiang", city), "Chongqing–{city}");
        }
    }

    fn invalid(text: &str) -> String {
        parse(text, "t.toml").unwrap_err().to_string()
    }

    const BASE: &str = include_str!("../topologies/cn-west.toml");

    #[test]
    fn errors_name_file_and_key() {
        let err = invalid(&BASE.replacen("pue = 1.20", "pue = 0.5", 1));
        assert!(err.starts_with("t.toml: site[2] \"hami\".pue:"), "{err}");
        let err = invalid(&BASE.replacen(
            "a800 = 64, h20 = 128, l40s = 128 }",
            "a800 = 64, h20 = 128, l40s = 128, h800 = 8 }",
            1,
        ));
        assert!(
            err.contains("site[0] \"cq-liangjiang\".price_cny_per_unit_hour.h800"),
            "{err}"
        );
        let err = invalid(&BASE.replacen("b = \"hami\"", "b = \"kashgar\"", 1));
        assert!(
            err.contains("link[0].b: no site or region \"kashgar\""),
            "{err}"
        );
        let err = invalid(&BASE.replacen("pue = 1.25", "peu = 1.25", 1));
        assert!(
            err.starts_with("t.toml: ") && err.contains("peu") && err.contains("line"),
            "{err}"
        );
        let err = invalid(&BASE.replacen(
            "{ name = \"valley\", from = 23, to = 7,",
            "{ name = \"valley\", from = 22, to = 7,",
            1,
        ));
        assert!(
            err.contains("tariff.bands[2]") && err.contains("hour 22"),
            "{err}"
        );
        let err = invalid(&BASE.replacen("id = \"cd-tianfu\"", "id = \"hami\"", 1));
        assert!(err.contains("site[2].id: duplicate id \"hami\""), "{err}");
    }

    /// cn-west with qingyang's capacity given by (or beside) 16 nodes of
    /// 64 cores, 256 GiB and 8 RTX 4090 (qingyang offers 1024 cores, 4096 GiB,
    /// 128 RTX 4090 and 128 Ascend 910B).
    fn with_nodes(capacity: &str, nodes: &str) -> String {
        BASE.replacen(
            "capacity = { cpu = 1024, mem_gib = 4096, rtx4090 = 128, ascend910b = 128 }",
            &format!("{capacity}\nnodes = {nodes}"),
            1,
        )
    }

    #[test]
    fn node_shapes_define_or_must_match_the_capacity() {
        let shape = "{ count = 16, per_node = { cpu = 64, mem_gib = 256, rtx4090 = 8 } }";
        let topology = parse(&with_nodes("", shape), "t.toml").unwrap();
        let site = topology.site("qingyang").unwrap();
        assert_eq!(site.capacity.get(ResourceClass::Cpu), 1024);
        assert_eq!(site.capacity.get(ResourceClass::Memory), 4096);
        assert_eq!(site.capacity.get(ResourceClass::Rtx4090), 128);
        assert_eq!(site.capacity.get(ResourceClass::Ascend910B), 0);
        assert_eq!(site.nodes.as_ref().unwrap().count, 16);
        // Both given and equal: accepted; the topology round-trips.
        let both = with_nodes(
            "capacity = { cpu = 1024, mem_gib = 4096, rtx4090 = 128 }",
            shape,
        );
        let again = parse(&both, "t.toml").unwrap();
        assert_eq!(again, topology);
        let text = toml::to_string(&again).unwrap();
        assert_eq!(parse(&text, "again.toml").unwrap(), again);
        // Both given and different: the class that disagrees is named.
        let err = invalid(&with_nodes(
            "capacity = { cpu = 1024, mem_gib = 4096, rtx4090 = 128, ascend910b = 128 }",
            shape,
        ));
        assert!(
            err.starts_with("t.toml: site[4] \"qingyang\".capacity.ascend910b: 128 does not match the nodes: 16 × 0 = 0"),
            "{err}"
        );
        let err = invalid(&with_nodes(
            "capacity = { cpu = 1000, mem_gib = 4096, rtx4090 = 128 }",
            shape,
        ));
        assert!(
            err.contains("capacity.cpu: 1000 does not match the nodes: 16 × 64 = 1024"),
            "{err}"
        );
        let err = invalid(&with_nodes("", "{ count = 0, per_node = { cpu = 64 } }"));
        assert!(
            err.contains("site[4] \"qingyang\".nodes.count: 0 is out of range"),
            "{err}"
        );
        let err = invalid(&with_nodes("", "{ count = 4, per_node = {} }"));
        assert!(err.contains("nodes.per_node: a node must hold"), "{err}");
        let err = invalid(&with_nodes(
            "",
            "{ count = 4, per_node = { cpu = 64 }, gpus = 8 }",
        ));
        assert!(err.starts_with("t.toml: ") && err.contains("gpus"), "{err}");
        // Scaling a site with nodes scales its node count.
        let mut scaled = topology.clone();
        scaled.scale_capacity(0.5);
        let site = scaled.site("qingyang").unwrap();
        assert_eq!(site.nodes.as_ref().unwrap().count, 8);
        assert_eq!(site.capacity.get(ResourceClass::Rtx4090), 64);
        assert!(scaled.validate().is_ok());
    }

    /// cn-west with one more model declared at the end and offered at
    /// cq-liangjiang.
    fn with_model(model: &str, table: &str) -> String {
        let text = BASE
            .replacen(
                "a800 = 64, h20 = 128, l40s = 128 }",
                &format!("a800 = 64, h20 = 128, l40s = 128, {model} = 16 }}"),
                1,
            )
            .replacen("cpu = 0.010", &format!("cpu = 0.010\n{model} = 0.35"), 1)
            .replacen(
                "h20 = 7.0, l40s = 5.5 }",
                &format!("h20 = 7.0, l40s = 5.5, {model} = 9.0 }}"),
                1,
            );
        format!("{text}\n{table}")
    }

    #[test]
    fn a_topology_extends_the_catalogue_before_its_sites_are_read() {
        let text = with_model(
            "topo-mlu590",
            "[[accelerator]]\nname = \"topo-mlu590\"\nvendor = \"Cambricon\"\nmodel = \"MLU590\"\nfamily = \"cambricon\"\nmemory_gib = 80\nfp16_tflops = 314\nsource = \"site survey\"\n",
        );
        let topology = parse(&text, "t.toml").unwrap();
        let class = ResourceClass::parse("topo-mlu590").expect("registered");
        assert_eq!(class.info().vendor, "Cambricon");
        assert_eq!(
            topology.site("cq-liangjiang").unwrap().capacity.get(class),
            16
        );
        assert_eq!(topology.accelerators.len(), 1);
        // Parsing the same file again (a restart, a second reader) is no conflict.
        parse(&text, "t.toml").unwrap();
        // The topology round-trips through TOML with its declaration.
        let again = toml::to_string(&topology).unwrap();
        assert_eq!(parse(&again, "again.toml").unwrap(), topology);
    }

    #[test]
    fn bad_declarations_name_file_line_and_field() {
        let line = BASE.lines().count() + 3; // one power line added, one blank line
        let err = invalid(&with_model(
            "topo-bad",
            "[[accelerator]]\nname = \"topo-bad\"\nvendor = \"X\"\nfamily = \"x\"\nmemory_gib = -4\n",
        ));
        assert!(
            err.starts_with(&format!(
                "t.toml: accelerator[0] \"topo-bad\" (line {line}):"
            )) && err.contains("memory_gib"),
            "{err}"
        );
        let err = invalid(&with_model(
            "h100",
            "[[accelerator]]\nname = \"h100\"\nvendor = \"NVIDIA\"\nfamily = \"nvidia-hopper\"\nmemory_gib = 94\n",
        ));
        assert!(
            err.contains("accelerator[0] \"h100\"") && err.contains("built-in class \"h100\""),
            "{err}"
        );
        let err = invalid(&with_model(
            "topo-x",
            "[[accelerator]]\nname = \"topo-x\"\nvendor = \"X\"\nfamily = \"x\"\nmemory_gib = 8\ntflops = 3\n",
        ));
        assert!(
            err.starts_with("t.toml: ") && err.contains("tflops") && err.contains("line"),
            "{err}"
        );
        // A site naming a model nobody declared says how to declare one.
        let err = invalid(&with_model("topo-nowhere", ""));
        assert!(
            err.contains("unknown resource class \"topo-nowhere\"")
                && err.contains("[[accelerator]]"),
            "{err}"
        );
    }

    #[test]
    fn unknown_builtin_lists_the_known_ones() {
        let err = builtin("mars").unwrap_err().to_string();
        assert!(err.contains("cn-west"), "{err}");
    }
}
