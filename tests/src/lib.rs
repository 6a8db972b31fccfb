//! What hybridlab's end-to-end tests share: moto and the sandbox (one per test binary), SDK
//! clients pointed at them, the workspace's programs built once, images generated in code,
//! loopback hosts that serve them, the image server in-process, and a headless Chromium.

pub mod aws;
pub mod browser;
pub mod fixtures;
pub mod hostile_images;
pub mod image_host;
pub mod lab;
pub mod procfs;
pub mod sandbox;
pub mod server;
pub mod server_process;
pub mod stack;
