//! The image server in-process on a free loopback port, with its own bucket and table on moto.

use std::net::SocketAddr;

use hybridlab_ec2_server::{AppState, ServerConfig, serve};
use tokio::sync::oneshot;

use crate::aws::{Clients, clients, unique_name};
use crate::image_host::ImageHost;

/// One lab for one test: moto clients, a fresh bucket and table, an image host and a running
/// image server. Dropping it stops the servers.
#[derive(Debug)]
pub struct Lab {
    pub clients: Clients,
    pub bucket: String,
    pub table: String,
    pub images: ImageHost,
    pub server: RunningServer,
}

impl Lab {
    /// A lab whose server allows loopback image URLs (the image host is on loopback).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A lab whose server configuration `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let clients = clients().await;
        let bucket = unique_name("images");
        let table = unique_name("images");
        clients.create_bucket(&bucket).await;
        clients.create_table(&table).await;
        let images = ImageHost::start().await;
        let mut config = ServerConfig::new(&bucket, &table);
        config.allow_private_addresses = true;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        adjust(&mut config);
        let server = RunningServer::start(config, &clients).await;
        Self {
            clients,
            bucket,
            table,
            images,
            server,
        }
    }
}

/// A running image server; stops (gracefully) when dropped.
#[derive(Debug)]
pub struct RunningServer {
    pub url: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
}

impl RunningServer {
    pub async fn start(config: ServerConfig, clients: &Clients) -> Self {
        let listen = config.listen;
        let state = AppState::new(config, clients.s3.clone(), clients.dynamodb.clone())
            .expect("a valid configuration");
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let _ = serve(listener, served, async {
                let _ = stop.await;
            })
            .await;
        });
        Self {
            url,
            state,
            shutdown: Some(shutdown),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
