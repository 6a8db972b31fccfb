//! What a client must know to talk to the local sandbox: where it listens by default, the
//! region it answers for, and the operator's throwaway credentials.

/// The edge port AWS emulators conventionally use.
pub const DEFAULT_EDGE_PORT: u16 = 4566;

/// The region the sandbox answers for.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The operator's access key id and secret on the sandbox: any value is accepted, these
/// name the caller in the sandbox's logs.
pub const OPERATOR_ACCESS_KEY_ID: &str = "sandbox";
pub const OPERATOR_SECRET_ACCESS_KEY: &str = "sandbox";
