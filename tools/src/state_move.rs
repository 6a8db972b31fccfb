//! The one-time move of what earlier releases kept in the cache directory (the stacks' records,
//! the Terraform modules with their state) to the state directory, where a cache cleaner does
//! not reach. Entry by entry, so a move interrupted halfway finishes on the next run, and an
//! entry already at the new place is never overwritten.

use std::io;
use std::path::{Path, PathBuf};

/// One entry moved, from its old place to its new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: PathBuf,
    pub to: PathBuf,
}

/// What [`move_entries`] did: what it moved, and what it left because the new place already
/// had an entry of that name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MoveReport {
    pub moved: Vec<Moved>,
    pub kept: Vec<PathBuf>,
}

/// Moves every entry of the directory `from` into the directory `to` (created if needed),
/// leaving any whose name `to` already holds, then removes `from` if it is left empty. A
/// missing `from` moves nothing. Across file systems an entry is copied, then removed.
pub fn move_entries(from: &Path, to: &Path) -> io::Result<MoveReport> {
    let mut report = MoveReport::default();
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(err) => return Err(err),
    };
    std::fs::create_dir_all(to)?;
    for entry in entries {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if target.symlink_metadata().is_ok() {
            report.kept.push(source);
            continue;
        }
        move_one(&source, &target)?;
        report.moved.push(Moved {
            from: source,
            to: target,
        });
    }
    // Only an empty directory goes; what was kept stays where the user can find it.
    let _ = std::fs::remove_dir(from);
    Ok(report)
}

fn move_one(source: &Path, target: &Path) -> io::Result<()> {
    match std::fs::rename(source, target) {
        Ok(()) => Ok(()),
        // Another process moved it first.
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
            copy_tree(source, target)?;
            remove_tree(source)
        }
        Err(err) => Err(err),
    }
}

fn copy_tree(source: &Path, target: &Path) -> io::Result<()> {
    let kind = source.symlink_metadata()?.file_type();
    if kind.is_symlink() {
        let link = std::fs::read_link(source)?;
        #[cfg(unix)]
        return std::os::unix::fs::symlink(link, target);
        #[cfg(not(unix))]
        return std::fs::copy(source.parent().unwrap_or(Path::new(".")).join(link), target)
            .map(drop);
    }
    if kind.is_dir() {
        std::fs::create_dir_all(target)?;
        for entry in std::fs::read_dir(source)? {
            let entry = entry?;
            copy_tree(&entry.path(), &target.join(entry.file_name()))?;
        }
        return Ok(());
    }
    std::fs::copy(source, target).map(drop)
}

fn remove_tree(path: &Path) -> io::Result<()> {
    if path.symlink_metadata()?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-state-move-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    #[test]
    fn entries_move_once_and_an_entry_already_there_is_never_overwritten() {
        let root = scratch("once");
        let (old, new) = (root.join("cache/stacks"), root.join("state/stacks"));
        std::fs::create_dir_all(old.join("sandbox")).expect("old");
        std::fs::write(old.join("sandbox/k3x9q2ma.json"), "old record").expect("old file");
        std::fs::create_dir_all(old.join("aws-lab-eu-west-1")).expect("old");
        std::fs::create_dir_all(new.join("aws-lab-eu-west-1")).expect("new");
        std::fs::write(new.join("aws-lab-eu-west-1/x.json"), "newer").expect("new file");

        let report = move_entries(&old, &new).expect("moves");
        assert_eq!(
            report.moved,
            [Moved {
                from: old.join("sandbox"),
                to: new.join("sandbox")
            }]
        );
        assert_eq!(report.kept, [old.join("aws-lab-eu-west-1")]);
        assert_eq!(
            std::fs::read_to_string(new.join("sandbox/k3x9q2ma.json")).expect("moved file"),
            "old record"
        );
        assert_eq!(
            std::fs::read_to_string(new.join("aws-lab-eu-west-1/x.json")).expect("kept"),
            "newer"
        );
        assert!(old.exists(), "a directory with a kept entry stays");

        std::fs::remove_dir_all(old.join("aws-lab-eu-west-1")).expect("the user clears it");
        let again = move_entries(&old, &new).expect("moves");
        assert_eq!(again, MoveReport::default());
        assert!(!old.exists(), "an emptied old directory goes");
        assert_eq!(
            move_entries(&old, &new).expect("nothing"),
            MoveReport::default()
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_copied_tree_keeps_its_files_and_links() {
        let root = scratch("copy");
        let source = root.join("module");
        std::fs::create_dir_all(source.join(".terraform/providers")).expect("tree");
        std::fs::write(source.join("terraform.tfstate"), "{}").expect("state");
        #[cfg(unix)]
        std::os::unix::fs::symlink("/opt/tf-plugins", source.join(".terraform/providers/aws"))
            .expect("a link");
        copy_tree(&source, &root.join("copy")).expect("copies");
        remove_tree(&source).expect("removes");
        assert_eq!(
            std::fs::read_to_string(root.join("copy/terraform.tfstate")).expect("state"),
            "{}"
        );
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(root.join("copy/.terraform/providers/aws")).expect("link"),
            Path::new("/opt/tf-plugins")
        );
        assert!(!source.exists());
        let _ = std::fs::remove_dir_all(root);
    }
}
