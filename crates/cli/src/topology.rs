//! `suanwang topology show|check`.

use clap::Subcommand;
use suanwang_model::ResourceClass;
use suanwang_sim::report::table;
use suanwang_topology::Network;

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Print a topology's sites, regions and links as tables.
    Show {
        /// Built-in name or TOML file.
        #[arg(default_value = "cn-west")]
        topology: String,
        /// Also list the derived metrics of every region-to-site pair.
        #[arg(long)]
        all_pairs: bool,
        /// Print the topology as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Validate a topology file; errors name the file and key.
    Check {
        /// TOML file (or built-in name).
        file: String,
    },
}

pub fn run(command: TopologyCommand) -> anyhow::Result<()> {
    match command {
        TopologyCommand::Check { file } => {
            let topology = crate::load_topology(&file)?;
            println!(
                "{file}: ok ({} sites, {} regions, {} links)",
                topology.sites.len(),
                topology.regions.len(),
                topology.links.len()
            );
            Ok(())
        }
        TopologyCommand::Show {
            topology,
            all_pairs,
            json,
        } => {
            let topology = crate::load_topology(&topology)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&topology)?);
                return Ok(());
            }
            print!("{}", render(&topology, all_pairs));
            Ok(())
        }
    }
}

pub fn render(topology: &suanwang_topology::Topology, all_pairs: bool) -> String {
    let mut out = format!("{} — {}\n\nsites\n", topology.name, topology.description);
    let mut rows = vec![
        [
            "id",
            "name",
            "province",
            "hub",
            "jurisdiction",
            "PUE",
            "capacity",
            "tariff CNY/kWh",
            "grid kgCO2/kWh",
            "green",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for site in &topology.sites {
        let capacity: Vec<String> = ResourceClass::all()
            .filter(|c| site.capacity.get(*c) > 0)
            .map(|c| format!("{} {}", c.name(), site.capacity.get(c)))
            .collect();
        rows.push(vec![
            site.id.0.clone(),
            format!("{} {}", site.name, site.name_zh.clone().unwrap_or_default()),
            site.province.clone(),
            format!("{}", site.hub.name_zh()),
            site.jurisdiction.0.clone(),
            format!("{:.2}", site.pue),
            capacity.join(", "),
            format!(
                "{:.2}{}",
                site.tariff.base_cny_per_kwh,
                if site.tariff.bands.is_empty() {
                    ""
                } else {
                    " TOU"
                }
            ),
            format!("{:.4}", site.carbon.grid_kg_per_kwh),
            format!(
                "{:.0}%{}",
                site.green.share * 100.0,
                if site.green.shaped { " shaped" } else { "" }
            ),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nregions\n");
    let network = Network::new(topology);
    let mut rows = vec![
        ["id", "name", "jurisdiction", "home site"]
            .map(String::from)
            .to_vec(),
    ];
    for region in &topology.regions {
        let idx = network
            .index(&region.id.0)
            .expect("regions are in the network");
        rows.push(vec![
            region.id.0.clone(),
            format!(
                "{} {}",
                region.name,
                region.name_zh.clone().unwrap_or_default()
            ),
            region.jurisdiction.0.clone(),
            network.ids[network.home_site[idx]].clone(),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nlinks (latency: round trip; derived = from great-circle distance × 1.5 route factor at 200 km/ms)\n");
    let mut rows = vec![
        ["a", "b", "name", "km", "latency ms", "Gbit/s", "CNY/GB"]
            .map(String::from)
            .to_vec(),
    ];
    let mut push = |a: usize, b: usize| {
        let m = network.between(a, b);
        rows.push(vec![
            network.ids[a].clone(),
            network.ids[b].clone(),
            m.name.clone().unwrap_or_else(|| "(default)".into()),
            format!("{:.0}", m.distance_km),
            format!(
                "{:.1}{}",
                m.latency_ms,
                if m.latency_derived { " derived" } else { "" }
            ),
            format!("{:.0}", m.bandwidth_gbps),
            format!("{:.2}", m.price_cny_per_gb),
        ]);
    };
    for link in &topology.links {
        push(
            network.index(&link.a.0).expect("validated"),
            network.index(&link.b.0).expect("validated"),
        );
    }
    if all_pairs {
        for a in network.n_sites..network.len() {
            for b in 0..network.n_sites {
                push(a, b);
            }
        }
    }
    out.push_str(&table(&rows));
    out
}
