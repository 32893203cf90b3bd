use anyhow::Result;

use super::Outcome;
use crate::cli::Command;
use crate::engine::{self, Context, Event};
use crate::quant::{IgnoredScope, StaticOverrides};

/// `quantbench quantize`: an INT8 folder with its sidecar; flags override the recipe's defaults.
pub fn run(ctx: &Context, command: &Command, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let Command::Quantize {
        model,
        recipe,
        out,
        force,
        ignore_names,
        ignore_patterns,
        ignore_types,
        calib,
        calib_size,
        seed,
        estimator,
        smooth_quant,
        no_bias_correction,
        parts,
    } = command
    else {
        unreachable!("dispatched on Quantize");
    };
    let setup = engine::QuantSetup {
        ignored: IgnoredScope {
            names: ignore_names.clone(),
            patterns: ignore_patterns.clone(),
            types: ignore_types.clone(),
        },
        overrides: StaticOverrides {
            estimator: *estimator,
            smooth_quant: *smooth_quant,
            bias_correction: no_bias_correction.then_some(false),
            calibration_size: *calib_size,
            seed: *seed,
        },
        calibration: calib.clone(),
        parts: parts.iter().cloned().collect(),
    };
    let (dir, summary) =
        engine::quantize(model, *recipe, &setup, out.as_deref(), *force, ctx, sink)?;
    for p in &summary.parts {
        let (q, t) = p
            .ops
            .values()
            .fold((0, 0), |(q, t), c| (q + c.quantized, t + c.total));
        println!("{}: {q} of {t} ops quantized", p.file);
    }
    println!("{}", dir.display());
    Ok(Outcome::Done)
}
