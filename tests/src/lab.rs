//! One deployed stack on the shared sandbox for the tests of the commands that use a stack
//! (`invoke`, `bench`, `logs`, `s3`, `db`): brought up once per test binary through the
//! provision crate, then driven through the `hybridlab` binary with `--stack`.

use std::sync::OnceLock;

use hybridlab_provision::stack::progress::silent;
use hybridlab_provision::stack::{
    StackClients, StackId, StackNames, StackSettings, Target, UpOptions, up,
};

use crate::sandbox::sandbox;

/// The shared stack: its id, the names of its resources and the endpoint it lives on.
#[derive(Debug, Clone)]
pub struct LabStack {
    pub endpoint: String,
    pub stack: String,
    pub names: StackNames,
}

static LAB: OnceLock<LabStack> = OnceLock::new();

/// The shared stack, deployed on first use.
pub async fn lab_stack() -> &'static LabStack {
    let endpoint = sandbox().await.endpoint().to_owned();
    tokio::task::spawn_blocking(move || {
        LAB.get_or_init(|| {
            std::thread::spawn(move || deploy(endpoint))
                .join()
                .expect("the deploying thread does not panic")
        })
    })
    .await
    .expect("deploying does not panic")
}

fn deploy(endpoint: String) -> LabStack {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let clients = StackClients::connect(&Target::Sandbox {
            endpoint: endpoint.clone(),
        })
        .await
        .expect("clients for the sandbox");
        let stack = StackId::generate();
        let options = UpOptions {
            stack: stack.clone(),
            settings: StackSettings::new("us-east-1"),
            artifacts: crate::sandbox::lab_programs(),
            fail_after: None,
        };
        up(&clients, options, silent())
            .await
            .unwrap_or_else(|err| panic!("the shared stack comes up: {err}"));
        LabStack {
            endpoint,
            names: StackNames::new(&stack),
            stack: stack.to_string(),
        }
    })
}
