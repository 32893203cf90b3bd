use anyhow::{Context as _, Result};

use super::quantize::request_of;
use super::Outcome;
use crate::cli::{QuantArgs, ValidationArgs};
use crate::engine::control::{self, Limits};
use crate::engine::{Context, Event};
use crate::quant::IgnoredScope;
use crate::results::control::{Budget, DropType};

/// `quantbench sensitivity`: the ops ranked, most sensitive first; optionally the top ones as a scope file.
pub fn run(
    ctx: &Context,
    quant: &QuantArgs,
    validation: &ValidationArgs,
    write_scope: Option<&std::path::Path>,
    top: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    let unused = Budget {
        max_drop: 0.0,
        drop_type: DropType::Absolute,
    };
    let limits = Limits {
        max_reverts: 0,
        max_seconds: 0.0,
    };
    let req = request_of(quant, validation, unused, limits)?;
    let ranked = control::sensitivity(&req, ctx, sink)?;
    println!(
        "# {} ranked on {} items of {} (sha256 {})",
        ranked.method,
        ranked.validation.items,
        ranked.validation.manifest,
        &ranked.validation.sha256[..12]
    );
    println!("rank\top\ttype\tnmse\tfiles");
    for (i, op) in ranked.ops.iter().enumerate() {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            i + 1,
            op.op,
            op.op_type,
            op.nmse.map_or("n/a".into(), |v| format!("{v:.4e}")),
            op.files.join(",")
        );
    }
    if let Some(path) = write_scope {
        let scope = IgnoredScope {
            names: ranked.ops.iter().take(top).map(|o| o.op.clone()).collect(),
            ..Default::default()
        };
        let text = format!(
            "# The {top} ops of {} most sensitive to {} INT8 ({}), written by quantbench sensitivity.\n# Include it in an experiment entry: ignored_scope_file = \"{}\"\n{}",
            quant.model,
            quant.recipe.name(),
            ranked.method,
            path.display(),
            toml::to_string(&scope).context("scope serialises")?
        );
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| path.display().to_string())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Outcome::Done)
}
