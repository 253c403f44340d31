//! The `election` command: one binary whose subcommands wire the workspace's libraries together.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Leader election (Bully, Invitation, asynchronous Bully, ring) on real nodes and in simulation.
#[derive(Parser, Debug)]
#[command(name = "election", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one election node over UDP (stop it with Ctrl-C or SIGTERM to leave gracefully).
    Node(election_net::NodeArgs),
    /// Start every node of the config file whose IP belongs to this host, and supervise them.
    Run(election_net::RunArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs go to stderr; RUST_LOG overrides the default level (info).
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    // A node is one event loop plus a reporter task: one thread keeps its idle CPU and memory low.
    let mut builder = match cli.command {
        Cmd::Node(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Cmd::Node(args) => election_net::run_node(args).await?,
            Cmd::Run(args) => election_net::run_processes(args).await?,
        }
        Ok(())
    })
}
