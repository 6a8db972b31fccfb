//! The tags that mark what hybridlab made. `up` writes them, `down`'s sweep and `status`
//! find resources by them, and the sandbox's agent reads them to know which instances to run
//! as image servers and how to reach them.

/// Every resource of a stack: `hybridlab:stack=<stack id>`.
pub const STACK_TAG: &str = "hybridlab:stack";

/// What an instance is for.
pub const ROLE_TAG: &str = "hybridlab:role";

/// The [`ROLE_TAG`] value of the image server's instance.
pub const ROLE_IMAGE_SERVER: &str = "image-server";

/// Set by the sandbox on an instance it runs: the loopback URL its server answers on (an
/// instance's invented public IP leads nowhere).
pub const ENDPOINT_TAG: &str = "hybridlab:endpoint";
