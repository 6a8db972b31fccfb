//! `hybridlab gallery`: prints the stack's gallery URL and opens it in the browser, signed in
//! with a one-time code in the URL's fragment (never the token; see `lab/gallery.rs`). With
//! `--no-open`, or when no browser opener is found, it prints the URL and where the token is
//! (the stack's record), never the token. Exits 3 if there is no such stack.

use std::process::ExitCode;

use serde_json::json;

use super::GalleryArgs;
use crate::lab::gallery::{GalleryServer, Opener};
use crate::lab::target::{TargetChoice, connect};

pub async fn run(target: &TargetChoice, args: GalleryArgs) -> anyhow::Result<ExitCode> {
    let clients = connect(target).await?;
    let server = match GalleryServer::find(&clients, args.stack.as_deref()) {
        Ok(server) => server,
        Err(err) if err.is_not_found() => {
            eprintln!("hybridlab: {err}");
            return Ok(ExitCode::from(super::exit::NOT_FOUND));
        }
        Err(err) => return Err(err.into()),
    };
    let url = server.url();
    let opener = if args.no_open {
        None
    } else {
        let opener = Opener::from_env(|name| std::env::var(name).ok());
        if opener.is_none() {
            eprintln!(
                "hybridlab: no program to open a browser with (set BROWSER, or install xdg-open); open the URL yourself"
            );
        }
        opener
    };
    // The link's lifetime in seconds, once the browser has it.
    let opened_for = match &opener {
        Some(opener) => {
            let code = server.sign_in_code().await?;
            match opener.open(&code.link(&url)).await {
                Ok(()) => Some(code.expires_in_seconds),
                Err(why) => {
                    eprintln!("hybridlab: {why}; open the URL yourself");
                    None
                }
            }
        }
        None => {
            server.check().await?;
            None
        }
    };
    let opened = opened_for.is_some();
    if args.json {
        println!(
            "{}",
            json!({
                "stack": server.stack,
                "url": url,
                "opened": opened,
                "state_file": server.state_file,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    if opened {
        println!(
            "Opened the gallery of stack {} in the browser, signed in with a one-time link: {url}",
            server.stack
        );
    } else {
        println!("Gallery of stack {}: {url}", server.stack);
        println!(
            "  sign in with the stack's token: `outputs.token` in {} (not printed here)",
            server.state_file.display()
        );
    }
    if let Some(sha256) = server.cert_sha256 {
        // The browser warns about the self-signed certificate; this is what its certificate
        // viewer must show before the student accepts it.
        println!(
            "  TLS certificate SHA-256 {sha256}: accept the browser's warning only if it shows this"
        );
        if let Some(seconds) = opened_for {
            println!(
                "  (the link works once, for {seconds} s: if accepting the certificate took longer, run `hybridlab gallery` again)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
