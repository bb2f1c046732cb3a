//! Resource classes: CPU cores, memory, and accelerators by model.
//!
//! The set is closed and small so that per-class data fits in a fixed array
//! ([`ClassMap`]) and the scheduler can index it without hashing. Adding a model is
//! one variant here plus its row in [`ResourceClass::ALL`].

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// Number of resource classes.
pub const N_CLASSES: usize = 8;

/// A kind of resource a site offers and a job asks for, counted in whole units
/// (cores, GiB, cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceClass {
    /// CPU cores.
    Cpu,
    /// Memory in GiB.
    Memory,
    /// NVIDIA A800 (80 GB), the export variant of the A100.
    A800,
    /// NVIDIA H800 (80 GB), the export variant of the H100.
    H800,
    /// NVIDIA H20 (96 GB), inference-oriented Hopper.
    H20,
    /// NVIDIA L40S (48 GB).
    L40S,
    /// NVIDIA GeForce RTX 4090 (24 GB).
    Rtx4090,
    /// Huawei Ascend 910B NPU (64 GB).
    Ascend910B,
}

impl ResourceClass {
    /// Every class, in index order.
    pub const ALL: [ResourceClass; N_CLASSES] = [
        ResourceClass::Cpu,
        ResourceClass::Memory,
        ResourceClass::A800,
        ResourceClass::H800,
        ResourceClass::H20,
        ResourceClass::L40S,
        ResourceClass::Rtx4090,
        ResourceClass::Ascend910B,
    ];

    /// Dense index of the class, `0..N_CLASSES`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The canonical name used in files, flags and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            ResourceClass::Cpu => "cpu",
            ResourceClass::Memory => "mem_gib",
            ResourceClass::A800 => "a800",
            ResourceClass::H800 => "h800",
            ResourceClass::H20 => "h20",
            ResourceClass::L40S => "l40s",
            ResourceClass::Rtx4090 => "rtx4090",
            ResourceClass::Ascend910B => "ascend910b",
        }
    }

    /// Whether this class is an accelerator (GPU or NPU).
    pub const fn is_accelerator(self) -> bool {
        !matches!(self, ResourceClass::Cpu | ResourceClass::Memory)
    }

    /// Parses a class name, accepting common spellings (`A800`, `RTX-4090`, `910b`,
    /// `memory`).
    pub fn parse(text: &str) -> Option<ResourceClass> {
        let key: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match key.as_str() {
            "cpu" | "cpus" | "core" | "cores" => ResourceClass::Cpu,
            "mem" | "memgib" | "memory" | "gib" => ResourceClass::Memory,
            "a800" | "nvidiaa800" => ResourceClass::A800,
            "h800" | "nvidiah800" => ResourceClass::H800,
            "h20" | "nvidiah20" => ResourceClass::H20,
            "l40s" | "nvidial40s" => ResourceClass::L40S,
            "rtx4090" | "4090" | "geforcertx4090" => ResourceClass::Rtx4090,
            "ascend910b" | "910b" | "huaweiascend910b" => ResourceClass::Ascend910B,
            _ => return None,
        })
    }

    /// The accepted names, for error messages.
    pub fn known_names() -> String {
        ResourceClass::ALL.map(|c| c.name()).join(", ")
    }
}

impl fmt::Display for ResourceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ResourceClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ResourceClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ResourceClass::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown resource class {text:?} (known: {})",
                ResourceClass::known_names()
            ))
        })
    }
}

/// A value per resource class, stored densely. Serialised as a map from class name
/// to value that leaves out default (zero) entries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassMap<T>(pub [T; N_CLASSES]);

impl<T: Copy + Default> Default for ClassMap<T> {
    fn default() -> Self {
        ClassMap([T::default(); N_CLASSES])
    }
}

impl<T: Copy> ClassMap<T> {
    /// The value for `class`.
    pub fn get(&self, class: ResourceClass) -> T {
        self.0[class.index()]
    }
    /// Sets the value for `class`.
    pub fn set(&mut self, class: ResourceClass, value: T) {
        self.0[class.index()] = value;
    }
    /// Pairs of (class, value) in index order.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceClass, T)> + '_ {
        ResourceClass::ALL
            .iter()
            .map(move |c| (*c, self.0[c.index()]))
    }
}

/// The schema of a class map: an object whose keys are the canonical class names
/// (each optional) and whose values are `T`'s.
#[cfg(feature = "openapi")]
impl<T: utoipa::__dev::ComposeSchema> utoipa::__dev::ComposeSchema for ClassMap<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let value = generics
            .into_iter()
            .next()
            .unwrap_or_else(|| T::compose(Vec::new()));
        ResourceClass::ALL
            .iter()
            .fold(utoipa::openapi::ObjectBuilder::new(), |object, class| {
                object.property(class.name(), value.clone())
            })
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some(format!(
                "a value per resource class ({}); classes left out are zero",
                ResourceClass::known_names()
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl<T: utoipa::ToSchema> utoipa::ToSchema for ClassMap<T>
where
    ClassMap<T>: utoipa::PartialSchema,
{
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        T::schemas(schemas);
    }
}

impl<T: Copy + Default + PartialEq + Serialize> Serialize for ClassMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let zero = T::default();
        let present = self.0.iter().filter(|v| **v != zero).count();
        let mut map = serializer.serialize_map(Some(present))?;
        for (class, value) in self.iter() {
            if value != zero {
                map.serialize_entry(class.name(), &value)?;
            }
        }
        map.end()
    }
}

impl<'de, T: Copy + Default + Deserialize<'de>> Deserialize<'de> for ClassMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Copy + Default + Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = ClassMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a table from resource class ({}) to value",
                    ResourceClass::known_names()
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut out = ClassMap::<T>::default();
                let mut seen = [false; N_CLASSES];
                while let Some(key) = access.next_key::<String>()? {
                    let class = ResourceClass::parse(&key).ok_or_else(|| {
                        de::Error::custom(format!(
                            "unknown resource class {key:?} (known: {})",
                            ResourceClass::known_names()
                        ))
                    })?;
                    if std::mem::replace(&mut seen[class.index()], true) {
                        return Err(de::Error::custom(format!(
                            "resource class {key:?} given twice"
                        )));
                    }
                    out.0[class.index()] = access.next_value()?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for class in ResourceClass::ALL {
            assert_eq!(ResourceClass::parse(class.name()), Some(class));
        }
        assert_eq!(
            ResourceClass::parse("RTX-4090"),
            Some(ResourceClass::Rtx4090)
        );
        assert_eq!(
            ResourceClass::parse("910B"),
            Some(ResourceClass::Ascend910B)
        );
        assert_eq!(ResourceClass::parse("v100"), None);
    }

    #[test]
    fn class_map_serialises_sparse_and_rejects_unknown_keys() {
        let mut map = ClassMap::<u32>::default();
        map.set(ResourceClass::A800, 64);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"a800":64}"#);
        let back: ClassMap<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        let err = serde_json::from_str::<ClassMap<u32>>(r#"{"v100":1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown resource class \"v100\""),
            "{err}"
        );
    }
}
