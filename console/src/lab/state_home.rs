//! The state directory (`$XDG_STATE_HOME/hybridlab`): what lives there, the stacks' records and
//! the Terraform modules with their state, and the one-time moves into it, from the cache
//! directory where earlier releases kept both, and of an AWS target's records from their old
//! name (profile and region) to the one with the account.

use std::path::Path;

use hybridlab_provision::stack::StackClients;
use hybridlab_provision::stack::state::{STACKS_DIR, stacks_dir};
use hybridlab_tools::state_move::{MoveReport, move_entries};
use hybridlab_tools::{cache_dir, state_dir};

/// The directory of the modules `up --via terraform` wrote, one per stack, each holding
/// `terraform.tfstate`: the only record Terraform has of what it created.
pub const TERRAFORM_MODULES_DIR: &str = "terraform";

/// What lives in the state directory, each a directory of entries.
const STATE_DIRS: [(&str, &str); 2] = [
    (STACKS_DIR, "stack record"),
    (TERRAFORM_MODULES_DIR, "Terraform module"),
];

/// Moves what earlier releases kept under the cache directory to the state directory, where a
/// cache cleaner does not reach; returns what to tell the user (nothing once it is done).
pub fn move_from_cache() -> Vec<String> {
    move_from_cache_in(&cache_dir(), &state_dir())
}

fn move_from_cache_in(cache: &Path, state: &Path) -> Vec<String> {
    if cache == state {
        return Vec::new();
    }
    let mut said = Vec::new();
    for (name, what) in STATE_DIRS {
        let (from, to) = (cache.join(name), state.join(name));
        match move_entries(&from, &to) {
            Ok(report) => said.extend(describe(&report, what, &from, &to)),
            Err(err) => said.push(format!(
                "could not move {} to {}: {err}; move it by hand, it is the record of what hybridlab created",
                from.display(),
                to.display()
            )),
        }
    }
    said
}

fn describe(report: &MoveReport, what: &str, from: &Path, to: &Path) -> Vec<String> {
    let mut said = Vec::new();
    if !report.moved.is_empty() {
        let count = report.moved.len();
        let plural = if count == 1 { "" } else { "s" };
        said.push(format!(
            "moved {count} {what} director{} from {} to {} (state no longer lives in the cache, where a cache cleaner could delete it)",
            if plural.is_empty() { "y" } else { "ies" },
            from.display(),
            to.display(),
        ));
    }
    for kept in &report.kept {
        said.push(format!(
            "left {}: {} already has one of that name; compare the two and remove the stale one",
            kept.display(),
            to.display()
        ));
    }
    said
}

/// Moves an AWS target's stack records from their old name (`aws-<profile>-<region>`) to the
/// one with the account, when only the old one exists; returns what to tell the user. The
/// profile reached those resources before, and reaches this account now.
pub fn adopt_legacy_records(clients: &StackClients) -> Option<String> {
    let legacy = clients.legacy_state_key()?;
    let (from, to) = (stacks_dir(&legacy), stacks_dir(&clients.state_key()));
    if to.exists() || !from.is_dir() {
        return None;
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).ok()?;
    }
    Some(match std::fs::rename(&from, &to) {
        Ok(()) => format!(
            "the stack records in {} are now kept per account, in {} (account {})",
            from.display(),
            to.display(),
            clients.account.as_deref().unwrap_or("unknown")
        ),
        Err(err) => format!(
            "could not move the stack records {} to {}: {err}",
            from.display(),
            to.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_directorys_records_and_modules_move_once_with_a_message() {
        let root =
            std::env::temp_dir().join(format!("hybridlab-state-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (cache, state) = (root.join("cache"), root.join("state"));
        std::fs::create_dir_all(cache.join("stacks/aws-default-eu-west-1")).expect("records");
        std::fs::write(
            cache.join("stacks/aws-default-eu-west-1/k3x9q2ma.json"),
            "{}",
        )
        .expect("a record");
        std::fs::create_dir_all(cache.join("terraform/k3x9q2ma")).expect("a module");
        std::fs::write(cache.join("terraform/k3x9q2ma/terraform.tfstate"), "{}").expect("state");
        std::fs::create_dir_all(cache.join("moto-venv")).expect("a cache entry");

        let said = move_from_cache_in(&cache, &state);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with("moved 1 stack record directory from"),
            "{}",
            said[0]
        );
        assert!(
            said[1].starts_with("moved 1 Terraform module directory"),
            "{}",
            said[1]
        );
        assert!(
            state
                .join("stacks/aws-default-eu-west-1/k3x9q2ma.json")
                .exists()
        );
        assert!(state.join("terraform/k3x9q2ma/terraform.tfstate").exists());
        assert!(!cache.join("stacks").exists() && !cache.join("terraform").exists());
        assert!(cache.join("moto-venv").exists(), "the cache itself stays");
        assert_eq!(
            move_from_cache_in(&cache, &state),
            Vec::<String>::new(),
            "once"
        );
        assert_eq!(move_from_cache_in(&state, &state), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(root);
    }
}
