//! The example's one binary: `highest-heard sim …` (every simulator command: run, check,
//! replay, …) and `highest-heard node highest-heard IP:PORT …` (a real node over UDP,
//! reporting to the logserver), both from the toolkit's public API.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use highest_heard::HighestHeard;

/// A user-defined leader election, run by the toolkit's drivers.
#[derive(Parser)]
#[command(name = "highest-heard")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate it: run, check many seeds, replay a trace.
    #[command(subcommand)]
    Sim(election_sim::cli::SimCommand),
    /// Run one real node over UDP until Ctrl-C or SIGTERM.
    Node(election_net::NodeArgs),
}

fn main() -> ExitCode {
    let command = Cli::command()
        .mut_subcommand("sim", election_sim::cli::for_protocol::<HighestHeard>)
        .mut_subcommand("node", election_net::for_protocol::<HighestHeard>);
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Sim(cmd) => election_sim::cli::run_for::<HighestHeard>(cmd),
        Command::Node(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            match runtime.block_on(election_net::run_node_with::<HighestHeard>(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
