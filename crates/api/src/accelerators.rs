//! The accelerator catalogue on the wire: `GET /v1/accelerators` lists the models
//! the control plane knows, `PUT /v1/accelerators/{name}` adds one (its body is
//! [`AcceleratorSpec`], the same table as a topology's or site file's
//! `[[accelerator]]`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use suanwang_model::AcceleratorSpec;

/// One accelerator model of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorDoc {
    /// The class name jobs and sites use, e.g. `h100`.
    pub name: String,
    /// Maker, e.g. `NVIDIA`.
    pub vendor: String,
    /// Model as the vendor names it, e.g. `H100 SXM5 80GB`.
    pub model: String,
    /// Architecture family, e.g. `nvidia-hopper`, `ascend-910`.
    pub family: String,
    /// Device memory per card, GiB; absent where the vendor publishes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
    /// Dense (not sparse) FP16/BF16 tensor throughput per card, TFLOPS; absent
    /// where the vendor publishes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16_tflops: Option<f64>,
    /// Where the figures come from, or why one is absent.
    pub source: String,
    /// Further spellings accepted for the name (normalised: lower-case letters
    /// and digits).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether the model is built in (else a topology, site file or operator added
    /// it).
    pub builtin: bool,
}

impl AcceleratorDoc {
    /// The document of a registered class.
    pub fn of(class: suanwang_model::ResourceClass) -> AcceleratorDoc {
        let info = class.info();
        AcceleratorDoc {
            name: info.name.to_string(),
            vendor: info.vendor.to_string(),
            model: info.model.to_string(),
            family: info.family.to_string(),
            memory_gib: info.memory_gib,
            fp16_tflops: info.fp16_tflops,
            source: info.source.to_string(),
            aliases: info.aliases.iter().map(|a| a.to_string()).collect(),
            builtin: info.builtin,
        }
    }

    /// Every accelerator this process knows, in index order.
    pub fn all() -> Vec<AcceleratorDoc> {
        suanwang_model::ResourceClass::all()
            .filter(|c| c.is_accelerator())
            .map(AcceleratorDoc::of)
            .collect()
    }
}
