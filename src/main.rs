//! `linkward`: check, compile and inspect policies; scan captures and flow logs against
//! them. Exit codes: 0 success, 1 findings or policy problems (as each command says),
//! 2 usage or input/output errors.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("linkward: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
