//! What hybridlab's end-to-end tests share: moto's server (started once per test binary),
//! SDK clients pointed at it, images generated in code, a loopback host that serves them, and
//! the image server running in-process on a free port, the local sandbox, and a headless
//! Chromium for the page tests.

pub mod aws;
pub mod browser;
pub mod fixtures;
pub mod image_host;
pub mod lab;
pub mod procfs;
pub mod sandbox;
pub mod server;
pub mod stack;
