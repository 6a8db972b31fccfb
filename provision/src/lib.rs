//! Creates, inspects and deletes the hybridlab stack, and runs the local sandbox.
//! So far: installing moto's server into hybridlab's own virtualenv and running it on
//! loopback, which the sandbox and every test are built on.

pub mod moto;
pub mod paths;
