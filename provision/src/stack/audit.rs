//! What the IAM audits share (test code only): IAM's wildcard match, and the SDK operations a
//! program's sources call, read from the sources themselves so a new call without an entry in
//! its table fails the audit. Used by the roles' audit (`calls/tests.rs`) and the operator's
//! (`operator_policy/tests.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// IAM's wildcard match: `*` any run of characters, `?` one.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The strings of a policy element: one string or an array of them.
pub(crate) fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The workspace's root directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Every `.rs` file of `path` (a file or a directory).
pub(crate) fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .filter_map(Result::ok)
        .flat_map(|entry| rust_files(&entry.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// The program's code: comment lines and the `#[cfg(test)]` module (whose calls set up
/// moto, not the program's work) left out.
pub(crate) fn program_text(source: &str) -> String {
    source
        .split("\n#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The operation names of the SDK crates `crate_dir`'s manifest depends on, read from the
/// crates' sources (each operation is a module under `src/operation/`) at the versions
/// `Cargo.lock` pins.
pub(crate) fn sdk_operations(crate_dir: &str) -> BTreeSet<String> {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join(crate_dir).join("Cargo.toml"))
        .expect("the program's manifest");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registries: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .map(|dirs| dirs.filter_map(Result::ok).map(|d| d.path()).collect())
        .unwrap_or_default();
    let mut operations = BTreeSet::new();
    for line in manifest.lines() {
        // `aws-sdk-s3.workspace = true` or `aws-sdk-s3 = { ... }`.
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.starts_with("aws-sdk-") {
            continue;
        }
        let name = name.as_str();
        let version = lock
            .split("[[package]]")
            .find(|entry| entry.contains(&format!("name = \"{name}\"\n")))
            .and_then(|entry| {
                entry
                    .lines()
                    .find_map(|l| l.strip_prefix("version = \""))
                    .map(|v| v.trim_end_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("{name} in Cargo.lock"));
        let dir = registries
            .iter()
            .map(|registry| registry.join(format!("{name}-{version}/src/operation")))
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "the sources of {name} {version} (under {}/registry/src): the audit reads the SDK's operation names there",
                    cargo_home.display()
                )
            });
        for entry in std::fs::read_dir(&dir)
            .expect("the operation modules")
            .flatten()
        {
            if entry.path().is_dir() {
                operations.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        assert!(
            operations.len() > 10,
            "{name}: operations in {}",
            dir.display()
        );
    }
    operations
}

/// Functions of `wire` that return a request builder of an SDK operation (a program that
/// calls one makes that call): `get_row` -> `get_item`.
pub(crate) fn wire_request_builders() -> BTreeMap<String, String> {
    let mut builders = BTreeMap::new();
    for file in rust_files(&workspace_root().join("wire/src")) {
        let text = std::fs::read_to_string(&file).expect("a wire source");
        for signature in text.split("pub fn ").skip(1) {
            let Some(head) = signature.split('{').next() else {
                continue;
            };
            let name: String = head
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(operation) = head
                .split("::operation::")
                .nth(1)
                .and_then(|rest| rest.split("::builders::").next())
                .filter(|_| head.contains("-> aws_sdk_"))
            {
                builders.insert(name, operation.to_owned());
            }
        }
    }
    builders
}

/// The wire's functions that send a request themselves (`pub async fn apply(...)`, whose body
/// calls `.update_item()`), each with the SDK operation of `operations` its body calls first;
/// named with their module (`job_item::apply`), as the programs call them, so that another
/// `apply(` is not taken for one.
pub(crate) fn wire_request_senders(operations: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut senders = BTreeMap::new();
    for file in rust_files(&workspace_root().join("wire/src")) {
        let text = program_text(&std::fs::read_to_string(&file).expect("a wire source"));
        let module = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        for function in text.split("pub async fn ").skip(1) {
            let name: String = function
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let body = function.split("\n}\n").next().unwrap_or_default();
            if let Some(operation) = calls_in(body, operations, &BTreeMap::new())
                .into_iter()
                .next()
            {
                senders.insert(format!("{module}::{name}"), operation);
            }
        }
    }
    senders
}

/// The SDK operations `text` calls: `.<operation>()` for an operation of `operations`, and
/// `<wrapper>(` for a wire function that builds one.
pub(crate) fn calls_in(
    text: &str,
    operations: &BTreeSet<String>,
    wrappers: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (index, _) in text.match_indices("()") {
        let before = &text[..index];
        let name: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let dotted = before[..before.len() - name.len()]
            .trim_end()
            .ends_with('.');
        if dotted && operations.contains(&name) {
            found.insert(name);
        }
    }
    for (wrapper, operation) in wrappers {
        let call = format!("{wrapper}(");
        if text.match_indices(&call).any(|(index, _)| {
            !text[..index].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && !text[..index].ends_with("fn ")
        }) {
            found.insert(operation.clone());
        }
    }
    found
}

#[test]
fn glob_matches_as_iam_does() {
    assert!(glob(
        "arn:aws:s3:::b/uploads/*",
        "arn:aws:s3:::b/uploads/1/cat.jpg"
    ));
    assert!(!glob(
        "arn:aws:s3:::b/uploads/*",
        "arn:aws:s3:::b/images/1.jpg"
    ));
    assert!(!glob("arn:aws:s3:::b/uploads/*", "arn:aws:s3:::b"));
    assert!(glob("s3:Get?bject", "s3:GetObject"));
    assert!(glob("*", "anything"));
}

#[test]
fn the_scan_finds_sdk_calls_however_they_are_chained() {
    let operations: BTreeSet<String> = ["put_object", "get_item", "scan"].map(String::from).into();
    let wrappers = BTreeMap::from([("get_row".to_owned(), "get_item".to_owned())]);
    let text = "let a = self.s3\n    .put_object()\n    .bucket(b);\n\
                let r = hybridlab_wire::item::get_row(&c, t, id).send();\n\
                let s = scanner.scan(x); let n = fetch_row(1);";
    assert_eq!(
        calls_in(text, &operations, &wrappers),
        ["get_item", "put_object"].map(String::from).into()
    );
}
