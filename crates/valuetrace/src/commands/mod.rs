//! One module per command.

pub mod alerts;
pub mod answers;
pub mod demo;
pub mod journeys;
pub mod output;
pub mod query;
pub mod serve;

/// `valuetrace keygen`.
pub fn keygen(role: &str) -> anyhow::Result<()> {
    let prefix = match role {
        "ingest" => "vt_ingest",
        "read" => "vt_read",
        other => anyhow::bail!("--role must be `ingest` or `read`, got `{other}`"),
    };
    let key = valuetrace_server::auth::generate_key(prefix);
    println!("key:  {key}");
    println!("hash: {}", valuetrace_server::auth::key_hash_string(&key));
    println!(
        "put the hash in `{role}_key_hashes` of the project in valuetrace.toml; give the key to the client"
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
