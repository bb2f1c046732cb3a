//! Resource classes: CPU cores, memory, and accelerators by model.
//!
//! A class is a dense index ([`ResourceClass`], a `u8`) into the accelerator
//! catalogue ([`crate::catalogue`]): the built-in models hold fixed indices, and a
//! topology, a site file or an operator may register more at run time, up to
//! [`N_CLASSES`]. Per-class data therefore still fits in a fixed array
//! ([`ClassMap`]) that the scheduler indexes without hashing.

use crate::catalogue::{self, ClassInfo};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// Most resource classes one process can know: the built-in catalogue plus the
/// models registered at run time. An upper bound, so that per-class arrays stay
/// fixed-size.
pub const N_CLASSES: usize = 32;

/// A kind of resource a site offers and a job asks for, counted in whole units
/// (cores, GiB, cards): an index into the process's catalogue. Only the
/// catalogue makes one (the built-in constants, [`ResourceClass::parse`],
/// [`catalogue::register`]), so every value names a registered class.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceClass(pub(crate) u8);

// The built-in classes keep the names they had as enum variants, so that code
// and patterns written against the closed enum still read the same.
#[allow(non_upper_case_globals)]
impl ResourceClass {
    /// CPU cores.
    pub const Cpu: ResourceClass = ResourceClass(0);
    /// Memory in GiB.
    pub const Memory: ResourceClass = ResourceClass(1);
    /// NVIDIA A800 (80 GB), the export variant of the A100.
    pub const A800: ResourceClass = ResourceClass(2);
    /// NVIDIA H800 (80 GB), the export variant of the H100.
    pub const H800: ResourceClass = ResourceClass(3);
    /// NVIDIA H20 (96 GB), inference-oriented Hopper.
    pub const H20: ResourceClass = ResourceClass(4);
    /// NVIDIA L40S (48 GB).
    pub const L40S: ResourceClass = ResourceClass(5);
    /// NVIDIA GeForce RTX 4090 (24 GB).
    pub const Rtx4090: ResourceClass = ResourceClass(6);
    /// Huawei Ascend 910B NPU (64 GB).
    pub const Ascend910B: ResourceClass = ResourceClass(7);
    /// NVIDIA A100 (80 GB).
    pub const A100: ResourceClass = ResourceClass(8);
    /// NVIDIA H100 (80 GB).
    pub const H100: ResourceClass = ResourceClass(9);
    /// NVIDIA H200 (141 GB).
    pub const H200: ResourceClass = ResourceClass(10);
    /// NVIDIA L20 (48 GB).
    pub const L20: ResourceClass = ResourceClass(11);
    /// NVIDIA B200.
    pub const B200: ResourceClass = ResourceClass(12);
    /// Huawei Ascend 910C NPU.
    pub const Ascend910C: ResourceClass = ResourceClass(13);
    /// Kunlunxin (Baidu) Kunlun P800.
    pub const KunlunP800: ResourceClass = ResourceClass(14);
    /// Hygon DCU K100.
    pub const HygonK100: ResourceClass = ResourceClass(15);
    /// Cambricon MLU370-X8.
    pub const Mlu370: ResourceClass = ResourceClass(16);
    /// AMD Instinct MI300X (192 GB).
    pub const Mi300X: ResourceClass = ResourceClass(17);
}

impl ResourceClass {
    /// Every registered class, in index order: the built-in catalogue, then the
    /// models registered since, in the order they were registered.
    pub fn all() -> impl Iterator<Item = ResourceClass> + Clone {
        (0..catalogue::len()).map(|i| ResourceClass(i as u8))
    }

    /// The built-in classes, in index order (the same in every process).
    pub fn builtin() -> impl Iterator<Item = ResourceClass> + Clone {
        (0..catalogue::N_BUILTIN).map(|i| ResourceClass(i as u8))
    }

    /// The class at dense index `index`, if one is registered there.
    pub fn from_index(index: usize) -> Option<ResourceClass> {
        (index < catalogue::len()).then_some(ResourceClass(index as u8))
    }

    /// Dense index of the class, `0..N_CLASSES`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// What the catalogue says about the class.
    pub fn info(self) -> &'static ClassInfo {
        catalogue::info(self)
    }

    /// The canonical name used in files, flags and JSON.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Whether this class is an accelerator (GPU or NPU).
    pub const fn is_accelerator(self) -> bool {
        self.0 > 1
    }

    /// Parses a class name, accepting common spellings (`A800`, `RTX-4090`, `910b`,
    /// `memory`): case, spaces and punctuation are ignored, then the canonical
    /// names and aliases of every registered class are tried.
    pub fn parse(text: &str) -> Option<ResourceClass> {
        catalogue::lookup(&catalogue::key(text))
    }

    /// The accepted names, for error messages.
    pub fn known_names() -> String {
        ResourceClass::all()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Debug for ResourceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceClass({})", self.name())
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

/// The message for a class name nobody registered.
pub(crate) fn unknown_class(text: &str) -> String {
    format!(
        "unknown resource class {text:?} (known: {}; a model missing from the catalogue is declared with [[accelerator]] in the topology or site file)",
        ResourceClass::known_names()
    )
}

impl<'de> Deserialize<'de> for ResourceClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ResourceClass::parse(&text).ok_or_else(|| de::Error::custom(unknown_class(&text)))
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
        ResourceClass::all().map(move |c| (c, self.0[c.index()]))
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
        // The classes this process knows when the document is made: the
        // built-in ones (`suanwang openapi`, the console's copy), and in a
        // server's `/openapi.json` also the models its catalogue gained, so the
        // document stays true of what it accepts.
        ResourceClass::all()
            .fold(utoipa::openapi::ObjectBuilder::new(), |object, class| {
                object.property(class.name(), value.clone())
            })
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some(format!(
                "a value per resource class ({}; `GET /v1/accelerators` lists the accelerator models); classes left out are zero",
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
                    let class = ResourceClass::parse(&key)
                        .ok_or_else(|| de::Error::custom(unknown_class(&key)))?;
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
        for class in ResourceClass::all() {
            assert_eq!(ResourceClass::parse(class.name()), Some(class));
        }
        for (text, class) in [
            ("cpu", ResourceClass::Cpu),
            ("cores", ResourceClass::Cpu),
            ("mem_gib", ResourceClass::Memory),
            ("memory", ResourceClass::Memory),
            ("GiB", ResourceClass::Memory),
            ("A800", ResourceClass::A800),
            ("nvidia-a800", ResourceClass::A800),
            ("H800", ResourceClass::H800),
            ("h20", ResourceClass::H20),
            ("L40S", ResourceClass::L40S),
            ("rtx4090", ResourceClass::Rtx4090),
            ("4090", ResourceClass::Rtx4090),
            ("GeForce RTX 4090", ResourceClass::Rtx4090),
            ("ascend910b", ResourceClass::Ascend910B),
            ("Huawei Ascend 910B", ResourceClass::Ascend910B),
            ("h100", ResourceClass::H100),
            ("MLU370", ResourceClass::Mlu370),
            ("p800", ResourceClass::KunlunP800),
            ("K100", ResourceClass::HygonK100),
        ] {
            assert_eq!(ResourceClass::parse(text), Some(class), "{text}");
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
