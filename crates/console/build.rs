//! Builds the web console in `console/` with npm when its sources are newer than
//! `console/dist` (or `dist` is missing), copies `dist` into OUT_DIR and writes
//! `assets.rs` there: one `include_bytes!` per file. Node and npm are needed only
//! to build, never to run the server.
//!
//! The rerun-if-changed list names the console's sources one by one, never the
//! `console/` folder itself nor `dist`: `node_modules` and `dist` change under npm,
//! and listing them would rerun this script on the next build. The copy in OUT_DIR
//! means a deleted `dist` breaks nothing until a source changes, which rebuilds it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the console's build reads, relative to `console/`.
const SOURCES: &[&str] = &[
    "src",
    "public",
    "index.html",
    "openapi.json",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let console = manifest.join("../../console");
    for source in SOURCES {
        let path = console.join(source);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    if let Err(message) = build(&console) {
        eprintln!(
            "error: building the web console in {}: {message}",
            console.display()
        );
        std::process::exit(1);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let copy = out.join("dist");
    let _ = std::fs::remove_dir_all(&copy);
    let mut files = Vec::new();
    collect(
        &console.join("dist"),
        &console.join("dist"),
        &copy,
        &mut files,
    );
    files.sort();
    let mut code = String::from(
        "/// Every file of console/dist: path relative to dist, with `/`, its bytes, and\n\
         /// its gzip encoding where that is smaller.\n\
         pub static FILES: &[File] = &[\n",
    );
    for (relative, absolute) in &files {
        let gzip = match gzip(Path::new(absolute)) {
            Some(path) => format!("Some(include_bytes!({:?}))", path.display().to_string()),
            None => "None".into(),
        };
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({absolute:?}), {gzip}),\n"
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).expect("write assets.rs to OUT_DIR");
}

/// Runs `npm ci` if `node_modules` is missing and `npm run build` if `dist` is
/// older than any source.
fn build(console: &Path) -> Result<(), String> {
    let built = modified(&console.join("dist/index.html"));
    let newest_source = SOURCES
        .iter()
        .filter_map(|s| newest(&console.join(s)))
        .max();
    let node_modules = console.join("node_modules");
    let stale = match (built, newest_source) {
        (Some(built), Some(source)) => source > built,
        _ => true,
    };
    if !stale && node_modules.exists() {
        return Ok(());
    }
    if !node_modules.exists() {
        npm(console, &["ci", "--no-audit", "--no-fund"])?;
    }
    if stale {
        npm(console, &["run", "build"])?;
    }
    if !console.join("dist/index.html").exists() {
        return Err("npm run build finished but wrote no dist/index.html".into());
    }
    Ok(())
}

fn npm(console: &Path, args: &[&str]) -> Result<(), String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(args)
        .current_dir(console)
        // npm's progress output is noise in cargo's captured log.
        .env("npm_config_progress", "false")
        // Cargo reads a build script's stdout for directives: npm's goes to stderr.
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| {
            format!(
                "could not run `npm {}` ({e}): the console is built with Node 20 and npm, \
                 which must be on PATH when the server is built (not when it runs)",
                args.join(" ")
            )
        })?;
    if !status.success() {
        return Err(format!("`npm {}` failed with {status}", args.join(" ")));
    }
    Ok(())
}

/// Writes `path.gz` (best compression) beside `path` if it is smaller by at
/// least a tenth, and returns its path.
fn gzip(path: &Path) -> Option<PathBuf> {
    use std::io::Write;
    let bytes = std::fs::read(path).ok()?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes).ok()?;
    let packed = encoder.finish().ok()?;
    if packed.len() * 10 > bytes.len() * 9 {
        return None;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    let target = PathBuf::from(name);
    std::fs::write(&target, packed).ok()?;
    Some(target)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of `path` or, for a folder, of anything in it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut latest = meta.modified().ok();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            latest = latest.max(newest(&entry.path()));
        }
    }
    latest
}

/// Copies every file under `dir` (inside `root`) to the same place under `copy`;
/// lists each as (path relative to `root` with `/`, absolute path of the copy).
fn collect(root: &Path, dir: &Path, copy: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, copy, files);
        } else {
            let within = path.strip_prefix(root).expect("under dist");
            let relative = within
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let target = copy.join(within);
            std::fs::create_dir_all(target.parent().expect("a file has a parent"))
                .expect("create a folder in OUT_DIR");
            std::fs::copy(&path, &target).expect("copy a console file to OUT_DIR");
            files.push((relative, target.to_string_lossy().into_owned()));
        }
    }
}
