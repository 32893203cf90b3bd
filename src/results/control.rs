//! What quantization with accuracy control found: the budget, the per-op ranking, every model it tried
//! (the trajectory) and the one it chose. Written as `accuracy_control.json` beside the chosen model's
//! quantization sidecar, and carried by that model's rows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Metric;
use crate::measure::stats::Ratio;

pub const SIDECAR_FILE: &str = "accuracy_control.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DropType {
    /// Points of the metric (WER up or accuracy down, in percentage points).
    #[default]
    Absolute,
    /// Percent of FP32's accuracy (for WER, of 1 − WER).
    Relative,
}

impl DropType {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "absolute" => Ok(DropType::Absolute),
            "relative" => Ok(DropType::Relative),
            _ => Err(format!(
                "unknown drop type `{s}` (known: absolute, relative)"
            )),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            DropType::Absolute => "points",
            DropType::Relative => "% of FP32's accuracy",
        }
    }
}

/// The largest drop a model may have against FP32.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub max_drop: f64,
    pub drop_type: DropType,
}

impl Budget {
    /// The drop of `value` against `fp32`, in this budget's unit (positive = worse).
    pub fn drop(&self, metric: Metric, fp32: f64, value: f64) -> f64 {
        let points = metric.drop_points(fp32, value);
        match self.drop_type {
            DropType::Absolute => points,
            DropType::Relative => {
                let base = metric.accuracy(fp32) * 100.0;
                if base > 0.0 {
                    points / base * 100.0
                } else {
                    f64::INFINITY
                }
            }
        }
    }

    /// Whether a drop is within the budget (a margin of 1e-9 absorbs float rounding of equal counts).
    pub fn holds(&self, drop: f64) -> bool {
        drop <= self.max_drop + 1e-9
    }
}

/// What one step of the search did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StepAction {
    /// Every op the recipe quantizes, quantized.
    Start,
    /// The next op of the ranking reverted to float.
    Revert { op: String },
    /// The ranking's first `count` ops in float (bisecting for the shortest such prefix within budget).
    RevertFirst { count: usize },
    /// A reverted op tried in INT8 again; `kept` when the budget still held.
    Requantize { op: String, kept: bool },
}

impl StepAction {
    pub fn text(&self) -> String {
        match self {
            StepAction::Start => "all quantized".into(),
            StepAction::Revert { op } => format!("revert {op}"),
            StepAction::RevertFirst { count } => format!("revert the ranking's first {count}"),
            StepAction::Requantize { op, kept: true } => format!("re-quantize {op} (kept in INT8)"),
            StepAction::Requantize { op, kept: false } => {
                format!("re-quantize {op} (reverted again)")
            }
        }
    }
}

/// One model the search validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlStep {
    pub step: usize,
    #[serde(flatten)]
    pub action: StepAction,
    /// How many ops this model keeps in float.
    pub reverted: usize,
    /// The metric on the validation set.
    pub value: f64,
    pub drop: f64,
    pub within_budget: bool,
    /// Seconds since the search began, when this step finished.
    pub seconds: f64,
    /// Median latency per series (ms), measured after the search through the interleaved loop.
    #[serde(default)]
    pub latency_ms: BTreeMap<String, f64>,
    #[serde(default)]
    pub speedup: BTreeMap<String, Ratio>,
}

/// One op the recipe quantizes, as the search left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlOp {
    pub op: String,
    pub op_type: String,
    pub files: Vec<String>,
    /// 1 = most sensitive.
    pub rank: usize,
    /// The ranking's score (see `method`); null when the op never ran on the validation set.
    pub sensitivity: Option<f64>,
    pub reverted: bool,
    /// Why it was reverted (or re-quantized): the steps that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The validation set the search judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSet {
    pub manifest: String,
    pub sha256: String,
    pub items: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyControl {
    pub recipe: String,
    pub budget: Budget,
    pub metric: Metric,
    /// How the ops were ranked.
    pub method: String,
    pub validation: ValidationSet,
    pub fp32_value: f64,
    /// The chosen model's metric on the validation set, and its drop.
    pub value: f64,
    pub drop: f64,
    /// Whether the chosen model is within the budget; when not, it is the best model found.
    pub met: bool,
    /// What ended the search early (a limit), if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// The chosen model's ops kept in float, in the order they were reverted.
    pub reverted: Vec<String>,
    /// The step the chosen model was validated at.
    pub chosen_step: usize,
    pub ops: Vec<ControlOp>,
    pub trajectory: Vec<ControlStep>,
    pub seconds: f64,
}

impl AccuracyControl {
    /// The plain sentence a report and the CLI lead with.
    pub fn verdict(&self) -> String {
        let unit = self.budget.drop_type.unit();
        if self.met {
            format!(
                "budget met: drop {:.2} {unit} ≤ {:.2} on the validation set with {} of {} ops reverted to float",
                self.drop,
                self.budget.max_drop,
                self.reverted.len(),
                self.ops.len()
            )
        } else {
            format!(
                "budget NOT met: the best model found drops {:.2} {unit}, {:.2} over the budget of {:.2}{}; it is kept with {} ops reverted",
                self.drop,
                self.drop - self.budget.max_drop,
                self.budget.max_drop,
                self.stopped_by
                    .as_deref()
                    .map_or(String::new(), |s| format!(" ({s})")),
                self.reverted.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_in_points_and_relative_to_fp32() {
        let abs = Budget {
            max_drop: 0.3,
            drop_type: DropType::Absolute,
        };
        assert!((abs.drop(Metric::Wer, 0.05, 0.053) - 0.3).abs() < 1e-9);
        assert!(abs.holds(abs.drop(Metric::Wer, 0.05, 0.053)));
        assert!(!abs.holds(abs.drop(Metric::Wer, 0.05, 0.054)));
        assert!(abs.drop(Metric::VqaAccuracy, 0.9, 0.95) < 0.0);
        let rel = Budget {
            max_drop: 1.0,
            drop_type: DropType::Relative,
        };
        // WER 5 % → 95 % accuracy; 1.9 points worse is 2 % of it.
        assert!((rel.drop(Metric::Wer, 0.05, 0.069) - 2.0).abs() < 1e-9);
        assert!((rel.drop(Metric::VqaAccuracy, 0.5, 0.495) - 1.0).abs() < 1e-9);
    }
}
