//! `valuetrace serve --config valuetrace.toml` and `valuetrace reload`.
//!
//! The server writes its pid to `<data_dir>/valuetrace.pid` and reloads keys and projects from
//! the configuration file on SIGHUP; `valuetrace reload` validates the file first, then sends
//! the signal and reports what the server made of it.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use valuetrace_server::config::Config;
use valuetrace_server::{AppState, Server};

/// The configuration as `serve` sees it: file, then environment, then flags.
fn load(
    config_path: &Path,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut config = Config::from_file(config_path).map_err(anyhow::Error::msg)?;
    config.apply_env().map_err(anyhow::Error::msg)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    Ok(config)
}

fn pid_path(config: &Config) -> PathBuf {
    config.data_dir.join("valuetrace.pid")
}

pub fn run(
    config_path: &Path,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = load(config_path, listen, data_dir.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let pid_file = pid_path(&config);
        let server = Server::open(config).map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        std::fs::write(&pid_file, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write {}", pid_file.display()))?;
        // Installed before the server is ready, so an early SIGHUP never kills the process.
        #[cfg(unix)]
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        let reloader = tokio::spawn(reload_on_hangup(
            #[cfg(unix)]
            hangups,
            server.state.clone(),
            config_path.to_owned(),
            listen,
            data_dir,
        ));
        tracing::info!(address = %listener.local_addr()?, "valuetrace serving");
        let served = server.run(listener, super::shutdown_signal()).await;
        reloader.abort();
        let _ = std::fs::remove_file(&pid_file);
        served.context("server failed")?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

/// Re-reads the configuration on every SIGHUP and applies its keys and projects.
async fn reload_on_hangup(
    #[cfg(unix)] mut hangups: tokio::signal::unix::Signal,
    state: Arc<AppState>,
    config_path: PathBuf,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
) {
    #[cfg(unix)]
    {
        while hangups.recv().await.is_some() {
            let result = load(&config_path, Some(listen), data_dir.clone())
                .map_err(|error| format!("{error:#}"))
                .and_then(|config| state.reload(&config));
            match result {
                Ok(summary) => tracing::warn!(
                    projects = summary.projects,
                    keys = summary.keys,
                    added = ?summary.added_projects,
                    removed = ?summary.removed_projects,
                    needs_restart = ?summary.needs_restart,
                    "configuration reloaded"
                ),
                Err(error) => {
                    tracing::error!(%error, "configuration reload failed; keeping the running one")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (state, config_path, listen, data_dir);
}

/// `valuetrace reload`: validates the file, signals the running server, and waits for its
/// reload counter to move.
pub fn reload(config_path: &Path, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(config_path, None, data_dir)?;
    config
        .validate()
        .map_err(|problems| anyhow::anyhow!("{}: {problems}", config_path.display()))?;
    let pid_file = pid_path(&config);
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| {
            format!(
                "cannot read {}: is the server running with this data_dir?",
                pid_file.display()
            )
        })?
        .trim()
        .parse::<u32>()
        .with_context(|| format!("{} does not hold a pid", pid_file.display()))?;
    let before = reload_counts(config.listen);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .context("cannot run `kill`")?;
    if !status.success() {
        bail!(
            "could not signal process {pid} (from {})",
            pid_file.display()
        );
    }
    let Some(before) = before else {
        println!("sent SIGHUP to {pid}; the server log reports the result");
        return Ok(());
    };
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        match reload_counts(config.listen) {
            Some((ok, _)) if ok > before.0 => {
                println!(
                    "reloaded: keys and projects of {} are live",
                    config_path.display()
                );
                return Ok(());
            }
            Some((_, failed)) if failed > before.1 => {
                bail!("the server refused the new configuration; its log says why")
            }
            _ => {}
        }
    }
    bail!("sent SIGHUP to {pid} but saw no reload within 5 s; check the server log")
}

/// `valuetrace_config_reloads_total` ok and failed, read from the server's `/metrics`.
fn reload_counts(listen: SocketAddr) -> Option<(f64, f64)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&listen, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let count = |result: &str| {
        let prefix = format!("valuetrace_config_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some((count("ok"), count("failed")))
}
