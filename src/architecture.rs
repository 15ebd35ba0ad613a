//! The module map of `lib.rs`, checked: reads every source file and fails
//! on an import that climbs the layers, a path into the emulator's twin or
//! out of it, or the protobuf types named outside the rooms that speak the
//! wire. A rule that only a comment states drifts; this one cannot.

use std::{collections::BTreeSet, fs, path::Path};

/// Each top-level module with its layer: a module may import only modules
/// of lower layers. Equal layers are peers and do not import each other.
const LAYERS: &[(&str, u8)] = &[
    ("server", 10),
    ("access", 9),
    ("service", 8),
    ("modify", 7),
    ("watch", 7),
    ("directory", 6),
    ("cloud", 5),
    ("operation", 4),
    ("error", 3),
    ("validate", 2),
    ("domain", 1),
    ("telemetry", 0),
    ("metrics", 0),
];

/// A path into the generated contract, spelt in two pieces so that a search
/// of the tree for it finds only the rooms that speak the wire.
const WIRE: &str = concat!("p", "b::");

/// Where `pb` (the generated contract) may be named.
const SPEAKS_THE_WIRE: &[&str] = &["service", "client"];

/// Modules outside the layers: the CLI client speaks only the contract,
/// the emulator nothing of the crate, and the contract (generated code
/// only) names nothing of the crate either.
const ONLY: &[(&str, &[&str])] = &[("client", &["pb"]), ("emulator", &[]), ("pb", &[])];

/// The crate's top-level modules `text` imports (`crate::x`, and the heads
/// of `use crate::{x, y::z}`), comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The heads of a group: names at depth 0 before `::` or `,`.
            let mut depth = 0;
            let mut head = String::new();
            let mut in_head = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(std::mem::take(&mut head));
                        in_head = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && in_head {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        head.push(c);
                    } else if c == ':' {
                        in_head = false;
                    }
                }
            }
            found.insert(head);
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for lib.rs, main.rs,
/// the binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "bin" | "architecture")).then(|| name.to_owned())
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every breach of the map in the tree under `src`, as readable lines.
fn breaches(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut out = Vec::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(&file) else {
            out.push(format!("{}: unreadable", file.display()));
            continue;
        };
        let shown = file
            .strip_prefix(src)
            .unwrap_or(&file)
            .display()
            .to_string();
        // `super::` as many times as the file is deep reaches the crate
        // root, a way round `crate::`; the crate's public name is another.
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        // (A top-level file's inline test module climbs one more.)
        let to_root = "super::".repeat(depth.max(2));
        let public_name = concat!("sslvpn_gateway", "::");
        if text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains(&to_root) || code.contains(public_name)
        }) {
            out.push(format!(
                "{shown}: {module} reaches the crate root by another path"
            ));
        }
        for used in imports(&text) {
            if used == module {
                continue;
            }
            if let Some((_, allowed)) = ONLY.iter().find(|(m, _)| *m == module) {
                if !allowed.contains(&used.as_str()) {
                    out.push(format!("{shown}: {module} may not import {used}"));
                }
                continue;
            }
            if used == "pb" {
                if !SPEAKS_THE_WIRE.contains(&module.as_str()) {
                    out.push(format!("{shown}: {module} names pb"));
                }
                continue;
            }
            match (layer(&module), layer(&used)) {
                (Some(from), Some(to)) if to < from => {}
                (Some(_), Some(_)) => out.push(format!(
                    "{shown}: {module} imports {used}, which is not below it"
                )),
                _ => out.push(format!(
                    "{shown}: {module} imports {used}, which the map lacks"
                )),
            }
        }
        if !SPEAKS_THE_WIRE.contains(&module.as_str())
            && module != "emulator"
            && text.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                [' ', '(', '<']
                    .iter()
                    .any(|c| code.contains(&format!("{c}{WIRE}")))
            })
        {
            out.push(format!("{shown}: {module} names pb"));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn imports_follow_the_module_map() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = breaches(&src);
    assert!(
        found.is_empty(),
        "the module map is breached:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_top_level_module_is_on_the_map() {
    let lib = include_str!("lib.rs");
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            let mapped = layer(name).is_some() || ONLY.iter().any(|(m, _)| *m == name);
            assert!(mapped, "{name} is not on the module map");
        }
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The check itself must be able to fail.
    assert_eq!(
        imports("use crate::{access::Access, error::{Error, Kind}};\n// crate::server\n"),
        BTreeSet::from(["access".to_owned(), "error".to_owned()])
    );
    assert_eq!(
        imports("let x = crate::service::status::rpc_status(&e);"),
        BTreeSet::from(["service".to_owned()])
    );
    let dir = std::env::temp_dir().join(format!("sslvpn-arch-{}", std::process::id()));
    let watch = dir.join("watch");
    fs::create_dir_all(&watch).unwrap();
    fs::write(
        watch.join("stream.rs"),
        // Spelt in two pieces, so that a search of the tree for the
        // contract's types finds only the rooms that speak it.
        format!(
            "use crate::service::convert;\nfn f(_: {}) {{}}\n",
            ["p", "b::Phase"].concat()
        ),
    )
    .unwrap();
    let found = breaches(&dir);
    fs::remove_dir_all(&watch).unwrap();
    assert_eq!(
        found,
        [
            "watch/stream.rs: watch imports service, which is not below it",
            "watch/stream.rs: watch names pb",
        ]
    );
    // Nor by climbing out with `super::` (here from emulator/x/y.rs).
    let deep = dir.join("emulator").join("x");
    fs::create_dir_all(&deep).unwrap();
    fs::write(
        deep.join("y.rs"),
        "use super::super::super::validate;\nuse super::z;\n",
    )
    .unwrap();
    let found = breaches(&dir);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found,
        ["emulator/x/y.rs: emulator reaches the crate root by another path"]
    );
}
