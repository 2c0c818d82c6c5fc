//! The layering rules of CODE_STYLE.md, checked by a plain scan of `src/`: dependencies point
//! one way (`api -> service -> {store, oauth, connectors, secrets} -> domain`), transports stay
//! in `api/` and `app.rs`, and SQL stays in `store/`.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its path relative to `src/` and its code lines (comments
/// dropped: a doc may name another layer).
fn sources() -> Vec<(String, Vec<(usize, String)>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let lines = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .map(|(i, l)| (i + 1, l.to_owned()))
                .collect();
            (rel, lines)
        })
        .collect()
}

/// `file:line: text` for each code line of the files `inside` selects that contains a needle.
fn offenders(inside: impl Fn(&str) -> bool, needles: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(rel, _)| inside(rel))
        .flat_map(|(rel, lines)| {
            lines
                .into_iter()
                .filter(|(_, l)| needles.iter().any(|n| l.contains(n)))
                .map(move |(n, l)| format!("src/{rel}:{n}: {}", l.trim()))
        })
        .collect()
}

fn under(rel: &str, dirs: &[&str]) -> bool {
    dirs.iter()
        .any(|d| rel.starts_with(&format!("{d}/")) || rel == format!("{d}.rs"))
}

#[test]
fn the_lower_layers_never_reach_up_into_service_or_api() {
    let found = offenders(
        |rel| {
            under(
                rel,
                &[
                    "connectors",
                    "store",
                    "oauth",
                    "secrets",
                    "domain",
                    "error",
                    "body",
                ],
            )
        },
        &[
            "crate::service",
            "crate::api",
            "super::super::service",
            "super::super::api",
        ],
    );
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn api_and_the_scheduler_reach_the_lower_layers_only_through_service() {
    let found = offenders(
        |rel| under(rel, &["api", "scheduler"]),
        &[
            "crate::store",
            "crate::oauth",
            "crate::connectors",
            "crate::secrets",
        ],
    );
    assert!(found.is_empty(), "layer skips:\n{}", found.join("\n"));
}

#[test]
fn the_domain_and_the_error_type_depend_on_nothing_else_in_the_crate() {
    let found = offenders(
        |rel| under(rel, &["domain", "error"]),
        &[
            "crate::store",
            "crate::oauth",
            "crate::connectors",
            "crate::secrets",
            "crate::config",
            "crate::scheduler",
        ],
    );
    assert!(found.is_empty(), "domain imports:\n{}", found.join("\n"));
}

#[test]
fn transports_appear_only_in_api_and_the_composition_root() {
    let found = offenders(
        // proto.rs is generated tonic code: the one place its stubs come from.
        |rel| !under(rel, &["api", "app", "proto"]),
        &[
            "tonic::",
            "use tonic",
            "axum::",
            "use axum",
            "http::Request",
            "http::Response",
            "http::request",
            "http::response",
        ],
    );
    assert!(found.is_empty(), "transport types:\n{}", found.join("\n"));
}

#[test]
fn sql_is_written_only_in_the_store() {
    let found = offenders(
        |rel| !under(rel, &["store"]),
        &["sqlx::query", "sqlx::raw_sql", "query_as(", "query_scalar("],
    );
    assert!(
        found.is_empty(),
        "SQL outside store/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_the_whole_tree() {
    // A scan that silently read nothing would pass every rule above.
    let files = sources();
    assert!(files.len() > 40, "only {} files under src/", files.len());
    assert!(files.iter().any(|(rel, _)| rel == "store/integrations.rs"));
    assert!(
        !offenders(|rel| under(rel, &["store"]), &["sqlx::query"]).is_empty(),
        "the store's own SQL must be found"
    );
}

#[test]
fn the_readme_lists_exactly_the_error_reasons_clients_can_see() {
    use founderhouse_integrations::error::Reason;
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let table = readme
        .split("<!-- reasons:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- reasons:end -->").next())
        .expect("the README has a reasons table");
    let listed: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(listed, known, "README reasons table vs error::Reason");
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.as_str()), Some(*r));
    }
}

#[test]
fn every_flag_and_subcommand_explains_itself_in_help() {
    use clap::CommandFactory;
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() {
                out.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                out.push(name.clone());
            }
            undocumented(sub, &name, out);
        }
    }
    let mut missing = Vec::new();
    undocumented(
        &founderhouse_integrations::config::Cli::command(),
        "founderhouse-integrations",
        &mut missing,
    );
    assert!(missing.is_empty(), "no help text: {missing:?}");
}
