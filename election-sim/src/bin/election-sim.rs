//! Standalone simulator command: the same subcommands as `election sim …`.

use std::process::ExitCode;

use clap::Parser;
use election_sim::cli::{self, SimCommand};

/// Deterministic leader-election simulator: run, check many seeds, replay traces.
#[derive(Parser)]
#[command(name = "election-sim", version)]
struct Args {
    #[command(subcommand)]
    command: SimCommand,
}

fn main() -> ExitCode {
    cli::run(Args::parse().command)
}
