//! **Invariant:** `salus-domain` does no I/O. Its normal (non-dev) dependency graph must not
//! reach an async runtime, a database driver, an ORM, a web framework or an HTTP client.
//! This test walks the graph `cargo metadata` reports and fails on any such crate.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "mio",
    "sea-orm",
    "sea-query",
    "sqlx",
    "sqlx-core",
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
    "diesel",
    "poem",
    "poem-openapi",
    "hyper",
    "axum",
    "actix-web",
    "reqwest",
    "ureq",
    "lettre",
];

#[test]
fn domain_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");

    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = names
        .iter()
        .find(|(_, n)| **n == "salus-domain")
        .map(|(id, _)| *id)
        .unwrap();

    // Depth-first over normal dependencies only (dev- and build-dependencies do not ship).
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let reached: BTreeSet<&str> = seen.iter().map(|id| names[id]).collect();
    let bad: Vec<_> = reached.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(bad.is_empty(), "salus-domain reaches I/O crates: {bad:?}");
    // The walk really happened: the crates the domain does use are in it.
    for expected in ["chrono", "serde", "thiserror", "uuid", "async-trait"] {
        assert!(
            reached.contains(expected),
            "{expected} missing from {reached:?}"
        );
    }
}
