//! `valuetrace`: one binary for the server, the demo and the command-line queries.
//!
//! A thin layer over the library crates: argument parsing ([`Cli`]), logging, and one module per
//! command under `commands/`.

mod commands;
mod demo;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "valuetrace",
    version,
    about = "API analytics that answers in business language"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run the server with a configuration file.
    Serve {
        /// Path to valuetrace.toml (see config/valuetrace.example.toml).
        #[arg(long, default_value = "valuetrace.toml")]
        config: PathBuf,
        /// Overrides `listen` from the file and VALUETRACE_LISTEN.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Overrides `data_dir` from the file and VALUETRACE_DATA_DIR.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make a running server re-read its configuration file: keys and projects change without
    /// a restart (the same as sending it SIGHUP).
    Reload {
        /// Path to the valuetrace.toml the server runs with.
        #[arg(long, default_value = "valuetrace.toml")]
        config: PathBuf,
        /// The server's data directory, if it was overridden at start.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Start a server on the embedded store and feed it realistic e-commerce traffic.
    Demo(commands::demo::DemoArgs),
    /// Ask a running server a question and print the answer as a table (or JSON).
    #[command(subcommand)]
    Query(commands::query::QueryCommand),
    /// Alert rules, states, history, dry runs, silences and the metric catalog of a running
    /// server; `lint` checks a configuration's catalog and rules offline.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCommand),
    /// Print a new API key and the hash to put in valuetrace.toml.
    Keygen {
        /// `ingest` or `read`.
        #[arg(long, default_value = "ingest")]
        role: String,
    },
}

fn main() -> std::process::ExitCode {
    // HTTP clients (the demo's load, queries, alert deliveries) use rustls with the ring provider.
    valuetrace_alerts::deliver::install_tls_provider();
    let cli = Cli::parse();
    // The server logs at info; interactive commands only show warnings unless asked.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VALUETRACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only on a terminal (and without NO_COLOR): logs piped to a file, journald or a
    // collector stay plain text (escape codes there are noise that breaks grep and log parsers).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => commands::serve::run(&config, listen, data_dir),
        Command::Reload { config, data_dir } => commands::serve::reload(&config, data_dir),
        Command::Demo(args) => commands::demo::run(args),
        Command::Query(query) => commands::query::run(query),
        Command::Alerts(alerts) => commands::alerts::run(alerts),
        Command::Keygen { role } => commands::keygen(&role),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
