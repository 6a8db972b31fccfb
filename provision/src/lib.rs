//! Creates, inspects and deletes the hybridlab stack, and runs the local sandbox.
//! So far: moto installed and run by hybridlab itself, and the sandbox's compute agent that
//! runs deployed functions and image-server instances as local processes behind one endpoint.

pub mod moto;
pub mod paths;
pub mod sandbox;
pub mod userdata;
