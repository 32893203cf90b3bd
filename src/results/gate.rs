//! Whether a report lets a release through: every verdict holds, and the report is complete.

use super::ExperimentResult;

/// A report's gate.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    Pass,
    /// Each failed verdict, as "model variant: check limit (got value)".
    Fail(Vec<String>),
}

/// Why a report cannot be gated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GateError {
    #[error("the report is incomplete (stopped{}; {} rows finished): gate its finished rows with --allow-incomplete", .interrupted.as_deref().map(|m| format!(" during {m}")).unwrap_or_default(), .rows)]
    Incomplete {
        interrupted: Option<String>,
        rows: usize,
    },
    #[error("the report has no rows")]
    Empty,
}

pub fn gate(r: &ExperimentResult, allow_incomplete: bool) -> Result<Gate, GateError> {
    if !r.complete && !allow_incomplete {
        return Err(GateError::Incomplete {
            interrupted: r.interrupted.clone(),
            rows: r.rows.len(),
        });
    }
    if r.rows.is_empty() {
        return Err(GateError::Empty);
    }
    let failures = r.failures();
    Ok(if failures.is_empty() {
        Gate::Pass
    } else {
        Gate::Fail(failures)
    })
}
