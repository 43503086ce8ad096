//! Command-line parsing and dispatch; each subcommand lives in its own module.

mod live_cmd;
mod policy_cmds;
mod scan_cmd;
mod sign_cmd;

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
        /// Fail unless the module is signed by this ed25519 public key (64 hex digits,
        /// or a file holding them).
        #[arg(long)]
        trust_key: Option<String>,
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
    /// Capture from a network interface and evaluate continuously; the module file is
    /// watched and swapped while running.
    Live(live_cmd::LiveArgs),
    /// Make an ed25519 key pair for signing modules: writes the private key, prints the
    /// public key.
    Keygen {
        /// Where to write the private key (hex seed).
        #[arg(short, long)]
        output: PathBuf,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Sign a compiled module, so hosts started with `--trust-key` accept it.
    Sign {
        /// The private key file written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The module to sign (signed in place unless -o is given).
        module: PathBuf,
        /// Write the signed module here instead.
        #[arg(short, long)]
        output: Option<PathBuf>,
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
        Command::Inspect {
            module,
            json,
            trust_key,
        } => policy_cmds::inspect(&module, json, trust_key.as_deref()),
        Command::Test { policy, cases } => policy_cmds::test(&policy, &cases),
        Command::Scan(args) => scan_cmd::scan(args),
        Command::Records { inputs, bpf } => scan_cmd::records(&inputs, bpf),
        Command::Live(args) => live_cmd::live(args),
        Command::Keygen { output, force } => sign_cmd::keygen(&output, force),
        Command::Sign {
            key,
            module,
            output,
        } => sign_cmd::sign(&key, &module, output.as_ref()),
    }
}
