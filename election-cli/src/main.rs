//! The `election` command: one binary whose subcommands wire the workspace's libraries together.

mod chaos;
mod demo;

use std::process::ExitCode;

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
    /// Start a logserver and a cluster of nodes on loopback, and show who leads as you break it.
    Demo(demo::DemoArgs),
    /// Drive a seeded campaign of real faults (kill, pause, leave, blocks, splits, an isolated
    /// leader, flapping links) against a cluster started here, and judge it from the log:
    /// invariants, reconvergence after each heal, unavailability; exit 1 on an unexpected
    /// violation.
    Chaos(chaos::ChaosArgs),
    /// Run one election node over UDP (stop it with Ctrl-C or SIGTERM to leave gracefully).
    Node(election_net::NodeArgs),
    /// Start every node of the config file whose IP belongs to this host, and supervise them.
    Run(election_net::RunArgs),
    /// Write a new random cluster key to a new file (mode 0600) for the nodes' --key-file.
    Keygen(KeygenArgs),
    /// Run the logserver: the central activity log, the live /status page and the JSON API.
    Logserver(logserver::ServeArgs),
    /// Simulate a cluster deterministically: run one seed, check many, replay a trace.
    #[command(subcommand)]
    Sim(election_sim::cli::SimCommand),
}

/// Options of `election keygen`.
#[derive(clap::Args, Debug)]
struct KeygenArgs {
    /// The key file to create (it must not exist yet).
    path: std::path::PathBuf,
    /// Print the result as JSON ({"path":…,"key_id":…}) (default: off, a sentence).
    #[arg(long)]
    json: bool,
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let id = election_net::keys::generate(&args.path)?;
    if args.json {
        let out = serde_json::json!({ "path": args.path, "key_id": format!("{id:08x}") });
        println!("{out}");
    } else {
        println!(
            "wrote key {id:08x} to {}; copy it (mode 0600) to every node and pass --key-file",
            args.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    if let Some(code) = chaos::detached::child_role().or_else(demo::child_role) {
        return code;
    }
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line. The libraries' errors already quote their cause in their
/// message, so a cause the line already contains is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Logs go to stderr; RUST_LOG overrides the default level (info; warnings only for the
    // demo, the chaos campaign and the simulator, whose own output is the point).
    let quiet = matches!(cli.command, Cmd::Demo(_) | Cmd::Sim(_) | Cmd::Chaos(_));
    let default = if quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Demo(args) => block_on(Threads::Many, demo::run(args)),
        Cmd::Chaos(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(chaos::run(args)),
        // A node is one event loop plus a reporter task: one thread keeps its idle CPU and
        // memory low.
        Cmd::Node(args) => block_on(Threads::One, election_net::run_node(args)),
        Cmd::Run(args) => block_on(Threads::Many, election_net::run_processes(args)),
        Cmd::Logserver(args) => block_on(Threads::Many, logserver::serve(args)),
        Cmd::Sim(cmd) => Ok(election_sim::cli::run(cmd)),
        Cmd::Keygen(args) => keygen(&args),
    }
}

/// Which tokio runtime a subcommand runs on.
enum Threads {
    One,
    Many,
}

fn block_on<E>(
    threads: Threads,
    work: impl Future<Output = Result<(), E>>,
) -> anyhow::Result<ExitCode>
where
    anyhow::Error: From<E>,
{
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::Many => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()?.block_on(work)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand, at every depth, has a description and every flag or argument a help
    /// text, so `--help` is complete wherever a user asks for it.
    #[test]
    fn every_subcommand_and_flag_is_explained() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() {
                missing.push(format!("`{path}` has no description"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("`{path}` argument {id} has no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cli, "election", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
