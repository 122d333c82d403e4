//! `agora`: the single binary that administers and serves an Agora hub.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod format;
mod generate;
mod home;
mod http;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Prints an error chain as `error: ...` / `caused by: ...`, in colour on a terminal.
fn report(e: &anyhow::Error) -> ExitCode {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (red, dim, reset) = if colour {
        ("\x1b[1;31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    eprintln!("{red}error:{reset} {e}");
    for cause in e.chain().skip(1) {
        eprintln!("{dim}  caused by:{reset} {cause}");
    }
    ExitCode::FAILURE
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGORA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
