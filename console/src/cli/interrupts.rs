//! Ctrl-C as the bench counts it: the first stops sending and keeps what was measured, the
//! second quits at once. One listener for the whole command, so every phase (a run, a memory
//! update, the restore at the end) sees the same count.

use tokio::sync::watch;

/// The number of Ctrl-Cs so far, shared by every phase of a command.
#[derive(Debug, Clone)]
pub struct Interrupts(watch::Receiver<u32>);

impl Interrupts {
    /// Starts counting. From now on Ctrl-C no longer ends the process by itself.
    pub fn listen() -> Self {
        let (count, receiver) = watch::channel(0);
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                count.send_modify(|count| *count += 1);
            }
        });
        Self(receiver)
    }

    /// The Ctrl-Cs received so far.
    pub fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Resolves once `count` Ctrl-Cs have been received; never if the listener is gone.
    pub async fn reached(&self, count: u32) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|seen| *seen >= count).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
