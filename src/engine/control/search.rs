//! The search itself, over any way of building and validating a model (`Trial`), so it is tested in
//! milliseconds: quantize everything; while the drop exceeds the budget, revert the next op of the ranking;
//! once it holds, try each reverted op in INT8 again (least sensitive first) and keep it there when the
//! budget still holds. Every distinct model validated is a step of the trajectory; a set of reverted ops is
//! never validated twice.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::results::control::{Budget, ControlStep, StepAction};
use crate::results::Metric;

/// Ops reverted one at a time before the search bisects the ranking for the shortest prefix that holds.
pub const GREEDY_REVERTS: usize = 8;

/// Builds the model that keeps `reverted` in float and returns its metric on the validation set.
pub trait Trial {
    fn validate(&mut self, step: usize, reverted: &[String]) -> Result<f64>;
    /// Seconds since the search began (a clock the tests control).
    fn elapsed(&self) -> f64;
    /// Called after each step (progress, cancel checks).
    fn stepped(&mut self, _step: &ControlStep) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_reverts: usize,
    pub max_seconds: f64,
}

/// The trajectory and the model chosen from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub trajectory: Vec<ControlStep>,
    /// The chosen step: the last within budget (fewest ops reverted), else the smallest drop.
    pub chosen: usize,
    /// Per step, the ops it kept in float (in the order they were reverted).
    pub reverted: Vec<Vec<String>>,
    pub met: bool,
    pub stopped_by: Option<String>,
}

struct State<'a> {
    trial: &'a mut dyn Trial,
    metric: Metric,
    fp32: f64,
    budget: Budget,
    trajectory: Vec<ControlStep>,
    sets: Vec<Vec<String>>,
    seen: BTreeMap<Vec<String>, usize>,
}

impl State<'_> {
    /// Validates `reverted` (or recalls the step that already did) and returns that step's index.
    fn try_set(&mut self, action: StepAction, reverted: &[String]) -> Result<usize> {
        let mut key = reverted.to_vec();
        key.sort();
        if let Some(&i) = self.seen.get(&key) {
            return Ok(i);
        }
        let step = self.trajectory.len();
        let value = self.trial.validate(step, reverted)?;
        let drop = self.budget.drop(self.metric, self.fp32, value);
        let within_budget = self.budget.holds(drop);
        let action = match action {
            StepAction::Requantize { op, .. } => StepAction::Requantize {
                op,
                kept: within_budget,
            },
            a => a,
        };
        let s = ControlStep {
            step,
            action,
            reverted: reverted.len(),
            value,
            drop,
            within_budget,
            seconds: self.trial.elapsed(),
            latency_ms: BTreeMap::new(),
            speedup: BTreeMap::new(),
        };
        self.trial.stepped(&s)?;
        self.trajectory.push(s);
        self.sets.push(reverted.to_vec());
        self.seen.insert(key, step);
        Ok(step)
    }

    fn holds(&self, step: usize) -> bool {
        self.trajectory[step].within_budget
    }
}

/// Runs the search. `ranking` lists the ops most sensitive first.
pub fn search(
    trial: &mut dyn Trial,
    metric: Metric,
    fp32: f64,
    budget: Budget,
    ranking: &[String],
    limits: Limits,
) -> Result<Found> {
    let mut st = State {
        trial,
        metric,
        fp32,
        budget,
        trajectory: Vec::new(),
        sets: Vec::new(),
        seen: BTreeMap::new(),
    };
    let mut reverted: Vec<String> = Vec::new();
    let mut current = st.try_set(StepAction::Start, &reverted)?;
    let mut stopped_by = None;
    // Reverting every op is the float model (and no INT8 model at all): at most all but one.
    let cap = limits.max_reverts.min(ranking.len().saturating_sub(1));
    // One op at a time while the ranking's head is likely to be enough.
    while !st.holds(current) && reverted.len() < cap.min(GREEDY_REVERTS) {
        if st.trial.elapsed() > limits.max_seconds {
            stopped_by = Some(format!("max_seconds = {} reached", limits.max_seconds));
            break;
        }
        let op = ranking[reverted.len()].clone();
        reverted.push(op.clone());
        current = st.try_set(StepAction::Revert { op }, &reverted)?;
    }
    // Then the shortest prefix of the ranking that holds, by bisection between the longest prefix known to
    // fail and `cap` (assuming that reverting more never hurts).
    if !st.holds(current) && stopped_by.is_none() && reverted.len() < cap {
        let mut lo = reverted.len();
        let prefix = |n: usize| ranking[..n].to_vec();
        let revert_to = |count: usize| StepAction::RevertFirst { count };
        let top = st.try_set(revert_to(cap), &prefix(cap))?;
        if st.holds(top) {
            let mut hi = cap;
            current = top;
            while hi - lo > 1 {
                if st.trial.elapsed() > limits.max_seconds {
                    break;
                }
                let mid = (lo + hi) / 2;
                let step = st.try_set(revert_to(mid), &prefix(mid))?;
                if st.holds(step) {
                    hi = mid;
                    current = step;
                } else {
                    lo = mid;
                }
            }
            reverted = prefix(hi);
        } else {
            current = top;
            reverted = prefix(cap);
        }
    }
    if !st.holds(current) && stopped_by.is_none() {
        stopped_by = Some(if cap == limits.max_reverts {
            format!("max_reverts = {} reached", limits.max_reverts)
        } else {
            "every op but one reverted (all of them is the float model)".to_string()
        });
    }
    if st.holds(current) {
        // Fastest within budget: the least sensitive reverted ops first.
        for op in reverted.clone().iter().rev() {
            if st.trial.elapsed() > limits.max_seconds {
                stopped_by = Some(format!(
                    "max_seconds = {} reached while re-quantizing",
                    limits.max_seconds
                ));
                break;
            }
            let without: Vec<String> = reverted.iter().filter(|o| *o != op).cloned().collect();
            let step = st.try_set(
                StepAction::Requantize {
                    op: op.clone(),
                    kept: false,
                },
                &without,
            )?;
            if st.holds(step) {
                reverted = without;
                current = step;
            }
        }
    }
    let met = st.holds(current);
    let chosen = if met {
        current
    } else {
        // The smallest drop; among equals, the fewest ops reverted, then the earliest.
        (0..st.trajectory.len())
            .min_by(|&a, &b| {
                let (x, y) = (&st.trajectory[a], &st.trajectory[b]);
                x.drop
                    .total_cmp(&y.drop)
                    .then(x.reverted.cmp(&y.reverted))
                    .then(a.cmp(&b))
            })
            .unwrap_or(0)
    };
    Ok(Found {
        trajectory: st.trajectory,
        chosen,
        reverted: st.sets,
        met,
        stopped_by: if met { None } else { stopped_by },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::control::DropType;

    /// WER = base + the harm of each quantized op (ops not in `reverted`); one second per step.
    struct Mock {
        harm: BTreeMap<String, f64>,
        calls: Vec<Vec<String>>,
    }

    impl Trial for Mock {
        fn validate(&mut self, _step: usize, reverted: &[String]) -> Result<f64> {
            self.calls.push(reverted.to_vec());
            Ok(0.05
                + self
                    .harm
                    .iter()
                    .filter(|(op, _)| !reverted.contains(op))
                    .map(|(_, h)| h)
                    .sum::<f64>())
        }
        fn elapsed(&self) -> f64 {
            self.calls.len() as f64
        }
    }

    fn mock(harm: &[(&str, f64)]) -> Mock {
        Mock {
            harm: harm.iter().map(|(o, h)| (o.to_string(), *h)).collect(),
            calls: Vec::new(),
        }
    }

    const BUDGET: Budget = Budget {
        max_drop: 0.3,
        drop_type: DropType::Absolute,
    };
    const LIMITS: Limits = Limits {
        max_reverts: 10,
        max_seconds: 1e9,
    };

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_model_within_budget_is_kept_as_is() {
        let mut m = mock(&[("a", 0.001)]);
        let f = search(&mut m, Metric::Wer, 0.05, BUDGET, &names(&["a"]), LIMITS).unwrap();
        assert_eq!(f.trajectory.len(), 1);
        assert!(f.met);
        assert_eq!(f.chosen, 0);
    }

    #[test]
    fn reverting_stops_as_soon_as_the_budget_holds() {
        // Harm in points: a 1.0, b 0.5, c 0.2, d 0.05. Reverting a and b leaves 0.25 ≤ 0.3.
        let mut m = mock(&[("a", 0.010), ("b", 0.005), ("c", 0.002), ("d", 0.0005)]);
        let f = search(
            &mut m,
            Metric::Wer,
            0.05,
            BUDGET,
            &names(&["a", "b", "c", "d"]),
            LIMITS,
        )
        .unwrap();
        let actions: Vec<&StepAction> = f.trajectory.iter().map(|s| &s.action).collect();
        assert_eq!(actions[0], &StepAction::Start);
        assert_eq!(actions[1], &StepAction::Revert { op: "a".into() });
        assert_eq!(actions[2], &StepAction::Revert { op: "b".into() });
        // c and d were never reverted: the budget held after b.
        assert!(!m.calls.iter().any(|c| c.contains(&"c".to_string())));
        assert!(f.met);
        assert_eq!(f.reverted[f.chosen], names(&["a", "b"]));
    }

    #[test]
    fn an_op_whose_revert_did_not_matter_goes_back_to_int8() {
        // The ranking is wrong about b: reverting it costs speed and buys nothing.
        let mut m = mock(&[("a", 0.004), ("b", 0.0), ("c", 0.004), ("d", 0.0)]);
        let f = search(
            &mut m,
            Metric::Wer,
            0.05,
            BUDGET,
            &names(&["a", "b", "c", "d"]),
            LIMITS,
        )
        .unwrap();
        assert!(f.met);
        assert_eq!(f.reverted[f.chosen], names(&["a", "c"]));
        assert!(f.trajectory.iter().any(|s| s.action
            == StepAction::Requantize {
                op: "b".into(),
                kept: true
            }));
        // Re-quantizing c would be the model after reverting a and b, already known to fail: not re-run.
        let distinct: std::collections::BTreeSet<Vec<String>> = m
            .calls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.sort();
                c
            })
            .collect();
        assert_eq!(distinct.len(), m.calls.len());
    }

    #[test]
    fn an_unmeetable_budget_keeps_the_best_model_and_says_why() {
        let mut m = mock(&[("a", 0.02), ("b", 0.02), ("c", 0.02)]);
        let limits = Limits {
            max_reverts: 2,
            max_seconds: 1e9,
        };
        let f = search(
            &mut m,
            Metric::Wer,
            0.05,
            BUDGET,
            &names(&["a", "b", "c"]),
            limits,
        )
        .unwrap();
        assert!(!f.met);
        assert_eq!(f.reverted[f.chosen], names(&["a", "b"]));
        assert!((f.trajectory[f.chosen].drop - 2.0).abs() < 1e-9);
        assert_eq!(f.stopped_by.as_deref(), Some("max_reverts = 2 reached"));
    }

    #[test]
    fn the_time_limit_stops_the_search() {
        let mut m = mock(&[("a", 0.02), ("b", 0.02), ("c", 0.02)]);
        let limits = Limits {
            max_reverts: 10,
            max_seconds: 1.5,
        };
        let f = search(
            &mut m,
            Metric::Wer,
            0.05,
            BUDGET,
            &names(&["a", "b", "c"]),
            limits,
        )
        .unwrap();
        assert_eq!(f.trajectory.len(), 2);
        assert!(f.stopped_by.unwrap().starts_with("max_seconds"));
    }

    #[test]
    fn the_same_inputs_give_the_same_trajectory() {
        let run = || {
            let mut m = mock(&[("a", 0.004), ("b", 0.0), ("c", 0.004), ("d", 0.001)]);
            search(
                &mut m,
                Metric::Wer,
                0.05,
                BUDGET,
                &names(&["a", "b", "c", "d"]),
                LIMITS,
            )
            .unwrap()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn a_culprit_the_ranking_places_low_is_found_by_bisection_then_alone_kept_in_float() {
        let ops: Vec<String> = (0..21).map(|i| format!("o{i:02}")).collect();
        let mut m = mock(&[("o14", 0.01), ("o03", 0.0001)]);
        let limits = Limits {
            max_reverts: 20,
            max_seconds: 1e9,
        };
        let f = search(&mut m, Metric::Wer, 0.05, BUDGET, &ops, limits).unwrap();
        assert!(f.met);
        assert_eq!(f.reverted[f.chosen], names(&["o14"]));
        assert!(f
            .trajectory
            .iter()
            .any(|s| s.action == StepAction::RevertFirst { count: 15 }));
        // 1 start + 8 single reverts + 1 top + 3 bisection steps + at most 15 re-quantizations.
        assert!(m.calls.len() <= 28, "{} validations", m.calls.len());
    }
}
