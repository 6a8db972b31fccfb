//! How much CPU a Lambda execution environment gets: Lambda allocates CPU in proportion to the
//! configured memory ([`ONE_VCPU_MB`] is one vCPU), and the sandbox says in its status how it
//! imitates that on the machine it runs on ([`LambdaCpuShare`], under [`STATUS_FIELD`]). The
//! sandbox writes the status; the console reads it (`hybridlab sandbox status`, the bench's
//! memory sweep): one module, both sides.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The memory Lambda gives one full vCPU: "at 1,769 MB, a function has the equivalent of one
/// vCPU" (AWS Lambda Developer Guide, "Configuring Lambda function memory"); 10,240 MB gets 6.
pub const ONE_VCPU_MB: u32 = 1769;

/// The key of the sandbox's status (`/_hybridlab/health`) that holds a [`LambdaCpuShare`].
pub const STATUS_FIELD: &str = "lambda_cpu";

/// How the sandbox caps each execution environment's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuMechanism {
    /// A cgroup v2 group per environment, capped by its `cpu.max`.
    #[serde(rename = "cgroup-v2 cpu.max")]
    CgroupV2,
    /// A cgroup v1 `cpu` group per environment, capped by `cpu.cfs_quota_us`.
    #[serde(rename = "cgroup-v1 cpu.cfs_quota_us")]
    CgroupV1,
    /// No cap: every environment may use the whole machine.
    #[serde(rename = "none")]
    None,
}

impl CpuMechanism {
    /// The name the status gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup-v2 cpu.max",
            Self::CgroupV1 => "cgroup-v1 cpu.cfs_quota_us",
            Self::None => "none",
        }
    }
}

/// What the sandbox's status says about the CPU share of its Lambda environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaCpuShare {
    pub mechanism: CpuMechanism,
    /// Where the groups live, or why there is no cap.
    pub detail: String,
    /// The directory holding one group per environment, named after the environment's log
    /// stream id; absent without a cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

impl LambdaCpuShare {
    /// Whether an environment's CPU follows its memory.
    pub fn capped(&self) -> bool {
        self.mechanism != CpuMechanism::None
    }

    /// The one line a person reads: `CPU share per memory: cgroup-v1 cpu.cfs_quota_us (...)`,
    /// or the note that durations will not fall with memory.
    pub fn line(&self) -> String {
        format!("CPU share per memory: {self}")
    }
}

impl fmt::Display for LambdaCpuShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mechanism {
            CpuMechanism::None => write!(
                f,
                "none ({}); every environment may use the whole machine, so durations will not fall with memory",
                self.detail
            ),
            mechanism => write!(f, "{} ({})", mechanism.name(), self.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_round_trips_through_the_status_with_its_mechanism_names() {
        for (mechanism, name) in [
            (CpuMechanism::CgroupV2, "cgroup-v2 cpu.max"),
            (CpuMechanism::CgroupV1, "cgroup-v1 cpu.cfs_quota_us"),
            (CpuMechanism::None, "none"),
        ] {
            let share = LambdaCpuShare {
                mechanism,
                detail: "why".into(),
                groups: (mechanism != CpuMechanism::None).then(|| "/groups/x".into()),
            };
            let status = serde_json::json!({ STATUS_FIELD: share });
            assert_eq!(status[STATUS_FIELD]["mechanism"], name);
            assert_eq!(mechanism.name(), name);
            let back: LambdaCpuShare =
                serde_json::from_value(status[STATUS_FIELD].clone()).expect("parses");
            assert_eq!(back, share);
            assert_eq!(back.capped(), mechanism != CpuMechanism::None);
        }
    }

    #[test]
    fn the_line_names_the_mechanism_or_says_what_no_cap_means() {
        let capped = LambdaCpuShare {
            mechanism: CpuMechanism::CgroupV1,
            detail: "groups under /x".into(),
            groups: Some("/x".into()),
        };
        assert_eq!(
            capped.line(),
            "CPU share per memory: cgroup-v1 cpu.cfs_quota_us (groups under /x)"
        );
        let none = LambdaCpuShare {
            mechanism: CpuMechanism::None,
            detail: "no cpu controller".into(),
            groups: None,
        };
        assert!(
            none.line()
                .starts_with("CPU share per memory: none (no cpu controller)")
        );
        assert!(none.line().contains("will not fall with memory"));
    }
}
