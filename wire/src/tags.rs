//! The tags that mark what hybridlab made. `up` writes them, `down`'s sweep and `status`
//! find resources by them, and the sandbox's agent reads them to know which instances to boot
//! (image servers and job workers) and how to reach them.

/// Every resource of a stack: `hybridlab:stack=<stack id>`.
pub const STACK_TAG: &str = "hybridlab:stack";

/// What an instance is for.
pub const ROLE_TAG: &str = "hybridlab:role";

/// The [`ROLE_TAG`] value of the image server's instance.
pub const ROLE_IMAGE_SERVER: &str = "image-server";

/// The [`ROLE_TAG`] value of a job worker's instance, which exists for one job.
pub const ROLE_JOB_WORKER: &str = "job-worker";

/// Set by the sandbox on an instance it runs: the loopback URL its server answers on (an
/// instance's invented public IP leads nowhere).
pub const ENDPOINT_TAG: &str = "hybridlab:endpoint";

/// On a job worker's instance: the job it exists for.
pub const JOB_TAG: &str = "hybridlab:job";
