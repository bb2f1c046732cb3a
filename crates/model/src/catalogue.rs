//! The accelerator catalogue: what each resource class is (vendor, model, memory,
//! dense FP16/BF16 throughput, family, and where the figures come from), and the
//! process-wide registry that gives every class its dense index.
//!
//! The built-in models ([`BUILTIN`]) hold indices `0..N_BUILTIN` in every process;
//! CPU cores and memory are indices 0 and 1. A topology's or site file's
//! `[[accelerator]]` table, or an operator through the API, registers further models
//! ([`register`]) at the next free index, up to [`N_CLASSES`]. The registry only
//! grows: a class, once registered, keeps its index and its figures for the life of
//! the process, so a [`ResourceClass`] never dangles and readers need no lock.
//!
//! This is the crate's one piece of global state. It holds no IO: the callers
//! (topology parsing, the server, the agent) decide what to register.

use crate::resource::{N_CLASSES, ResourceClass};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// What a class counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassKind {
    /// CPU cores.
    Cpu,
    /// Memory, GiB.
    Memory,
    /// Accelerator cards (GPU, NPU, DCU, MLU) of one model.
    Accelerator,
}

/// What the catalogue says about one resource class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassInfo {
    /// Canonical name used in files, flags and JSON, e.g. `h100`.
    pub name: &'static str,
    /// What a unit is.
    pub kind: ClassKind,
    /// Maker, e.g. `NVIDIA` (empty for CPU and memory).
    pub vendor: &'static str,
    /// Model as the vendor names it, e.g. `H100 SXM5 80GB`.
    pub model: &'static str,
    /// Architecture family, e.g. `nvidia-hopper`, `ascend-910`.
    pub family: &'static str,
    /// Device memory per card, GiB (`None` where the vendor publishes none).
    pub memory_gib: Option<f64>,
    /// Dense (not sparse) FP16/BF16 tensor throughput per card, TFLOPS (`None`
    /// where the vendor publishes none).
    pub fp16_tflops: Option<f64>,
    /// Where the figures come from: a datasheet's name and address, or why a
    /// figure is absent.
    pub source: &'static str,
    /// Further spellings [`ResourceClass::parse`] accepts, normalised (lower-case
    /// letters and digits only).
    pub aliases: &'static [&'static str],
    /// Whether the model is in the built-in catalogue (else it was registered at
    /// run time).
    pub builtin: bool,
}

#[allow(clippy::too_many_arguments)] // one argument per column of the table
const fn accelerator(
    name: &'static str,
    vendor: &'static str,
    model: &'static str,
    family: &'static str,
    memory_gib: Option<f64>,
    fp16_tflops: Option<f64>,
    source: &'static str,
    aliases: &'static [&'static str],
) -> ClassInfo {
    ClassInfo {
        name,
        kind: ClassKind::Accelerator,
        vendor,
        model,
        family,
        memory_gib,
        fp16_tflops,
        source,
        aliases,
        builtin: true,
    }
}

/// Number of built-in classes.
pub const N_BUILTIN: usize = 18;

/// The built-in catalogue, in index order (the order of the constants on
/// [`ResourceClass`]). Throughput is the dense FP16/BF16 tensor figure; where a
/// vendor quotes only a figure "with sparsity", the dense one is half of it, and
/// the source says so.
pub static BUILTIN: [ClassInfo; N_BUILTIN] = [
    ClassInfo {
        name: "cpu",
        kind: ClassKind::Cpu,
        vendor: "",
        model: "CPU core",
        family: "cpu",
        memory_gib: None,
        fp16_tflops: None,
        source: "a logical CPU as the operating system counts it",
        aliases: &["cpus", "core", "cores"],
        builtin: true,
    },
    ClassInfo {
        name: "mem_gib",
        kind: ClassKind::Memory,
        vendor: "",
        model: "memory, GiB",
        family: "memory",
        memory_gib: None,
        fp16_tflops: None,
        source: "host memory in whole GiB",
        aliases: &["mem", "memory", "gib"],
        builtin: true,
    },
    accelerator(
        "a800",
        "NVIDIA",
        "A800 SXM4 80GB",
        "nvidia-ampere",
        Some(80.0),
        Some(312.0),
        "NVIDIA A800 Tensor Core GPU product brief (https://www.nvidia.cn/data-center/a800/): \
         the A100's Tensor Cores (BF16/FP16 312 TFLOPS dense, 624 with sparsity) with NVLink \
         cut to 400 GB/s",
        &["nvidiaa800", "a800sxm480gb", "a80080gbpcie"],
    ),
    accelerator(
        "h800",
        "NVIDIA",
        "H800 SXM5 80GB",
        "nvidia-hopper",
        Some(80.0),
        Some(989.4),
        "NVIDIA H800 Tensor Core GPU product brief (https://www.nvidia.cn/data-center/h800/): \
         the H100 SXM5's Tensor Cores (BF16/FP16 1,979 TFLOPS with sparsity, 989.4 dense) \
         with NVLink cut to 400 GB/s and FP64 cut",
        &["nvidiah800"],
    ),
    accelerator(
        "h20",
        "NVIDIA",
        "H20 96GB",
        "nvidia-hopper",
        Some(96.0),
        Some(148.0),
        "NVIDIA HGX H20 specification as circulated by NVIDIA's server partners (NVIDIA \
         publishes no public datasheet): BF16/FP16 148 TFLOPS dense (296 with sparsity), \
         96 GB HBM3",
        &["nvidiah20"],
    ),
    accelerator(
        "l40s",
        "NVIDIA",
        "L40S 48GB",
        "nvidia-ada",
        Some(48.0),
        Some(362.05),
        "NVIDIA L40S GPU datasheet (https://www.nvidia.com/en-us/data-center/l40s/): \
         BF16/FP16 Tensor 362.05 TFLOPS dense, 733 with sparsity; 48 GB GDDR6",
        &["nvidial40s"],
    ),
    accelerator(
        "rtx4090",
        "NVIDIA",
        "GeForce RTX 4090 24GB",
        "nvidia-ada",
        Some(24.0),
        Some(165.2),
        "NVIDIA Ada Lovelace GPU architecture whitepaper v2.1, RTX 4090: FP16/BF16 Tensor \
         with FP32 accumulate 165.2 TFLOPS dense (330.3 with FP16 accumulate); 24 GB GDDR6X",
        &["4090", "geforcertx4090", "nvidiageforcertx4090"],
    ),
    accelerator(
        "ascend910b",
        "Huawei",
        "Ascend 910B",
        "ascend-910",
        Some(64.0),
        None,
        "Huawei publishes no datasheet for the bare NPU: 64 GB HBM2e per NPU as npu-smi \
         reports it on Atlas 800T A2 servers (65536 MB); FP16 throughput differs by bin \
         (910B1 to 910B4) and is not published by Huawei, so none is given",
        &[
            "910b",
            "huaweiascend910b",
            "910b1",
            "910b2",
            "910b3",
            "910b4",
        ],
    ),
    accelerator(
        "a100",
        "NVIDIA",
        "A100 SXM4 80GB",
        "nvidia-ampere",
        Some(80.0),
        Some(312.0),
        "NVIDIA A100 Tensor Core GPU datasheet \
         (https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): \
         BF16/FP16 Tensor 312 TFLOPS dense, 624 with sparsity",
        &["nvidiaa100", "a100sxm480gb", "a10080gbpcie"],
    ),
    accelerator(
        "h100",
        "NVIDIA",
        "H100 SXM5 80GB",
        "nvidia-hopper",
        Some(80.0),
        Some(989.4),
        "NVIDIA H100 Tensor Core GPU datasheet (https://www.nvidia.com/en-us/data-center/h100/): \
         BF16/FP16 Tensor 1,979 TFLOPS with sparsity for SXM5, 989.4 dense (the PCIe card: \
         756 dense)",
        &["nvidiah100"],
    ),
    accelerator(
        "h200",
        "NVIDIA",
        "H200 SXM 141GB",
        "nvidia-hopper",
        Some(141.0),
        Some(989.4),
        "NVIDIA H200 Tensor Core GPU datasheet (https://www.nvidia.com/en-us/data-center/h200/): \
         BF16/FP16 Tensor 1,979 TFLOPS with sparsity for SXM, 989.4 dense; 141 GB HBM3e",
        &["nvidiah200"],
    ),
    accelerator(
        "l20",
        "NVIDIA",
        "L20 48GB",
        "nvidia-ada",
        Some(48.0),
        Some(119.5),
        "NVIDIA L20 specification as circulated by NVIDIA's server partners (NVIDIA publishes \
         no public datasheet): FP16/BF16 Tensor 119.5 TFLOPS dense (239 with sparsity), \
         48 GB GDDR6",
        &["nvidial20"],
    ),
    accelerator(
        "b200",
        "NVIDIA",
        "B200 (HGX B200)",
        "nvidia-blackwell",
        Some(180.0),
        Some(2250.0),
        "NVIDIA HGX B200 datasheet (https://www.nvidia.com/en-us/data-center/hgx/): FP16/BF16 \
         Tensor 36 PFLOPS with sparsity per 8 GPUs, so 2,250 TFLOPS dense per GPU; 1,440 GB \
         HBM3e per 8 GPUs",
        &["nvidiab200"],
    ),
    accelerator(
        "ascend910c",
        "Huawei",
        "Ascend 910C",
        "ascend-910",
        None,
        None,
        "not published by Huawei: press reports describe two 910B-class dies in one package; \
         neither memory nor throughput is given here",
        &["910c", "huaweiascend910c"],
    ),
    accelerator(
        "kunlunp800",
        "Kunlunxin",
        "Kunlun P800",
        "kunlun",
        None,
        None,
        "Kunlunxin (Baidu) publishes no public datasheet for the P800: memory and FP16 \
         throughput are not given here",
        &["p800", "kunlunxinp800"],
    ),
    accelerator(
        "hygonk100",
        "Hygon",
        "DCU K100",
        "hygon-dcu",
        None,
        None,
        "Hygon publishes no public datasheet for the K100: press reports of the K100 AI \
         edition (64 GB HBM2e, about 196 TFLOPS FP16) are not vendor figures and are not used",
        &["k100", "dcuk100", "hygondcuk100"],
    ),
    accelerator(
        "mlu370",
        "Cambricon",
        "MLU370-X8",
        "cambricon",
        Some(48.0),
        Some(96.0),
        "Cambricon MLU370-X8 launch announcement (2022-03, https://www.cambricon.com/): \
         FP16 and BF16 96 TFLOPS, 48 GB LPDDR5, two MLU370 chips per card (the MLU370-S4 and \
         X4 cards differ)",
        &["mlu370x8", "cambriconmlu370", "cambriconmlu370x8"],
    ),
    accelerator(
        "mi300x",
        "AMD",
        "Instinct MI300X",
        "amd-cdna3",
        Some(192.0),
        Some(1307.4),
        "AMD Instinct MI300X data sheet (https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html): \
         FP16/BF16 1,307.4 TFLOPS dense, 2,614.9 with sparsity; 192 GB HBM3",
        &["amdmi300x", "instinctmi300x", "amdinstinctmi300x"],
    ),
];

/// A model missing from the built-in catalogue, as declared in a topology or site
/// file (`[[accelerator]]`) or sent to `PUT /v1/accelerators/{name}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorSpec {
    /// Canonical name: lower-case letters, digits, `_` or `-`, starting with a
    /// letter, e.g. `mlu590`.
    pub name: String,
    /// Maker, e.g. `Cambricon`.
    pub vendor: String,
    /// Model as the vendor names it (default: the name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Architecture family, e.g. `cambricon`, `nvidia-hopper`.
    pub family: String,
    /// Device memory per card, GiB.
    pub memory_gib: f64,
    /// Dense FP16/BF16 throughput per card, TFLOPS, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16_tflops: Option<f64>,
    /// Where the figures come from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Further spellings accepted for the name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// Why a model could not be registered. Each variant names the field or the class
/// at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogueError {
    /// A field breaks a rule.
    #[error("accelerator {name:?}: {field}: {message}")]
    Invalid {
        /// The model's name as given.
        name: String,
        /// The field at fault, e.g. `memory_gib`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The name or an alias is a built-in class's.
    #[error(
        "accelerator {name:?}: {field}: {spelling:?} is the built-in class {builtin:?} ({vendor} {model}); use it without declaring it, or choose another name"
    )]
    BuiltIn {
        /// The model's name as given.
        name: String,
        /// `name` or `aliases`.
        field: &'static str,
        /// The spelling that collides.
        spelling: String,
        /// The built-in class it names.
        builtin: &'static str,
        /// Its vendor.
        vendor: &'static str,
        /// Its model.
        model: &'static str,
    },
    /// Another declaration registered this name (or spelling) with other figures.
    #[error(
        "accelerator {name:?}: {field}: {spelling:?} is already registered as {existing:?} with other figures ({detail}); one name, one model"
    )]
    Conflict {
        /// The model's name as given.
        name: String,
        /// `name` or `aliases`.
        field: &'static str,
        /// The spelling that collides.
        spelling: String,
        /// The class registered under it.
        existing: &'static str,
        /// What differs.
        detail: String,
    },
    /// Every index is taken.
    #[error(
        "accelerator {name:?}: the catalogue is full ({limit} classes, {builtin} built in); a process can register at most {} models beyond the built-in ones",
        limit - builtin
    )]
    Full {
        /// The model's name as given.
        name: String,
        /// [`N_CLASSES`].
        limit: usize,
        /// [`N_BUILTIN`].
        builtin: usize,
    },
}

const N_EXTRA: usize = N_CLASSES - N_BUILTIN;

// Registered models live in write-once slots: a slot is filled before the count
// that makes it visible is raised, so a reader that sees index i sees slot i.
static EXTRA: [OnceLock<&'static ClassInfo>; N_EXTRA] = [const { OnceLock::new() }; N_EXTRA];
static N_REGISTERED: AtomicUsize = AtomicUsize::new(0);
static REGISTERING: Mutex<()> = Mutex::new(());

/// Number of classes known to this process (built in and registered).
#[inline]
pub fn len() -> usize {
    N_BUILTIN + N_REGISTERED.load(Ordering::Acquire)
}

/// What the catalogue says about `class`.
pub fn info(class: ResourceClass) -> &'static ClassInfo {
    let index = class.index();
    if index < N_BUILTIN {
        &BUILTIN[index]
    } else {
        EXTRA[index - N_BUILTIN]
            .get()
            .expect("a class is made only by registering it")
    }
}

/// The lookup key of a spelling: lower-case ASCII letters and digits only.
pub fn key(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn name_matches(name: &str, key: &str) -> bool {
    let mut normalised = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase());
    key.chars().all(|k| normalised.next() == Some(k)) && normalised.next().is_none()
}

/// The registered class whose name or alias has lookup key `key`.
pub(crate) fn lookup(key: &str) -> Option<ResourceClass> {
    if key.is_empty() {
        return None;
    }
    ResourceClass::all().find(|class| {
        let info = info(*class);
        name_matches(info.name, key) || info.aliases.contains(&key)
    })
}

fn invalid(
    spec: &AcceleratorSpec,
    field: &'static str,
    message: impl Into<String>,
) -> CatalogueError {
    CatalogueError::Invalid {
        name: spec.name.clone(),
        field,
        message: message.into(),
    }
}

/// Checks a declaration's fields, without registering it.
pub fn validate(spec: &AcceleratorSpec) -> Result<(), CatalogueError> {
    let name = &spec.name;
    if name.is_empty() || name.len() > 32 {
        return Err(invalid(spec, "name", "must be 1 to 32 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(invalid(
            spec,
            "name",
            "must be lower-case letters, digits, '_' or '-', starting with a letter (e.g. mlu590)",
        ));
    }
    for (field, value) in [("vendor", &spec.vendor), ("family", &spec.family)] {
        if value.trim().is_empty() || value.len() > 64 {
            return Err(invalid(spec, field, "must be 1 to 64 characters"));
        }
    }
    if spec.model.len() > 64 {
        return Err(invalid(spec, "model", "must be at most 64 characters"));
    }
    if spec.source.len() > 500 {
        return Err(invalid(spec, "source", "must be at most 500 characters"));
    }
    if !(spec.memory_gib.is_finite() && spec.memory_gib > 0.0 && spec.memory_gib <= 4096.0) {
        return Err(invalid(
            spec,
            "memory_gib",
            format!("{} GiB is out of range (0, 4096]", spec.memory_gib),
        ));
    }
    if let Some(tflops) = spec.fp16_tflops
        && !(tflops.is_finite() && tflops > 0.0 && tflops <= 100_000.0)
    {
        return Err(invalid(
            spec,
            "fp16_tflops",
            format!("{tflops} TFLOPS is out of range (0, 100000]"),
        ));
    }
    if spec.aliases.len() > 8 {
        return Err(invalid(spec, "aliases", "at most 8 aliases"));
    }
    for alias in &spec.aliases {
        let k = key(alias);
        if k.is_empty() || k.len() > 32 || !k.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid(
                spec,
                "aliases",
                format!("{alias:?} must hold 1 to 32 letters and digits, starting with a letter"),
            ));
        }
    }
    Ok(())
}

fn to_info(spec: &AcceleratorSpec) -> ClassInfo {
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let mut aliases: Vec<&'static str> = Vec::new();
    for alias in &spec.aliases {
        let k = key(alias);
        if k != key(&spec.name) && !aliases.contains(&k.as_str()) {
            aliases.push(leak(&k));
        }
    }
    ClassInfo {
        name: leak(&spec.name),
        kind: ClassKind::Accelerator,
        vendor: leak(spec.vendor.trim()),
        model: leak(if spec.model.trim().is_empty() {
            &spec.name
        } else {
            spec.model.trim()
        }),
        family: leak(spec.family.trim()),
        memory_gib: Some(spec.memory_gib),
        fp16_tflops: spec.fp16_tflops,
        source: leak(if spec.source.trim().is_empty() {
            "declared without a source"
        } else {
            spec.source.trim()
        }),
        aliases: Box::leak(aliases.into_boxed_slice()),
        builtin: false,
    }
}

/// Whether `spec` describes the registered class `existing` (same name and
/// figures): declaring a model twice the same way is no conflict.
fn same(spec: &AcceleratorSpec, existing: &ClassInfo) -> Option<String> {
    let vendor = spec.vendor.trim();
    let model = if spec.model.trim().is_empty() {
        spec.name.as_str()
    } else {
        spec.model.trim()
    };
    let mut differs = Vec::new();
    if spec.name != existing.name {
        differs.push(format!("name {:?}", existing.name));
    }
    if vendor != existing.vendor {
        differs.push(format!("vendor {:?}", existing.vendor));
    }
    if model != existing.model {
        differs.push(format!("model {:?}", existing.model));
    }
    if spec.family.trim() != existing.family {
        differs.push(format!("family {:?}", existing.family));
    }
    if Some(spec.memory_gib) != existing.memory_gib {
        differs.push(format!("memory_gib {:?}", existing.memory_gib));
    }
    if spec.fp16_tflops != existing.fp16_tflops {
        differs.push(format!("fp16_tflops {:?}", existing.fp16_tflops));
    }
    (!differs.is_empty()).then(|| differs.join(", "))
}

/// Registers a model missing from the built-in catalogue and returns its class.
/// Registering the same model again (same name and figures) returns the class it
/// already has; a name or alias that is a built-in class's, or another model's,
/// is refused, as is a model past the [`N_CLASSES`] bound.
pub fn register(spec: &AcceleratorSpec) -> Result<ResourceClass, CatalogueError> {
    validate(spec)?;
    let _guard = REGISTERING.lock().unwrap_or_else(|e| e.into_inner());
    let spellings = std::iter::once(("name", spec.name.as_str()))
        .chain(spec.aliases.iter().map(|a| ("aliases", a.as_str())));
    let mut existing_self = None;
    for (field, spelling) in spellings {
        let Some(class) = lookup(&key(spelling)) else {
            continue;
        };
        let info = info(class);
        if info.builtin {
            return Err(CatalogueError::BuiltIn {
                name: spec.name.clone(),
                field,
                spelling: spelling.to_string(),
                builtin: info.name,
                vendor: info.vendor,
                model: info.model,
            });
        }
        if let Some(detail) = same(spec, info) {
            return Err(CatalogueError::Conflict {
                name: spec.name.clone(),
                field,
                spelling: spelling.to_string(),
                existing: info.name,
                detail,
            });
        }
        existing_self = Some(class);
    }
    if let Some(class) = existing_self {
        return Ok(class);
    }
    let registered = N_REGISTERED.load(Ordering::Acquire);
    if registered == N_EXTRA {
        return Err(CatalogueError::Full {
            name: spec.name.clone(),
            limit: N_CLASSES,
            builtin: N_BUILTIN,
        });
    }
    let info: &'static ClassInfo = Box::leak(Box::new(to_info(spec)));
    EXTRA[registered]
        .set(info)
        .expect("slots are filled in order under the lock");
    N_REGISTERED.store(registered + 1, Ordering::Release);
    Ok(ResourceClass((N_BUILTIN + registered) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> AcceleratorSpec {
        AcceleratorSpec {
            name: name.into(),
            vendor: "Cambricon".into(),
            model: String::new(),
            family: "cambricon".into(),
            memory_gib: 64.0,
            fp16_tflops: Some(314.0),
            source: String::new(),
            aliases: Vec::new(),
        }
    }

    #[test]
    fn builtin_constants_match_the_table() {
        let named = [
            (ResourceClass::Cpu, "cpu"),
            (ResourceClass::Memory, "mem_gib"),
            (ResourceClass::A800, "a800"),
            (ResourceClass::H800, "h800"),
            (ResourceClass::H20, "h20"),
            (ResourceClass::L40S, "l40s"),
            (ResourceClass::Rtx4090, "rtx4090"),
            (ResourceClass::Ascend910B, "ascend910b"),
            (ResourceClass::A100, "a100"),
            (ResourceClass::H100, "h100"),
            (ResourceClass::H200, "h200"),
            (ResourceClass::L20, "l20"),
            (ResourceClass::B200, "b200"),
            (ResourceClass::Ascend910C, "ascend910c"),
            (ResourceClass::KunlunP800, "kunlunp800"),
            (ResourceClass::HygonK100, "hygonk100"),
            (ResourceClass::Mlu370, "mlu370"),
            (ResourceClass::Mi300X, "mi300x"),
        ];
        assert_eq!(named.len(), N_BUILTIN);
        for (class, name) in named {
            assert_eq!(class.name(), name);
            assert!(class.info().builtin);
        }
        assert!(!ResourceClass::Cpu.is_accelerator() && !ResourceClass::Memory.is_accelerator());
        assert!(ResourceClass::builtin().skip(2).all(|c| c.is_accelerator()
            && c.info().kind == ClassKind::Accelerator
            && !c.info().source.is_empty()
            && !c.info().family.is_empty()));
    }

    #[test]
    fn every_builtin_spelling_names_one_class() {
        let mut seen = std::collections::HashMap::new();
        for class in ResourceClass::builtin() {
            let info = class.info();
            for spelling in
                std::iter::once(key(info.name)).chain(info.aliases.iter().map(|a| a.to_string()))
            {
                assert_eq!(key(&spelling), spelling, "aliases are stored normalised");
                if let Some(other) = seen.insert(spelling.clone(), info.name) {
                    panic!("{spelling:?} names both {other} and {}", info.name);
                }
            }
        }
    }

    #[test]
    fn a_model_is_registered_once_and_parsed_by_every_spelling() {
        let mut s = spec("mlu590-unit");
        s.aliases = vec!["MLU-590 unit".into()];
        let class = register(&s).unwrap();
        assert!(class.index() >= N_BUILTIN && class.is_accelerator());
        assert_eq!(ResourceClass::parse("mlu590-unit"), Some(class));
        assert_eq!(ResourceClass::parse("MLU590 UNIT"), Some(class));
        assert_eq!(class.info().model, "mlu590-unit");
        assert!(!class.info().builtin);
        assert!(ResourceClass::all().any(|c| c == class));
        assert_eq!(ResourceClass::from_index(class.index()), Some(class));
        // The same declaration again is the same class.
        assert_eq!(register(&s).unwrap(), class);
        // Other figures under the same name are refused, naming what differs.
        let mut other = s.clone();
        other.memory_gib = 32.0;
        let err = register(&other).unwrap_err();
        assert!(matches!(err, CatalogueError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("memory_gib"), "{err}");
        // A new name whose alias is taken is refused too.
        let mut alias = spec("mlu590b-unit");
        alias.aliases = vec!["mlu590unit".into()];
        let err = register(&alias).unwrap_err().to_string();
        assert!(
            err.contains("aliases") && err.contains("mlu590-unit"),
            "{err}"
        );
    }

    #[test]
    fn built_in_names_and_bad_fields_are_refused() {
        let err = register(&spec("h100")).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogueError::BuiltIn {
                    builtin: "h100",
                    ..
                }
            ),
            "{err}"
        );
        let mut s = spec("my-npu-unit");
        s.aliases = vec!["4090".into()];
        assert!(matches!(
            register(&s).unwrap_err(),
            CatalogueError::Invalid {
                field: "aliases",
                ..
            }
        ));
        s.aliases = vec!["GeForce RTX 4090".into()];
        let err = register(&s).unwrap_err().to_string();
        assert!(err.contains("rtx4090") && err.contains("aliases"), "{err}");
        for (field, change) in [
            (
                "name",
                Box::new(|s: &mut AcceleratorSpec| s.name = "Bad Name".into())
                    as Box<dyn Fn(&mut AcceleratorSpec)>,
            ),
            (
                "name",
                Box::new(|s: &mut AcceleratorSpec| s.name = "9xpu".into()),
            ),
            (
                "vendor",
                Box::new(|s: &mut AcceleratorSpec| s.vendor = " ".into()),
            ),
            (
                "family",
                Box::new(|s: &mut AcceleratorSpec| s.family = String::new()),
            ),
            (
                "memory_gib",
                Box::new(|s: &mut AcceleratorSpec| s.memory_gib = 0.0),
            ),
            (
                "memory_gib",
                Box::new(|s: &mut AcceleratorSpec| s.memory_gib = f64::NAN),
            ),
            (
                "fp16_tflops",
                Box::new(|s: &mut AcceleratorSpec| s.fp16_tflops = Some(-1.0)),
            ),
        ] {
            let mut s = spec("fine-unit");
            change(&mut s);
            match register(&s) {
                Err(CatalogueError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(
            ResourceClass::parse("fine-unit"),
            None,
            "nothing registered"
        );
    }
}
