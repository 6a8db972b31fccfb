//! Links libjpeg-turbo's TurboJPEG library statically when one can be had, and tells the crate
//! whether it did with `cfg(turbojpeg)`.
//!
//! Why a prebuilt library: libjpeg-turbo's speed is its SIMD code, which is NASM assembly, and a
//! build from source without NASM is slower than the pure-Rust codecs. Debian's package carries
//! the SIMD build as a position-independent static archive that needs nothing newer than glibc
//! 2.11, so the server binary stays self-contained on Amazon Linux.
//!
//! Where the archive comes from, the first that answers:
//! 1. `HYBRIDLAB_TURBOJPEG_LIB_DIR`, a directory holding `libturbojpeg.a`;
//! 2. the project's cache (`$HYBRIDLAB_CACHE_DIR`, `$XDG_CACHE_HOME/hybridlab` or
//!    `~/.cache/hybridlab`), under `turbojpeg/`;
//! 3. fetched into that cache, once, from Debian's `libturbojpeg0-dev` with `apt-get download`
//!    and `dpkg-deb -x`, neither of which needs root;
//! 4. an installed `libturbojpeg0-dev`.
//!
//! `HYBRIDLAB_TURBOJPEG=off` skips all of it. Without the archive the crate still builds and
//! says it is unavailable, so the image pipeline uses its pure-Rust codecs: slower, same output
//! format. Only x86-64 Linux with glibc is looked for, the only target the lab builds.

use std::path::{Path, PathBuf};
use std::process::Command;

const ARCHIVE: &str = "libturbojpeg.a";
const DEBIAN_PACKAGE: &str = "libturbojpeg0-dev";
const DEBIAN_LIB_DIR: &str = "usr/lib/x86_64-linux-gnu";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(turbojpeg)");
    for name in [
        "HYBRIDLAB_TURBOJPEG",
        "HYBRIDLAB_TURBOJPEG_LIB_DIR",
        "HYBRIDLAB_CACHE_DIR",
        "XDG_CACHE_HOME",
    ] {
        println!("cargo::rerun-if-env-changed={name}");
    }
    println!("cargo::rerun-if-changed=build.rs");

    if std::env::var("HYBRIDLAB_TURBOJPEG").is_ok_and(|value| value == "off") {
        return;
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.starts_with("x86_64-unknown-linux-gnu") {
        return;
    }
    match find_archive() {
        Ok(Found { dir, watch }) => {
            // Rebuild when the archive is replaced. Only named once it exists: cargo reruns a
            // build script on every build while a path it watches is missing.
            println!("cargo::rerun-if-changed={}", watch.display());
            println!("cargo::rustc-link-search=native={}", dir.display());
            println!("cargo::rustc-link-lib=static=turbojpeg");
            println!("cargo::rustc-cfg=turbojpeg");
        }
        Err(reason) => println!(
            "cargo::warning=libjpeg-turbo not linked ({reason}); JPEG uses the slower pure-Rust \
             codecs. Set HYBRIDLAB_TURBOJPEG_LIB_DIR to a directory with {ARCHIVE}, or make \
             `apt-get download {DEBIAN_PACKAGE}` work, then `cargo clean -p hybridlab-turbojpeg`."
        ),
    }
}

/// Where the archive is, and the file whose change means it was replaced.
struct Found {
    dir: PathBuf,
    watch: PathBuf,
}

impl Found {
    fn archive_in(dir: PathBuf) -> Self {
        let watch = dir.join(ARCHIVE);
        Self { dir, watch }
    }
}

fn find_archive() -> Result<Found, String> {
    if let Some(dir) = std::env::var_os("HYBRIDLAB_TURBOJPEG_LIB_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.join(ARCHIVE).is_file() {
            Ok(Found::archive_in(dir))
        } else {
            Err(format!(
                "HYBRIDLAB_TURBOJPEG_LIB_DIR={} has no {ARCHIVE}",
                dir.display()
            ))
        };
    }
    let cached = cache_dir().join("turbojpeg");
    // The cache is watched through its SOURCE file, written last when fetching. Written during
    // this run, it is newer than the run's start, so cargo runs this script once more on the
    // next build; that run finds the cache and prints nothing, which stops cargo from
    // replaying the fetch message on every build.
    let in_cache = Found {
        dir: cached.join("lib"),
        watch: cached.join("SOURCE"),
    };
    if in_cache.watch.is_file() && in_cache.dir.join(ARCHIVE).is_file() {
        return Ok(in_cache);
    }
    let fetched = fetch_into(&cached);
    if fetched.is_ok() {
        return Ok(in_cache);
    }
    let installed = Path::new("/").join(DEBIAN_LIB_DIR);
    if installed.join(ARCHIVE).is_file() {
        return Ok(Found::archive_in(installed));
    }
    fetched.map(|()| in_cache)
}

/// Downloads Debian's package and keeps only the archive, under `dir/lib`. Works in a fresh
/// directory renamed into place at the end, so two builds at once cannot see half a file.
fn fetch_into(dir: &Path) -> Result<(), String> {
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err("apt-get is not available to fetch it".into());
    }
    println!(
        "cargo::warning=fetching libjpeg-turbo, for JPEG with SIMD, from Debian's \
         {DEBIAN_PACKAGE} into {} (first build only)",
        dir.display()
    );
    let parent = dir.parent().ok_or("the cache directory has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|err| format!("creating {}: {err}", parent.display()))?;
    let work = parent.join(format!("turbojpeg.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|err| format!("creating {}: {err}", work.display()))?;
    let result = download_and_unpack(&work).and_then(|()| {
        match std::fs::rename(&work, dir) {
            Ok(()) => Ok(()),
            // Another build got there first; its copy is as good as ours.
            Err(_) if dir.join("lib").join(ARCHIVE).is_file() => Ok(()),
            Err(err) => Err(format!("moving it to {}: {err}", dir.display())),
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_and_unpack(work: &Path) -> Result<(), String> {
    run(Command::new("apt-get")
        .args(["download", DEBIAN_PACKAGE])
        .current_dir(work))?;
    let package = std::fs::read_dir(work)
        .map_err(|err| err.to_string())?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let unpacked = work.join("unpacked");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&package)
        .arg(&unpacked))?;
    let lib = work.join("lib");
    std::fs::create_dir_all(&lib).map_err(|err| err.to_string())?;
    std::fs::rename(
        unpacked.join(DEBIAN_LIB_DIR).join(ARCHIVE),
        lib.join(ARCHIVE),
    )
    .map_err(|err| format!("the package has no {ARCHIVE}: {err}"))?;
    std::fs::remove_dir_all(&unpacked).map_err(|err| err.to_string())?;
    std::fs::remove_file(&package).map_err(|err| err.to_string())?;
    // Which build this is, for whoever looks in the cache.
    let name = package.file_name().unwrap_or_default().to_string_lossy();
    let name = name.replace("%3a", ":");
    std::fs::write(work.join("SOURCE"), format!("{name}\n")).map_err(|err| err.to_string())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("running {command:?}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_line = stderr.lines().last().unwrap_or("").trim();
    Err(format!("{command:?} failed: {last_line}"))
}

/// The project's cache, by the same rule as `hybridlab_tools::cache_dir`, which a
/// build script cannot call without building the AWS SDK first.
fn cache_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let Some(dir) = non_empty("HYBRIDLAB_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("hybridlab");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".cache").join("hybridlab");
    }
    std::env::temp_dir().join("hybridlab-cache")
}
