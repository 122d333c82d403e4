//! `agora`: the single binary that administers and serves an Agora hub. The command line
//! lives here (`cli`: arguments, `commands`: what each does, `gov/`: governance commands);
//! `agora serve` hands over to `agora_http::serve`, and every command reaches data through
//! `agora_service`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// `println!` for command output that ends the process quietly when the reader has gone
/// (`agora sql ... | head`), instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

mod catalogue_cmd;
mod cli;
mod commands;
mod generate;
mod gov;

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
    let result = runtime.block_on(commands::run(args));
    // Work still running (a request cut off at shutdown) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1)
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
