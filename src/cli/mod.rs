//! Command-line parsing and dispatch; each subcommand lives in its own module.

mod policy_cmds;
mod scan_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "linkward",
    version,
    about = "Finds traffic that bypasses the private endpoints of Azure Health Data Services workspaces"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a policy: errors with file:line:column, and lint warnings.
    Check {
        policy: PathBuf,
        /// Treat warnings as failures (exit 1).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Compile a policy into a sandboxed WebAssembly component.
    Compile {
        policy: PathBuf,
        /// Where to write the module.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show what a compiled module says about itself.
    Inspect {
        module: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run table-driven cases through a policy (compiled on the fly) or a module.
    Test { policy: PathBuf, cases: PathBuf },
    /// Scan capture files (pcap, pcapng) against a policy and report findings.
    Scan(scan_cmd::ScanArgs),
    /// Print the flow and DNS records linkward rebuilds from captures, one JSON object
    /// per line, without evaluating a policy.
    Records {
        /// Capture files (pcap or pcapng).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Only packets matching this libpcap filter expression are used.
        #[arg(long)]
        bpf: Option<String>,
    },
}

/// How findings are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON lines with Suricata EVE alert fields.
    Eve,
    /// A grouped, readable summary.
    Table,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check {
            policy,
            deny_warnings,
        } => policy_cmds::check(&policy, deny_warnings),
        Command::Compile { policy, output } => policy_cmds::compile(&policy, &output),
        Command::Inspect { module, json } => policy_cmds::inspect(&module, json),
        Command::Test { policy, cases } => policy_cmds::test(&policy, &cases),
        Command::Scan(args) => scan_cmd::scan(args),
        Command::Records { inputs, bpf } => scan_cmd::records(&inputs, bpf),
    }
}
