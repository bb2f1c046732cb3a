//! The web console's assets, built from `console/` by this crate's build script
//! and embedded in the binary, so that the server needs no Node or files at run
//! time.
//!
//! **Architecture Invariant:** this crate does no IO and depends on nothing; the
//! server decides where the assets are served and how.

/// An embedded file: its path under `dist`, its bytes, its gzip encoding.
pub type File = (&'static str, &'static [u8], Option<&'static [u8]>);

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The file's bytes.
    pub bytes: &'static [u8],
    /// The same, gzip-encoded at build time, where that is smaller.
    pub gzip: Option<&'static [u8]>,
    /// Its media type, from the extension.
    pub content_type: &'static str,
    /// True for Vite's content-hashed files under `assets/`, which never change
    /// under the same name and may be cached for good.
    pub immutable: bool,
}

/// The asset at a request path (`/`, `/index.html`, `/assets/index-abc.js`), if any.
pub fn asset(path: &str) -> Option<Asset> {
    let relative = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    let (_, bytes, gzip) = FILES.iter().find(|(name, _, _)| *name == relative)?;
    Some(Asset {
        bytes,
        gzip: *gzip,
        content_type: content_type(relative),
        immutable: relative.starts_with("assets/"),
    })
}

/// The media type for a file name, by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_index() {
        let index = asset("/").expect("index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(!index.immutable);
        assert_eq!(Some(index), asset("/index.html"));
        assert!(String::from_utf8_lossy(index.bytes).contains("<div id=\"app\">"));
    }

    #[test]
    fn the_index_names_embedded_scripts() {
        let index = String::from_utf8_lossy(asset("/").unwrap().bytes).into_owned();
        let script = index
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a script in index.html");
        let js = asset(script).unwrap_or_else(|| panic!("{script} is embedded"));
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert!(js.immutable);
        // The bundle is embedded gzipped too, and that decodes to it.
        let gzip = js.gzip.expect("the script is embedded gzipped");
        assert!(
            gzip.len() * 2 < js.bytes.len(),
            "{} vs {}",
            gzip.len(),
            js.bytes.len()
        );
        assert_eq!(&gzip[..2], &[0x1f, 0x8b], "a gzip stream");
    }

    #[test]
    fn unknown_paths_are_none() {
        assert_eq!(asset("/v1/jobs"), None);
        assert_eq!(asset("/assets/nope.js"), None);
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
