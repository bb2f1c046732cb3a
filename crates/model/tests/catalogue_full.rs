//! The catalogue's bound: registering past `N_CLASSES` is refused with a clear
//! error and leaves every earlier class intact. Its own test binary, because it
//! fills this process's registry.

use suanwang_model::catalogue::{self, AcceleratorSpec, CatalogueError, N_BUILTIN};
use suanwang_model::{N_CLASSES, ResourceClass};

fn spec(i: usize) -> AcceleratorSpec {
    AcceleratorSpec {
        name: format!("xpu{i}"),
        vendor: "Example".into(),
        model: String::new(),
        family: "example".into(),
        memory_gib: 16.0,
        fp16_tflops: None,
        source: String::new(),
        aliases: Vec::new(),
    }
}

#[test]
fn registering_past_the_bound_is_refused() {
    let classes: Vec<ResourceClass> = (0..N_CLASSES - N_BUILTIN)
        .map(|i| catalogue::register(&spec(i)).unwrap())
        .collect();
    assert_eq!(catalogue::len(), N_CLASSES);
    assert_eq!(classes.last().unwrap().index(), N_CLASSES - 1);
    let err = catalogue::register(&spec(999)).unwrap_err();
    assert!(matches!(err, CatalogueError::Full { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("\"xpu999\"")
            && message.contains("catalogue is full")
            && message.contains("32 classes"),
        "{message}"
    );
    // A model already in is still accepted again, and everything still parses.
    assert_eq!(catalogue::register(&spec(3)).unwrap(), classes[3]);
    assert_eq!(ResourceClass::parse("xpu0"), Some(classes[0]));
    assert_eq!(ResourceClass::all().count(), N_CLASSES);
    let mut map = suanwang_model::ClassMap::<u32>::default();
    map.set(*classes.last().unwrap(), 2);
    let json = format!("{{\"xpu{}\":2}}", N_CLASSES - N_BUILTIN - 1);
    assert_eq!(serde_json::to_string(&map).unwrap(), json);
}
