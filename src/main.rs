use std::process::ExitCode;

use clap::Parser;

use quantbench::cli::Cli;
use quantbench::commands::{self, Outcome};

/// Exit codes: 0 success, 1 error (message on stderr), 2 usage error (from clap),
/// 3 a gate failed (`report`/`gate`/`merge`: a threshold; `compare --fail-on regression`: a regression;
/// `report --check-repro`: a difference), 130 `report` stopped by SIGINT/SIGTERM (partial report written).
fn main() -> ExitCode {
    match commands::run(Cli::parse()) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::ThresholdFailed(failures)) => {
            for f in failures {
                eprintln!("threshold failed: {f}");
            }
            ExitCode::from(3)
        }
        Ok(Outcome::Regressed(lines)) => {
            for l in lines {
                eprintln!("regression: {l}");
            }
            ExitCode::from(3)
        }
        Ok(Outcome::NotReproduced(lines)) => {
            for l in lines {
                eprintln!("not reproduced: {l}");
            }
            ExitCode::from(3)
        }
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {}", commands::one_line(&e));
            ExitCode::from(1)
        }
    }
}
