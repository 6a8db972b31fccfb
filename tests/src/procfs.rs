//! What the tests and benches read from `/proc`: each process's name, state, parent and CPU
//! time, to find a sandbox's processes and to split CPU time between them, and a process's
//! peak memory.

/// The fields of a `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) line the tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// The command name, without its parentheses.
    pub name: String,
    /// `R`, `S`, `Z` (a zombie: ended, not yet waited for), ...
    pub state: char,
    pub parent: u32,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
}

impl ProcStat {
    /// Parses a stat line. The name is in parentheses and may itself hold spaces and
    /// parentheses, so the fields are counted from the last `)`.
    pub fn parse(line: &str) -> Option<Self> {
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let name = line.get(open + 1..close)?.to_owned();
        let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
        let state = fields.first()?.chars().next()?;
        let parent = fields.get(1)?.parse().ok()?;
        let ticks = |at: usize| fields.get(at)?.parse::<u64>().ok();
        Some(Self {
            name,
            state,
            parent,
            cpu_ticks: ticks(11)? + ticks(12)?,
        })
    }

    /// The stat file at `path`, if it can be read and parsed.
    pub fn read(path: &str) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// Process `pid`'s, while it exists.
    pub fn of(pid: u32) -> Option<Self> {
        Self::read(&format!("/proc/{pid}/stat"))
    }

    pub fn zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Every process there is, with its stat.
pub fn processes() -> Vec<(u32, ProcStat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, ProcStat::of(pid)?))
        })
        .collect()
}

/// The peak resident set of process `pid` (`VmHWM` in `/proc/<pid>/status`), in bytes.
pub fn peak_resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether `pid` is a process that has not ended (a zombie has).
pub fn alive(pid: u32) -> bool {
    ProcStat::of(pid).is_some_and(|stat| !stat.zombie())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "4242 (tokio (rt) worker) S 17 4242 17 0 -1 4194304 900 0 0 0 31 9 0 0 20 0 3 0 100 0 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                name: "tokio (rt) worker".into(),
                state: 'S',
                parent: 17,
                cpu_ticks: 40,
            })
        );
        assert_eq!(ProcStat::parse("4242 (cut"), None);
    }

    #[test]
    fn this_process_has_a_peak_resident_set() {
        let peak = peak_resident_bytes(std::process::id()).expect("VmHWM");
        assert!(peak > 1024 * 1024, "{peak}");
    }

    #[test]
    fn this_process_is_alive_and_has_a_parent() {
        let own = ProcStat::of(std::process::id()).expect("this process's stat");
        assert!(!own.zombie());
        assert!(own.parent > 0);
        assert!(alive(std::process::id()));
    }
}
