//! Host telemetry: what this machine offers (capacity by resource class) and how
//! much of it is in use, for the agent's registration and heartbeats.
//!
//! Sources, each optional except the first:
//! - CPU and memory from the operating system through `sysinfo`;
//! - NVIDIA GPUs (model, utilisation, memory, board power) through NVML, loaded at
//!   run time by `nvml-wrapper` (it opens `libnvidia-ml.so.1` with `libloading`, so
//!   building needs neither a GPU nor CUDA, and nothing links against the driver).
//!   When NVML cannot be initialised but an `nvidia-smi` binary is on `PATH` and
//!   lists GPUs, its CSV output is read instead. No library, no driver, no binary:
//!   no GPUs, which is not an error;
//! - Huawei Ascend NPUs (model and count, for capacity) from `npu-smi info`, where
//!   that tool is on `PATH`;
//! - measured power: RAPL package energy counters under `/sys/class/powercap`
//!   (usually readable by root only since Linux 5.10) and NVML board power. When
//!   nothing is measured, the sample carries an estimate from a [`PowerModel`]
//!   and says so (`"source": "estimated"`).
//!
//! This module only reads: it never changes a device setting, and a source it
//! cannot read is left out of the sample (logged at debug), never an error.
//! Sampling blocks (file reads, NVML calls, possibly an `nvidia-smi` process, and
//! at most [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] of sleep): async callers run it
//! in `spawn_blocking`.

use nvml_wrapper::Nvml;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use suanwang_api::Telemetry;
use suanwang_api::agents::{CpuSample, GpuSample as GpuDoc, MemorySample, PowerSample};
use suanwang_model::resource::ResourceClass;
use sysinfo::System;

/// Bytes in a GiB.
const GIB: f64 = (1u64 << 30) as f64;
/// Bytes in a MiB.
const MIB: u64 = 1 << 20;
/// How long an `nvidia-smi` call may take before it is killed (a wedged driver
/// can make it hang).
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);
/// The query handed to `nvidia-smi`; [`parse_nvidia_smi`] expects these columns
/// in this order.
const NVIDIA_SMI_QUERY: &str =
    "--query-gpu=index,name,utilization.gpu,memory.total,memory.used,power.draw";

/// A linear power model for hosts that expose no measurement:
/// `idle_w + w_per_busy_core × busy cores + w_per_used_gib × used GiB
///  + Σ board power × utilisation` over GPUs whose power is not read.
///
/// The defaults are the per-unit figures of the project's topologies
/// (`power_kw_per_unit` in `crates/topology/topologies/cn-west.toml`: 10 W per
/// core, 0.4 W per GiB, vendor board power per GPU model). Those count only units
/// in use, so the default idle draw is 0 W: the estimate is the marginal power of
/// the work, the same quantity the scheduler prices. Set `idle_w` for a whole-host
/// figure.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerModel {
    /// Watts drawn by the host when idle.
    pub idle_w: f64,
    /// Watts per fully busy logical CPU.
    pub w_per_busy_core: f64,
    /// Watts per GiB of memory in use.
    pub w_per_used_gib: f64,
    /// Board power in watts of a fully busy GPU, by class; GPUs of other models
    /// count 0 W in the estimate.
    pub gpu_board_w: BTreeMap<ResourceClass, f64>,
}

impl Default for PowerModel {
    fn default() -> PowerModel {
        PowerModel {
            idle_w: 0.0,
            w_per_busy_core: 10.0,
            w_per_used_gib: 0.4,
            gpu_board_w: BTreeMap::from([
                (ResourceClass::A800, 400.0),
                (ResourceClass::H800, 700.0),
                (ResourceClass::H20, 400.0),
                (ResourceClass::L40S, 350.0),
                (ResourceClass::Rtx4090, 450.0),
            ]),
        }
    }
}

impl PowerModel {
    /// A model from a site's `power_kw_per_unit` table (class name → kW per unit
    /// in use). Classes absent from the table keep their default; names that are
    /// not classes are ignored.
    pub fn from_kw_per_unit(kw_per_unit: &BTreeMap<String, f64>) -> PowerModel {
        let mut model = PowerModel::default();
        for (name, kw) in kw_per_unit {
            let watts = kw * 1000.0;
            match ResourceClass::parse(name) {
                Some(ResourceClass::Cpu) => model.w_per_busy_core = watts,
                Some(ResourceClass::Memory) => model.w_per_used_gib = watts,
                Some(class) => {
                    model.gpu_board_w.insert(class, watts);
                }
                None => {}
            }
        }
        model
    }

    /// A one-line description of the model and its parameters, for the sample.
    fn describe(&self) -> String {
        format!(
            "{} W idle + {} W per busy core + {} W per used GiB + board power x utilisation per GPU",
            self.idle_w, self.w_per_busy_core, self.w_per_used_gib
        )
    }

    /// The estimate in watts for `busy_cores` busy CPUs, `used_gib` of memory in
    /// use and the GPUs listed.
    fn estimate_w(&self, busy_cores: f64, used_gib: f64, gpus: &[GpuSample]) -> f64 {
        let gpu_w: f64 = gpus
            .iter()
            .map(|gpu| match (gpu.power_w, gpu.class) {
                (Some(watts), _) => watts,
                (None, Some(class)) => {
                    self.gpu_board_w.get(&class).copied().unwrap_or(0.0)
                        * gpu.utilisation.unwrap_or(0.0)
                }
                (None, None) => 0.0,
            })
            .sum();
        (self.idle_w + self.w_per_busy_core * busy_cores + self.w_per_used_gib * used_gib + gpu_w)
            .max(0.0)
    }
}

/// Where the telemetry reads from and how it estimates power.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// The powercap sysfs root holding the RAPL zones (`/sys/class/powercap`).
    pub powercap_root: PathBuf,
    /// Whether to look for NVIDIA GPUs (NVML, then `nvidia-smi`).
    pub probe_gpus: bool,
    /// The estimate used when no power is measured.
    pub power_model: PowerModel,
}

impl Default for TelemetryOptions {
    fn default() -> TelemetryOptions {
        TelemetryOptions {
            powercap_root: PathBuf::from("/sys/class/powercap"),
            probe_gpus: true,
            power_model: PowerModel::default(),
        }
    }
}

/// This host's capacity and use, sampled on demand.
pub struct HostTelemetry {
    system: System,
    /// When the CPU counters were last refreshed: usage is the difference
    /// between two refreshes, which must be far enough apart to mean anything.
    cpu_refreshed: Instant,
    cores: usize,
    rapl: Rapl,
    gpus: GpuReader,
    /// The GPUs found at start: `(index, model name)`.
    inventory: Vec<(u32, String)>,
    /// The Ascend NPUs found at start: `(npu id, name as npu-smi prints it)`.
    npus: Vec<(u32, String)>,
    power_model: PowerModel,
}

impl std::fmt::Debug for HostTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTelemetry")
            .field("cores", &self.cores)
            .field("rapl_zones", &self.rapl.zones.len())
            .field("gpu_reader", &self.gpus.name())
            .field("gpus", &self.inventory)
            .finish_non_exhaustive()
    }
}

impl Default for HostTelemetry {
    fn default() -> HostTelemetry {
        HostTelemetry::new()
    }
}

impl HostTelemetry {
    /// Telemetry for this host with the default options.
    pub fn new() -> HostTelemetry {
        HostTelemetry::with_options(TelemetryOptions::default())
    }

    /// Telemetry for this host. Probes the power and GPU sources once, here; a
    /// source that is missing or unreadable is left out (logged at debug).
    pub fn with_options(options: TelemetryOptions) -> HostTelemetry {
        let mut system = System::new();
        // The first refresh sets the baseline the first sample's CPU usage is
        // measured against.
        system.refresh_cpu_usage();
        system.refresh_memory();
        let cpu_refreshed = Instant::now();
        let mut rapl = Rapl::discover(&options.powercap_root);
        // Likewise the first energy reading, so that the first sample has a
        // delta.
        rapl.read_watts(Instant::now());
        let (gpus, inventory) = if options.probe_gpus {
            GpuReader::probe()
        } else {
            (GpuReader::None, Vec::new())
        };
        let npus = if options.probe_gpus {
            npu_inventory()
        } else {
            Vec::new()
        };
        // A device the catalogue does not know is no capacity: say so, once,
        // with what to do, rather than offer it as something it is not.
        for (index, name) in &inventory {
            if gpu_class(name).is_none() {
                tracing::warn!(gpu = index, model = %name, "{}", unknown_device("GPU", *index, name));
            }
        }
        for (index, name) in &npus {
            if npu_class(name).is_none() {
                tracing::warn!(npu = index, model = %name, "{}", unknown_device("NPU", *index, name));
            }
        }
        HostTelemetry {
            system,
            cpu_refreshed,
            cores: logical_cpus(),
            rapl,
            gpus,
            inventory,
            npus,
            power_model: options.power_model,
        }
    }

    /// Units this host offers by resource class: `cpu` (logical CPUs available to
    /// this process), `mem_gib` (total memory, whole GiB rounded down) and one
    /// entry per known GPU model found at start. GPUs of other models appear in
    /// [`HostTelemetry::sample`] but are not capacity.
    pub fn capacity(&self) -> BTreeMap<String, u64> {
        let mut capacity = BTreeMap::new();
        capacity.insert(ResourceClass::Cpu.name().to_string(), self.cores as u64);
        capacity.insert(
            ResourceClass::Memory.name().to_string(),
            self.system.total_memory() >> 30,
        );
        for (_, model) in &self.inventory {
            if let Some(class) = gpu_class(model) {
                *capacity.entry(class.name().to_string()).or_insert(0) += 1;
            }
        }
        for (_, model) in &self.npus {
            if let Some(class) = npu_class(model) {
                *capacity.entry(class.name().to_string()).or_insert(0) += 1;
            }
        }
        capacity
    }

    /// A sample of use, as JSON:
    ///
    /// ```json
    /// {"source": "host",
    ///  "cpu": {"cores": 16, "utilisation": 0.12, "load_1m": 1.5},
    ///  "memory": {"total_gib": 62.7, "used_gib": 8.1, "utilisation": 0.13},
    ///  "gpu_reader": "nvml" | "nvidia-smi" | "none",
    ///  "gpus": [{"index": 0, "model": "NVIDIA A800-SXM4-80GB", "class": "a800",
    ///            "utilisation": 0.35, "memory_total_mib": 81920,
    ///            "memory_used_mib": 1024, "power_w": 85.3}],
    ///  "power": {"watts": 312.0, "source": "rapl+nvml",
    ///            "parts": {"rapl_w": 226.7, "nvml_w": 85.3}}}
    /// ```
    ///
    /// `class` is absent for models that are no resource class; GPU fields the
    /// device does not report are `null`. `power.source` says what was measured:
    /// `rapl` (CPU packages only), `nvml` (GPU boards only) or `rapl+nvml`, and
    /// `watts` is the sum of what was measured, nothing estimated added. With
    /// nothing measured it is `{"watts": …, "source": "estimated", "model": "…"}`.
    ///
    /// Blocks for the rest of [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] when called
    /// sooner than that after the previous sample (or construction), so that CPU
    /// utilisation is always a real measurement.
    pub fn sample(&mut self) -> Telemetry {
        let since = self.cpu_refreshed.elapsed();
        if since < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL - since);
        }
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.cpu_refreshed = Instant::now();

        let utilisation = fraction(f64::from(self.system.global_cpu_usage()) / 100.0);
        let load_1m = System::load_average().one;
        let total_gib = self.system.total_memory() as f64 / GIB;
        let used_gib = self.system.used_memory() as f64 / GIB;
        let memory_utilisation = if total_gib > 0.0 {
            fraction(used_gib / total_gib)
        } else {
            0.0
        };

        let gpus = self.gpus.read(&self.inventory);
        let rapl_w = self.rapl.read_watts(Instant::now());
        // `nvidia-smi` reads board power through NVML too, hence one label.
        let readings: Vec<f64> = gpus.iter().filter_map(|gpu| gpu.power_w).collect();
        let nvml_w = (!readings.is_empty()).then(|| readings.iter().sum::<f64>());
        let power = match (rapl_w, nvml_w) {
            (None, None) => {
                let busy_cores = utilisation * self.cores as f64;
                PowerSample {
                    watts: round3(self.power_model.estimate_w(busy_cores, used_gib, &gpus)),
                    source: "estimated".into(),
                    model: Some(self.power_model.describe()),
                    parts: BTreeMap::new(),
                }
            }
            (rapl, nvml) => {
                let source = match (rapl, nvml) {
                    (Some(_), Some(_)) => "rapl+nvml",
                    (Some(_), None) => "rapl",
                    _ => "nvml",
                };
                let mut parts = BTreeMap::new();
                if let Some(watts) = rapl {
                    parts.insert("rapl_w".to_string(), round3(watts));
                }
                if let Some(watts) = nvml {
                    parts.insert("nvml_w".to_string(), round3(watts));
                }
                PowerSample {
                    watts: round3(rapl.unwrap_or(0.0) + nvml.unwrap_or(0.0)),
                    source: source.into(),
                    model: None,
                    parts,
                }
            }
        };

        Telemetry {
            source: "host".into(),
            cpu: Some(CpuSample {
                cores: self.cores as u64,
                utilisation: round3(utilisation),
                load_1m: round3(load_1m),
            }),
            memory: Some(MemorySample {
                total_gib: round3(total_gib),
                used_gib: round3(used_gib),
                utilisation: round3(memory_utilisation),
            }),
            gpu_reader: Some(self.gpus.name().to_string()),
            gpus: gpus.iter().map(GpuSample::to_doc).collect(),
            power: Some(power),
            ..Telemetry::default()
        }
    }
}

/// Logical CPUs this process may use (honours affinity and cgroup quotas).
fn logical_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `x` clamped to `0..=1` (NaN becomes 0).
fn fraction(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// `x` rounded to three decimals, to keep samples readable.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The resource class of an NVIDIA GPU, from the name NVML or `nvidia-smi`
/// reports (`NVIDIA A800-SXM4-80GB`, `NVIDIA GeForce RTX 4090`, `NVIDIA H20`).
///
/// The model is the first word after the vendor and brand words; form factor and
/// memory words that follow it (`SXM4`, `PCIe`, `80GB`) do not matter, but words
/// that make it another product (`D`, `Ti`, `Super`, `Laptop`) do, and so does
/// every character of the model itself: an H200 is not an H20. `None` for models
/// that are no resource class.
pub fn gpu_class(name: &str) -> Option<ResourceClass> {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .filter(|word| !matches!(word.as_str(), "nvidia" | "geforce" | "tesla"))
        .collect();
    let (model, rest) = match words.as_slice() {
        [rtx, number, rest @ ..] if rtx == "rtx" => (format!("rtx{number}"), rest),
        [model, rest @ ..] => (model.clone(), rest),
        [] => return None,
    };
    if rest.first().is_some_and(|word| {
        matches!(
            word.as_str(),
            "d" | "ti" | "super" | "laptop" | "mobile" | "max" | "ada"
        )
    }) {
        return None;
    }
    // Only whole model names: `ResourceClass::parse` also takes bare numbers
    // such as "4090", which here would be too loose; and only NVIDIA's models
    // (built in or added with vendor NVIDIA), whatever other vendors' aliases
    // look like.
    if !model.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let class = ResourceClass::parse(&model)?;
    (class.is_accelerator() && class.info().vendor.eq_ignore_ascii_case("nvidia")).then_some(class)
}

/// The catalogue class of a Huawei Ascend NPU named as `npu-smi info` prints it
/// (`910B3`, `910B`, `Ascend910C`); `None` for models the catalogue lacks (the
/// first-generation `910`, the `310P` inference cards, unless added).
pub fn npu_class(name: &str) -> Option<ResourceClass> {
    let key = suanwang_model::catalogue::key(name);
    let bare = key.strip_prefix("ascend").unwrap_or(&key);
    if bare.is_empty() {
        return None;
    }
    ResourceClass::parse(&format!("ascend{bare}"))
        .or_else(|| {
            // Bins of a model (910B1 … 910B4) are spelled as the model's aliases.
            bare.starts_with(|c: char| c.is_ascii_digit())
                .then(|| ResourceClass::parse(bare))
                .flatten()
        })
        .filter(|class| {
            class.is_accelerator() && class.info().vendor.eq_ignore_ascii_case("huawei")
        })
}

/// What the agent says about a device whose model the catalogue lacks: it is
/// not offered, and how to offer it.
pub fn unknown_device(kind: &str, index: u32, name: &str) -> String {
    let suggestion: String = suanwang_model::catalogue::key(name)
        .trim_start_matches("nvidia")
        .trim_start_matches("geforce")
        .chars()
        .take(16)
        .collect();
    let suggestion = if suggestion.starts_with(|c: char| c.is_ascii_alphabetic()) {
        suggestion
    } else {
        format!("x{suggestion}")
    };
    format!(
        "{kind} {index} is a {name:?}, a model missing from the accelerator catalogue (suanwang accelerators lists it): it is not offered as capacity. To offer it, declare it in the site file (suanwang agent --site-file) or the topology with an [[accelerator]] table (name = \"{suggestion}\", vendor, family, memory_gib, fp16_tflops, aliases = [\"{name}\"]), and offer the cards with --capacity {suggestion}=N"
    )
}

/// The Ascend NPUs `npu-smi info` lists, if that tool is on `PATH`.
fn npu_inventory() -> Vec<(u32, String)> {
    let Some(binary) = find_on_path("npu-smi") else {
        tracing::debug!("no npu-smi on PATH: no Ascend NPUs");
        return Vec::new();
    };
    let Some(text) = run_captured(&binary, &["info"]) else {
        return Vec::new();
    };
    let npus = parse_npu_smi(&text);
    tracing::debug!(npus = npus.len(), "npu-smi lists Ascend NPUs");
    npus
}

/// Parses the device table of `npu-smi info`: each NPU is a pair of rows, the
/// first `| <npu id>  <name> | <health> | power, temperature … |`, the second
/// `| <chip id> | <bus id> | …`. Returns `(npu id, name)` per NPU; the process
/// table after it (`| NPU Chip | Process id | …`) and anything else is skipped.
pub fn parse_npu_smi(text: &str) -> Vec<(u32, String)> {
    let mut npus = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        if line.contains("Process id") || line.contains("Process name") {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [first, health, ..] = cells.as_slice() else {
            continue;
        };
        let words: Vec<&str> = first.split_whitespace().collect();
        let [id, name] = words.as_slice() else {
            continue;
        };
        let Ok(id) = id.parse::<u32>() else {
            continue;
        };
        // The name row carries a health word; the chip row a bus id.
        let healthy_word = health
            .split_whitespace()
            .next()
            .is_some_and(|w| w.chars().all(|c| c.is_ascii_alphabetic()));
        if name.chars().any(|c| c.is_ascii_alphabetic()) && healthy_word {
            npus.push((id, name.to_string()));
        }
    }
    npus
}

/// One GPU's reading.
#[derive(Debug, Clone, PartialEq)]
struct GpuSample {
    index: u32,
    model: String,
    class: Option<ResourceClass>,
    /// Busy fraction, `0..=1`.
    utilisation: Option<f64>,
    memory_total_mib: Option<u64>,
    memory_used_mib: Option<u64>,
    power_w: Option<f64>,
}

impl GpuSample {
    fn to_doc(&self) -> GpuDoc {
        GpuDoc {
            index: self.index,
            model: self.model.clone(),
            class: self.class.map(|c| c.name().to_string()),
            utilisation: self.utilisation.map(round3),
            memory_total_mib: self.memory_total_mib,
            memory_used_mib: self.memory_used_mib,
            power_w: self.power_w.map(round3),
        }
    }
}

/// How GPUs are read, chosen once at start.
enum GpuReader {
    /// No NVIDIA GPU, library or tool.
    None,
    /// The NVIDIA Management Library, loaded at run time.
    Nvml(Box<Nvml>),
    /// The `nvidia-smi` binary at this path.
    Smi(PathBuf),
}

impl GpuReader {
    fn name(&self) -> &'static str {
        match self {
            GpuReader::None => "none",
            GpuReader::Nvml(_) => "nvml",
            GpuReader::Smi(_) => "nvidia-smi",
        }
    }

    /// Finds a working reader and the GPUs it sees: NVML first, then
    /// `nvidia-smi`; neither is not an error.
    fn probe() -> (GpuReader, Vec<(u32, String)>) {
        match Nvml::init() {
            Ok(nvml) => {
                let inventory = nvml_inventory(&nvml);
                if inventory.is_empty() {
                    tracing::debug!("nvml loaded but lists no gpu");
                    return (GpuReader::None, inventory);
                }
                tracing::debug!(gpus = inventory.len(), "reading gpus through nvml");
                return (GpuReader::Nvml(Box::new(nvml)), inventory);
            }
            Err(e) => tracing::debug!(error = %e, "nvml unavailable"),
        }
        let Some(binary) = find_on_path("nvidia-smi") else {
            tracing::debug!("no nvidia-smi on PATH: no gpus");
            return (GpuReader::None, Vec::new());
        };
        let gpus = run_nvidia_smi(&binary);
        if gpus.is_empty() {
            tracing::debug!(binary = %binary.display(), "nvidia-smi lists no gpu");
            return (GpuReader::None, Vec::new());
        }
        tracing::debug!(gpus = gpus.len(), "reading gpus through nvidia-smi");
        let inventory = gpus.into_iter().map(|gpu| (gpu.index, gpu.model)).collect();
        (GpuReader::Smi(binary), inventory)
    }

    /// A reading of every GPU, in index order.
    fn read(&self, inventory: &[(u32, String)]) -> Vec<GpuSample> {
        match self {
            GpuReader::None => Vec::new(),
            GpuReader::Nvml(nvml) => inventory
                .iter()
                .map(|(index, model)| nvml_sample(nvml, *index, model))
                .collect(),
            GpuReader::Smi(binary) => run_nvidia_smi(binary),
        }
    }
}

/// The GPUs NVML sees: `(index, name)`.
fn nvml_inventory(nvml: &Nvml) -> Vec<(u32, String)> {
    let count = match nvml.device_count() {
        Ok(count) => count,
        Err(e) => {
            tracing::debug!(error = %e, "nvml cannot count gpus");
            return Vec::new();
        }
    };
    (0..count)
        .filter_map(
            |index| match nvml.device_by_index(index).and_then(|d| d.name()) {
                Ok(name) => Some((index, name)),
                Err(e) => {
                    tracing::debug!(index, error = %e, "nvml cannot name gpu");
                    None
                }
            },
        )
        .collect()
}

/// One GPU's reading through NVML; what the device does not report is `None`.
fn nvml_sample(nvml: &Nvml, index: u32, model: &str) -> GpuSample {
    let mut sample = GpuSample {
        index,
        model: model.to_string(),
        class: gpu_class(model),
        utilisation: None,
        memory_total_mib: None,
        memory_used_mib: None,
        power_w: None,
    };
    let device = match nvml.device_by_index(index) {
        Ok(device) => device,
        Err(e) => {
            tracing::debug!(index, error = %e, "nvml cannot open gpu");
            return sample;
        }
    };
    sample.utilisation = device
        .utilization_rates()
        .ok()
        .map(|rates| fraction(f64::from(rates.gpu) / 100.0));
    if let Ok(memory) = device.memory_info() {
        sample.memory_total_mib = Some(memory.total / MIB);
        sample.memory_used_mib = Some(memory.used / MIB);
    }
    // Milliwatts.
    sample.power_w = device
        .power_usage()
        .ok()
        .map(|milliwatts| f64::from(milliwatts) / 1000.0);
    sample
}

/// The first executable file called `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `nvidia-smi` with [`NVIDIA_SMI_QUERY`] and parses what it prints; any
/// failure (cannot start, non-zero exit, timeout) gives no GPUs.
fn run_nvidia_smi(binary: &Path) -> Vec<GpuSample> {
    run_captured(binary, &[NVIDIA_SMI_QUERY, "--format=csv,noheader,nounits"])
        .map(|text| parse_nvidia_smi(&text))
        .unwrap_or_default()
}

/// Runs a vendor tool (`nvidia-smi`, `npu-smi`) and returns what it printed;
/// `None` if it cannot start, exits non-zero or outlives [`NVIDIA_SMI_TIMEOUT`].
fn run_captured(binary: &Path, args: &[&str]) -> Option<String> {
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            tracing::debug!(binary = %binary.display(), error = %e, "cannot run the tool");
            return None;
        }
    };
    // Polling rather than `wait_with_output` so that a hung driver cannot hang
    // the agent; the output (a short table) fits in the pipe's buffer.
    let deadline = Instant::now() + NVIDIA_SMI_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                tracing::debug!(binary = %binary.display(), "the tool timed out: killing it");
                // It may have exited since; either way it is reaped below.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot wait for the tool");
                break None;
            }
        }
    };
    if !status.is_some_and(|status| status.success()) {
        return None;
    }
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take()
        && let Err(e) = stdout.read_to_string(&mut text)
    {
        tracing::debug!(error = %e, "cannot read the tool's output");
        return None;
    }
    Some(text)
}

/// Parses `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.total,
/// memory.used,power.draw --format=csv,noheader,nounits`: one GPU a line, six
/// comma-separated fields. A field the device does not support (`[N/A]`,
/// `[Not Supported]`, anything not a number) is `None`; a line without a numeric
/// index or with fewer than six fields is skipped. A name containing commas is
/// rejoined from the middle fields.
fn parse_nvidia_smi(text: &str) -> Vec<GpuSample> {
    let mut gpus = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 6 {
            tracing::debug!(
                line = line_no + 1,
                text = line,
                "nvidia-smi line has too few fields"
            );
            continue;
        }
        let Ok(index) = fields[0].parse::<u32>() else {
            tracing::debug!(
                line = line_no + 1,
                text = line,
                "nvidia-smi line has no index"
            );
            continue;
        };
        let numbers = &fields[fields.len() - 4..];
        let model = fields[1..fields.len() - 4].join(",");
        let number = |field: &str| {
            field
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
        };
        gpus.push(GpuSample {
            index,
            class: gpu_class(&model),
            model,
            utilisation: number(numbers[0]).map(|percent| fraction(percent / 100.0)),
            memory_total_mib: number(numbers[1]).map(|mib| mib as u64),
            memory_used_mib: number(numbers[2]).map(|mib| mib as u64),
            power_w: number(numbers[3]),
        });
    }
    gpus.sort_by_key(|gpu| gpu.index);
    gpus
}

/// RAPL package energy counters (`intel-rapl:N`, also used for AMD packages).
struct Rapl {
    zones: Vec<RaplZone>,
    /// When the counters were last read, all of them together.
    last_read: Option<Instant>,
}

/// One top-level RAPL zone.
struct RaplZone {
    energy_path: PathBuf,
    /// The counter's range; it wraps to 0 past this.
    max_range_uj: Option<u64>,
    last_uj: Option<u64>,
}

impl Rapl {
    /// The readable top-level package zones under `root`: `intel-rapl:N`, whose
    /// `name` starts with `package` (subzones `intel-rapl:N:M` such as `core` or
    /// `dram` are parts of a package and would be counted twice, and `psys`
    /// covers the packages too). Zones whose counter cannot be read (missing,
    /// permission denied) are left out.
    fn discover(root: &Path) -> Rapl {
        let mut zones = Vec::new();
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::debug!(root = %root.display(), error = %e, "no powercap: power is not measured");
                return Rapl {
                    zones,
                    last_read: None,
                };
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.strip_prefix("intel-rapl:"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|entry| entry.path())
            .collect();
        dirs.sort();
        for dir in dirs {
            if let Ok(name) = std::fs::read_to_string(dir.join("name"))
                && !name.trim().starts_with("package")
            {
                continue;
            }
            let energy_path = dir.join("energy_uj");
            if let Err(e) = read_u64(&energy_path) {
                tracing::debug!(path = %energy_path.display(), error = %e, "rapl counter unreadable: power is not measured from it");
                continue;
            }
            zones.push(RaplZone {
                energy_path,
                max_range_uj: read_u64(&dir.join("max_energy_range_uj")).ok(),
                last_uj: None,
            });
        }
        Rapl {
            zones,
            last_read: None,
        }
    }

    /// Watts drawn by all packages since the previous read, or `None` on the
    /// first read, with no zones, or when any counter cannot be read or went
    /// backwards without a known range (a partial sum would under-report).
    fn read_watts(&mut self, now: Instant) -> Option<f64> {
        if self.zones.is_empty() {
            return None;
        }
        let elapsed = self
            .last_read
            .map(|then| now.saturating_duration_since(then));
        self.last_read = Some(now);
        let mut total_uj: Option<u64> = Some(0);
        for zone in &mut self.zones {
            let current = match read_u64(&zone.energy_path) {
                Ok(current) => current,
                Err(e) => {
                    tracing::debug!(path = %zone.energy_path.display(), error = %e, "cannot read rapl counter");
                    zone.last_uj = None;
                    total_uj = None;
                    continue;
                }
            };
            let delta = zone
                .last_uj
                .and_then(|previous| energy_delta_uj(previous, current, zone.max_range_uj));
            zone.last_uj = Some(current);
            total_uj = match (total_uj, delta) {
                (Some(total), Some(delta)) => Some(total.saturating_add(delta)),
                _ => None,
            };
        }
        let seconds = elapsed?.as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        Some(total_uj? as f64 / 1e6 / seconds)
    }
}

/// Microjoules counted between two readings of a counter that wraps to 0 after
/// `max_range_uj`. `None` when it went backwards and the range is unknown or
/// smaller than the previous reading (a reset, not a wrap).
fn energy_delta_uj(previous: u64, current: u64, max_range_uj: Option<u64>) -> Option<u64> {
    if current >= previous {
        return Some(current - previous);
    }
    let max = max_range_uj?;
    (previous <= max).then(|| max - previous + current)
}

fn read_u64(path: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh empty directory under the system's temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "suanwang-telemetry-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_zone(root: &Path, zone: &str, name: &str, energy_uj: u64, max_uj: u64) {
        let dir = root.join(zone);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
        std::fs::write(dir.join("max_energy_range_uj"), format!("{max_uj}\n")).unwrap();
    }

    #[test]
    fn telemetry_can_move_to_a_blocking_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<HostTelemetry>();
    }

    #[test]
    fn two_samples_are_sane() {
        let mut telemetry = HostTelemetry::new();
        let cores = std::thread::available_parallelism().unwrap().get();
        for _ in 0..2 {
            let sample = telemetry.sample();
            assert_eq!(sample.source, "host");
            let cpu = sample.cpu.expect("a host sample has its CPU");
            assert_eq!(cpu.cores, cores as u64);
            assert!(
                (0.0..=1.0).contains(&cpu.utilisation),
                "cpu utilisation {}",
                cpu.utilisation
            );
            assert!(cpu.load_1m >= 0.0);
            let memory = sample.memory.expect("a host sample has its memory");
            assert!(memory.total_gib > 0.0);
            assert!(memory.used_gib >= 0.0 && memory.used_gib <= memory.total_gib);
            assert!(
                (0.0..=1.0).contains(&memory.utilisation),
                "memory utilisation {}",
                memory.utilisation
            );
            let power = sample.power.expect("a host sample has its power");
            assert!(
                ["rapl", "nvml", "rapl+nvml", "estimated"].contains(&power.source.as_str()),
                "power source {}",
                power.source
            );
            assert!(power.watts >= 0.0);
            if power.source == "estimated" {
                assert!(power.model.is_some());
            }
        }
        let capacity = telemetry.capacity();
        assert_eq!(capacity["cpu"], cores as u64);
        assert!(capacity.contains_key("mem_gib"));
    }

    #[test]
    fn without_measurement_the_power_is_estimated_and_labelled() {
        let mut telemetry = HostTelemetry::with_options(TelemetryOptions {
            powercap_root: std::env::temp_dir().join("suanwang-telemetry-no-such-powercap"),
            probe_gpus: false,
            power_model: PowerModel {
                idle_w: 50.0,
                ..PowerModel::default()
            },
        });
        let sample = telemetry.sample();
        let power = sample.power.expect("a host sample has its power");
        assert_eq!(power.source, "estimated");
        assert!(power.watts >= 50.0);
        assert!(power.model.unwrap().contains("50 W idle"));
        assert!(sample.gpus.is_empty());
        assert_eq!(sample.gpu_reader.as_deref(), Some("none"));
    }

    #[test]
    fn the_estimate_is_linear_in_use() {
        let model = PowerModel {
            idle_w: 100.0,
            ..PowerModel::default()
        };
        let gpu = |class, utilisation, power_w| GpuSample {
            index: 0,
            model: String::new(),
            class,
            utilisation: Some(utilisation),
            memory_total_mib: None,
            memory_used_mib: None,
            power_w,
        };
        // 100 + 10 × 4 + 0.4 × 10 + 700 × 0.5 + 60 (read) + 0 (unknown model).
        let watts = model.estimate_w(
            4.0,
            10.0,
            &[
                gpu(Some(ResourceClass::H800), 0.5, None),
                gpu(Some(ResourceClass::A800), 1.0, Some(60.0)),
                gpu(None, 1.0, None),
            ],
        );
        assert!((watts - 554.0).abs() < 1e-9, "{watts}");
    }

    #[test]
    fn the_model_follows_a_site_power_table() {
        let table = BTreeMap::from([
            ("cpu".to_string(), 0.012),
            ("mem_gib".to_string(), 0.0005),
            ("h20".to_string(), 0.5),
            ("unknown".to_string(), 9.0),
        ]);
        let model = PowerModel::from_kw_per_unit(&table);
        assert!((model.w_per_busy_core - 12.0).abs() < 1e-9);
        assert!((model.w_per_used_gib - 0.5).abs() < 1e-9);
        assert_eq!(model.gpu_board_w[&ResourceClass::H20], 500.0);
        assert_eq!(model.gpu_board_w[&ResourceClass::H800], 700.0);
    }

    #[test]
    fn gpu_names_map_to_classes() {
        let cases = [
            ("NVIDIA A800-SXM4-80GB", Some(ResourceClass::A800)),
            ("NVIDIA A800 80GB PCIe", Some(ResourceClass::A800)),
            ("NVIDIA H800", Some(ResourceClass::H800)),
            ("NVIDIA H800 PCIe", Some(ResourceClass::H800)),
            ("NVIDIA H20", Some(ResourceClass::H20)),
            ("NVIDIA L40S", Some(ResourceClass::L40S)),
            ("NVIDIA GeForce RTX 4090", Some(ResourceClass::Rtx4090)),
            ("nvidia geforce rtx-4090", Some(ResourceClass::Rtx4090)),
            ("NVIDIA GeForce RTX 4090 D", None),
            ("NVIDIA GeForce RTX 4090 Laptop GPU", None),
            ("NVIDIA H200", Some(ResourceClass::H200)),
            ("NVIDIA H100 80GB HBM3", Some(ResourceClass::H100)),
            ("NVIDIA H100 PCIe", Some(ResourceClass::H100)),
            ("NVIDIA L20", Some(ResourceClass::L20)),
            ("NVIDIA B200", Some(ResourceClass::B200)),
            ("NVIDIA L40", None),
            ("NVIDIA A100-SXM4-80GB", Some(ResourceClass::A100)),
            ("NVIDIA A100 80GB PCIe", Some(ResourceClass::A100)),
            // Other vendors' aliases are no NVIDIA model.
            ("NVIDIA P800", None),
            ("NVIDIA MLU370", None),
            ("Tesla V100-SXM2-32GB", None),
            ("NVIDIA GeForce RTX 3090", None),
            ("NVIDIA", None),
            ("", None),
        ];
        for (name, class) in cases {
            assert_eq!(gpu_class(name), class, "{name:?}");
        }
    }

    /// `npu-smi info` on an Atlas 800T A2 (eight 910B3), as printed by
    /// npu-smi 23.0.rc3; two NPUs kept, and the process table after them.
    const NPU_SMI_910B: &str = "\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                 Version: 23.0.rc3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.7        36                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3161 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 90.5        37                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
| 7     910B3               | Warning       | 88.2        35                0    / 0             |
| 0                         | 0000:42:00.0  | 12          0    / 0          30154/ 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 7       0                 | 2130915       | python3.9                | 27012                   |
+===========================+===============+====================================================+
";

    /// An older `npu-smi info` on an Atlas 300I Pro (310P3), a model the
    /// catalogue lacks.
    const NPU_SMI_310P: &str = "\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 22.0.0                                   Version: 22.0.2                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 1       310P3                 | OK              | NA           45                0     / 0             |
| 0       0                     | 0000:01:00.0    | 0            1650 / 21527                            |
+===============================+=================+======================================================+
";

    #[test]
    fn npu_smi_tables_are_parsed_and_named() {
        let npus = parse_npu_smi(NPU_SMI_910B);
        assert_eq!(
            npus,
            [
                (0, "910B3".to_string()),
                (1, "910B3".to_string()),
                (7, "910B3".to_string())
            ]
        );
        assert!(
            npus.iter()
                .all(|(_, name)| npu_class(name) == Some(ResourceClass::Ascend910B))
        );
        let npus = parse_npu_smi(NPU_SMI_310P);
        assert_eq!(npus, [(1, "310P3".to_string())]);
        assert_eq!(npu_class("310P3"), None);
        assert_eq!(npu_class("910B"), Some(ResourceClass::Ascend910B));
        assert_eq!(npu_class("Ascend910C"), Some(ResourceClass::Ascend910C));
        assert_eq!(
            npu_class("910"),
            None,
            "the first 910 is not in the catalogue"
        );
        assert_eq!(npu_class("4090"), None);
        assert!(parse_npu_smi("").is_empty());
        assert!(parse_npu_smi("npu-smi: command failed\n").is_empty());
    }

    #[test]
    fn unknown_devices_are_named_with_what_to_do() {
        let message = unknown_device("GPU", 3, "NVIDIA RTX PRO 6000 Blackwell");
        assert!(
            message.contains("GPU 3") && message.contains("\"NVIDIA RTX PRO 6000 Blackwell\""),
            "{message}"
        );
        assert!(
            message.contains("[[accelerator]]") && message.contains("--capacity rtxpro6000bla"),
            "{message}"
        );
        let message = unknown_device("NPU", 1, "310P3");
        assert!(message.contains("name = \"x310p3\""), "{message}");
    }

    #[test]
    fn nvidia_smi_csv_is_parsed() {
        let text = "\
0, NVIDIA A800-SXM4-80GB, 35, 81920, 1024, 85.32
1, NVIDIA GeForce RTX 4090, 100, 24564, 23000, 449.10

2, NVIDIA H20, 0, 97871, 0, [N/A]
3, NVIDIA Some, New Model, 7, 1000, 10, 20.5
4, NVIDIA H200, [Not Supported], [N/A], [N/A], [N/A]
garbage line
x, NVIDIA H20, 1, 2, 3, 4
";
        let gpus = parse_nvidia_smi(text);
        assert_eq!(gpus.len(), 5, "{gpus:?}");
        assert_eq!(
            gpus[0],
            GpuSample {
                index: 0,
                model: "NVIDIA A800-SXM4-80GB".into(),
                class: Some(ResourceClass::A800),
                utilisation: Some(0.35),
                memory_total_mib: Some(81920),
                memory_used_mib: Some(1024),
                power_w: Some(85.32),
            }
        );
        assert_eq!(gpus[1].class, Some(ResourceClass::Rtx4090));
        assert_eq!(gpus[1].utilisation, Some(1.0));
        assert_eq!(gpus[1].power_w, Some(449.1));
        assert_eq!(gpus[2].class, Some(ResourceClass::H20));
        assert_eq!(gpus[2].power_w, None);
        assert_eq!(gpus[2].memory_total_mib, Some(97871));
        assert_eq!(gpus[3].model, "NVIDIA Some,New Model");
        assert_eq!(gpus[3].class, None);
        // An H200: in the catalogue now (it was not when this capture was taken).
        assert_eq!(gpus[4].class, Some(ResourceClass::H200));
        assert_eq!(gpus[4].utilisation, None);
        assert_eq!(gpus[4].memory_total_mib, None);

        let json = serde_json::to_value(gpus[2].to_doc()).unwrap();
        assert_eq!(json["class"], "h20");
        assert_eq!(json["power_w"], serde_json::Value::Null);
        let json = serde_json::to_value(gpus[3].to_doc()).unwrap();
        assert!(json.get("class").is_none());
        assert!(parse_nvidia_smi("").is_empty());
    }

    #[test]
    fn nvidia_smi_is_run_and_its_failures_mean_no_gpus() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("smi");
        let script = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let works = script(
            "works",
            "case \"$*\" in *index,name,utilization.gpu*csv,noheader,nounits*) \
             echo '0, NVIDIA H20, 12, 97871, 2048, 61.5' ;; *) exit 2 ;; esac",
        );
        // A script just written can be "text file busy" for a moment while another
        // test's child, forked meanwhile, still holds it open: retry a little.
        let mut gpus = run_nvidia_smi(&works);
        for _ in 0..20 {
            if !gpus.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            gpus = run_nvidia_smi(&works);
        }
        assert_eq!(gpus.len(), 1, "{gpus:?}");
        assert_eq!(gpus[0].class, Some(ResourceClass::H20));
        assert_eq!(gpus[0].power_w, Some(61.5));
        let fails = script("fails", "echo 'NVIDIA-SMI has failed'; exit 9");
        assert!(run_nvidia_smi(&fails).is_empty());
        assert!(run_nvidia_smi(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn energy_counters_wrap() {
        assert_eq!(energy_delta_uj(100, 350, Some(1000)), Some(250));
        assert_eq!(energy_delta_uj(900, 100, Some(1000)), Some(200));
        assert_eq!(energy_delta_uj(1000, 0, Some(1000)), Some(0));
        // Typical package range, 2^38 µJ ≈ 262 kJ.
        let max = 262_143_328_850;
        assert_eq!(
            energy_delta_uj(max - 5_000_000, 15_000_000, Some(max)),
            Some(20_000_000)
        );
        // Backwards with no range, or past the range: a reset, not a wrap.
        assert_eq!(energy_delta_uj(900, 100, None), None);
        assert_eq!(energy_delta_uj(2000, 100, Some(1000)), None);
    }

    #[test]
    fn rapl_reads_packages_only_and_handles_wraps() {
        let root = temp_dir("rapl");
        write_zone(&root, "intel-rapl:0", "package-0", 1_000_000, 200_000_000);
        write_zone(&root, "intel-rapl:1", "package-1", 9_000_000, 10_000_000);
        // Subzones, other zone kinds and other drivers are not counted.
        write_zone(&root, "intel-rapl:0:0", "core", 0, 10_000_000);
        write_zone(&root, "intel-rapl:2", "psys", 0, 10_000_000);
        write_zone(&root, "intel-rapl-mmio:0", "package-0", 0, 10_000_000);
        let mut rapl = Rapl::discover(&root);
        assert_eq!(rapl.zones.len(), 2);

        let start = Instant::now();
        assert_eq!(rapl.read_watts(start), None, "the first read has no delta");
        // Package 0 counts 100 J; package 1 wraps from 9 J to 4 J past a 10 J
        // range, so 5 J; over 2 s that is 52.5 W.
        write_zone(&root, "intel-rapl:0", "package-0", 101_000_000, 200_000_000);
        write_zone(&root, "intel-rapl:1", "package-1", 4_000_000, 10_000_000);
        write_zone(&root, "intel-rapl:0:0", "core", 999_000_000, 1_000_000_000);
        let watts = rapl.read_watts(start + Duration::from_secs(2)).unwrap();
        assert!((watts - 52.5).abs() < 1e-9, "{watts}");

        // A counter that disappears stops the measurement rather than halving it.
        std::fs::remove_file(root.join("intel-rapl:1/energy_uj")).unwrap();
        assert_eq!(rapl.read_watts(start + Duration::from_secs(3)), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_or_empty_powercap_measures_nothing() {
        let root = temp_dir("empty");
        assert!(Rapl::discover(&root).zones.is_empty());
        assert!(Rapl::discover(&root.join("absent")).zones.is_empty());
        let mut rapl = Rapl::discover(&root.join("absent"));
        assert_eq!(rapl.read_watts(Instant::now()), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
