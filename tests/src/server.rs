//! The image server in-process on a free loopback port, with its own bucket and table on moto.

use std::net::SocketAddr;

use hybridlab_ec2_server::{AppState, PipelineBuckets, ServerConfig, serve};
use tokio::sync::oneshot;

use crate::aws::{Clients, clients, unique_name};
use crate::image_host::ImageHost;

/// The token a lab's server requires unless a test sets another: as long as the server's
/// minimum (`hybridlab_wire::token::MIN_TOKEN_CHARS`), since shorter ones are refused at start.
pub const LAB_TOKEN: &str = "lab-token-0123456789abcdef0123456789abcdef";

/// One lab for one test: moto clients, a fresh bucket and table, an image host and a running
/// image server. Dropping it stops the servers.
#[derive(Debug)]
pub struct Lab {
    pub clients: Clients,
    pub bucket: String,
    pub table: String,
    /// The event-driven pipeline's buckets, for a lab started with one.
    pub pipeline: Option<PipelineBuckets>,
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
        Self::start_inner(false, adjust).await
    }

    /// A lab with the event-driven pipeline's uploads and processed buckets too (created, and
    /// set in the configuration before `adjust` sees it).
    pub async fn start_with_pipeline(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_inner(true, adjust).await
    }

    async fn start_inner(with_pipeline: bool, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let clients = clients().await;
        let bucket = unique_name("images");
        let table = unique_name("images");
        clients.create_bucket(&bucket).await;
        clients.create_table(&table).await;
        let images = ImageHost::start().await;
        let mut config = ServerConfig::new(&bucket, &table);
        config.allow_private_addresses = true;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.token = Some(LAB_TOKEN.to_owned());
        if with_pipeline {
            let uploads = unique_name("uploads");
            let processed = unique_name("processed");
            clients.create_bucket(&uploads).await;
            clients.create_bucket(&processed).await;
            config.uploads_bucket = Some(uploads);
            config.processed_bucket = Some(processed);
        }
        adjust(&mut config);
        let pipeline = config.pipeline().expect("a valid pipeline configuration");
        let server = RunningServer::start(config, &clients).await;
        Self {
            clients,
            bucket,
            table,
            pipeline,
            images,
            server,
        }
    }

    /// The pipeline's buckets of a lab started with [`Lab::start_with_pipeline`].
    pub fn pipeline(&self) -> &PipelineBuckets {
        self.pipeline
            .as_ref()
            .expect("a lab started with start_with_pipeline")
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
