use std::process::ExitCode;

use clap::Parser;

use quantbench::cli::Cli;
use quantbench::commands::{self, Outcome};

/// Exit codes: 0 success, 1 error (message on stderr), 2 usage error (from clap),
/// 3 `report` finished and wrote its files but a threshold of the experiment failed.
fn main() -> ExitCode {
    match commands::run(Cli::parse()) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::ThresholdFailed(failures)) => {
            for f in failures {
                eprintln!("threshold failed: {f}");
            }
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {}", commands::one_line(&e));
            ExitCode::from(1)
        }
    }
}
