//! The dependency rule, checked on the real dependency graph: the core
//! (`chat-domain`, `chat-ports`, `chat-app`) never depends, directly or not,
//! on a web framework, a database or cache driver, or any adapter crate; and
//! the domain stays free of async runtimes and serialisation.
//!
//! `cargo tree -p` resolves each crate with its own features (`cargo
//! metadata` would unify them across the workspace and report, say, chrono's
//! serde feature that only the HTTP adapter turns on).

#![expect(
    clippy::expect_used,
    reason = "a test: a failure to run cargo is a failure to see"
)]

use std::collections::BTreeSet;
use std::process::Command;

/// Crates whose names start with one of these are frameworks or drivers.
const FRAMEWORKS: &[&str] = &[
    "actix",
    "diesel",
    "tokio-postgres",
    "postgres",
    "deadpool",
    "redis",
    "fred",
    "sqlx",
    "hyper",
    "axum",
];
/// The domain may not even reach these.
const NOT_IN_DOMAIN: &[&str] = &["tokio", "async-std", "futures", "serde", "async-trait"];
const CORE: &[&str] = &["chat-domain", "chat-ports", "chat-app"];

/// The names of every crate `package` reaches through normal dependencies.
fn reach(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .filter(|n| n != package)
        .collect()
}

fn workspace_crates() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_dir(dir)
        .expect("crates/ is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| format!("chat-{}", e.file_name().to_string_lossy()))
        .collect()
}

#[test]
fn the_core_depends_on_no_framework_and_no_adapter() {
    let workspace = workspace_crates();
    assert!(workspace.contains("chat-store-memory") && workspace.contains("chat-http"));
    for core in CORE {
        let bad: Vec<String> = reach(core)
            .into_iter()
            .filter(|name| {
                FRAMEWORKS.iter().any(|f| name.starts_with(f))
                    || (workspace.contains(name) && !CORE.contains(&name.as_str()))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{core} depends on {bad:?}: the core must not know frameworks or adapters"
        );
    }
}

#[test]
fn the_domain_has_no_async_and_no_serialisation() {
    let bad: Vec<String> = reach("chat-domain")
        .into_iter()
        .filter(|name| {
            NOT_IN_DOMAIN
                .iter()
                .any(|b| name == b || name.starts_with(&format!("{b}-")))
        })
        .collect();
    assert!(bad.is_empty(), "chat-domain reaches {bad:?}");
}

#[test]
fn the_check_can_fail() {
    // The same walk finds what adapters do depend on.
    assert!(reach("chat-http").iter().any(|n| n.starts_with("actix")));
    assert!(reach("chat-server").contains("chat-store-memory"));
}

/// Every `crate::…` path a module's source names, as `crate::first_segment`.
fn crate_paths(dir: &std::path::Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for e in std::fs::read_dir(&path).expect("a readable source folder") {
                stack.push(e.expect("a readable entry").path());
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(format!("crate::{name}"));
            }
        }
    }
    found
}

/// The WebSocket gateway and the REST routes share what they share
/// (`send`, `dto`, `extract`) from modules of their own: the routes mount
/// the gateway, and the gateway never reaches back into the routes.
#[test]
fn the_gateway_does_not_import_the_routes() {
    let http = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src");
    let gateway = crate_paths(&http.join("ws"));
    assert!(
        gateway.contains("crate::send"),
        "the walk reads the gateway: {gateway:?}"
    );
    assert!(
        !gateway.contains("crate::routes"),
        "the gateway imports the routes: {gateway:?}"
    );
}
