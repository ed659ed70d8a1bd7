//! The standby server's threads, one per core (part of the composition root: it starts them
//! and ends them).

use std::sync::Arc;

use anyhow::Context;

/// The threads the standby's connections are served on: one per core, each with a
/// single-threaded runtime of its own ([`crate::http::server::Cores`] says why). They run
/// until [`StandbyCores::stop`].
pub struct StandbyCores {
    cores: Arc<crate::http::server::Cores>,
    threads: Vec<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl StandbyCores {
    /// As many threads as the machine has cores (as this process may use).
    pub fn start() -> anyhow::Result<StandbyCores> {
        Self::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `n` threads (at least one), named `standby-0`….
    pub fn with_threads(n: usize) -> anyhow::Result<StandbyCores> {
        let (mut handles, mut threads) = (Vec::new(), Vec::new());
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a runtime for the standby server")?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("standby-{i}"))
                .spawn(move || {
                    // Dropping the sender ends it as well as sending does.
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                    // Whatever is left (a pooled connection to a proxied origin) is dropped.
                    rt.shutdown_background();
                })
                .context("cannot start a thread for the standby server")?;
            threads.push((stop, thread));
        }
        Ok(StandbyCores {
            cores: Arc::new(crate::http::server::Cores::new(handles)),
            threads,
        })
    }

    /// For the standby's listeners.
    pub fn cores(&self) -> Arc<crate::http::server::Cores> {
        self.cores.clone()
    }

    /// Ends the threads and waits for them (blocking: call it where blocking is allowed),
    /// once the listeners served on them have returned.
    pub fn stop(self) {
        for (stop, thread) in self.threads {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}
