//! `valuetrace serve --config valuetrace.toml`.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use valuetrace_server::Server;
use valuetrace_server::config::Config;

pub fn run(
    config_path: &Path,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = Config::from_file(config_path).map_err(anyhow::Error::msg)?;
    config.apply_env().map_err(anyhow::Error::msg)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let server = Server::open(config).map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, "valuetrace serving");
        server
            .run(listener, super::shutdown_signal())
            .await
            .context("server failed")?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}
