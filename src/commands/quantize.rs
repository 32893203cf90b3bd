use anyhow::{bail, Result};

use super::Outcome;
use crate::cli::{Command, QuantArgs, ValidationArgs};
use crate::engine::control::{self, Limits, Request};
use crate::engine::{self, Context, Event};
use crate::quant::{IgnoredScope, StaticOverrides};
use crate::results::control::{AccuracyControl, Budget};

/// The recipe's setup from the flags (they override the recipe's defaults).
pub fn setup_of(q: &QuantArgs) -> engine::QuantSetup {
    engine::QuantSetup {
        ignored: IgnoredScope {
            names: q.ignore_names.clone(),
            patterns: q.ignore_patterns.clone(),
            types: q.ignore_types.clone(),
        },
        overrides: StaticOverrides {
            estimator: q.estimator,
            smooth_quant: q.smooth_quant,
            bias_correction: q.no_bias_correction.then_some(false),
            calibration_size: q.calib_size,
            seed: q.seed,
        },
        calibration: q.calib.clone(),
        parts: q.parts.iter().cloned().collect(),
        fusion: !q.no_fusion,
    }
}

/// An accuracy-control request from the flags (`max_drop` absent: the ranking alone).
pub fn request_of(
    q: &QuantArgs,
    v: &ValidationArgs,
    budget: Budget,
    limits: Limits,
) -> Result<Request> {
    if q.recipe == crate::quant::Recipe::Fused {
        bail!("--recipe fused quantizes nothing: accuracy control and sensitivity need an INT8 recipe");
    }
    let Some(validate) = v.validate.clone() else {
        bail!("--validate MANIFEST is needed (a validation set disjoint from the evaluation set)");
    };
    Ok(Request {
        model: q.model.clone(),
        recipe: q.recipe,
        setup: setup_of(q),
        budget,
        validate,
        validate_size: v.validate_size,
        limits,
        measure: Default::default(),
    })
}

/// `quantbench quantize`: an INT8 folder with its sidecar; with `--max-drop`, the accuracy-controlled one.
pub fn run(ctx: &Context, command: &Command, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let Command::Quantize {
        quant,
        out,
        force,
        max_drop,
        drop_type,
        validation,
        max_reverts,
        max_seconds,
    } = command
    else {
        unreachable!("dispatched on Quantize");
    };
    if let Some(max_drop) = max_drop {
        if !max_drop.is_finite() || *max_drop < 0.0 {
            bail!("--max-drop must be a number ≥ 0, got {max_drop}");
        }
        let req = request_of(
            quant,
            validation,
            Budget {
                max_drop: *max_drop,
                drop_type: *drop_type,
            },
            Limits {
                max_reverts: *max_reverts,
                max_seconds: *max_seconds,
            },
        )?;
        let outcome = control::accuracy_control(&req, out.as_deref(), *force, ctx, sink)?;
        print_record(&outcome.record);
        println!("{}", outcome.dir.display());
        return Ok(if outcome.record.met {
            Outcome::Done
        } else {
            Outcome::ThresholdFailed(vec![format!(
                "accuracy control: {}",
                outcome.record.verdict()
            )])
        });
    }
    let setup = setup_of(quant);
    let (dir, summary) = engine::quantize(
        &quant.model,
        quant.recipe,
        &setup,
        out.as_deref(),
        *force,
        ctx,
        sink,
    )?;
    for p in &summary.parts {
        let (q, t) = p
            .ops
            .values()
            .fold((0, 0), |(q, t), c| (q + c.quantized, t + c.total));
        let fused = p
            .fusions_text()
            .map_or(String::new(), |f| format!("; fused {f}"));
        println!("{}: {q} of {t} ops quantized{fused}", p.file);
    }
    println!("{}", dir.display());
    Ok(Outcome::Done)
}

/// The trajectory and the ops in float, as plain text.
fn print_record(r: &AccuracyControl) {
    println!(
        "FP32 {} on the validation set ({} items): {:.4}",
        r.metric.label(),
        r.validation.items,
        r.fp32_value
    );
    println!("step\taction\tin float\tvalue\tdrop\twithin budget\tlatency (median ms; speedup)");
    for s in &r.trajectory {
        let latency: Vec<String> = s
            .latency_ms
            .iter()
            .map(|(k, v)| {
                let x = s
                    .speedup
                    .get(k)
                    .map_or(String::new(), |r| format!(" {:.2}×", r.median));
                format!("{k} {v:.2}{x}")
            })
            .collect();
        println!(
            "{}\t{}\t{}\t{:.4}\t{:.2}\t{}\t{}",
            s.step,
            s.action.text(),
            s.reverted,
            s.value,
            s.drop,
            if s.within_budget { "yes" } else { "no" },
            latency.join(", ")
        );
    }
    for op in r.ops.iter().filter(|o| o.reverted) {
        println!(
            "float: {} ({}) — {}",
            op.op,
            op.op_type,
            op.why.as_deref().unwrap_or("")
        );
    }
    println!("{} (search took {:.0} s)", r.verdict(), r.seconds);
}
