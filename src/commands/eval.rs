use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::config::Variant;
use crate::data::manifest::{kind_of, load_captions, load_speech, load_vqa, ManifestKind};
use crate::engine::{self, Context, Event};
use crate::results::shard::{ItemCounts, ShardFile, ShardItem, ShardSpec, SHARD_SCHEMA};
use crate::results::Kind;

pub struct Args<'a> {
    pub model: &'a str,
    pub variant: Variant,
    pub manifest: &'a Path,
    pub limit: usize,
    pub json: Option<&'a Path>,
    pub shard: Option<ShardSpec>,
}

fn write_json(path: Option<&Path>, value: &impl serde::Serialize) -> Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value)? + "\n";
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// The shard `--shard` names, or the one a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` with
/// `--shard-count`) or a Slurm array (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
/// `SLURM_ARRAY_TASK_COUNT`) gives this process.
pub fn shard_of(
    flag: Option<ShardSpec>,
    count: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ShardSpec>> {
    if flag.is_some() {
        return Ok(flag);
    }
    let num = |name: &str| -> Result<Option<usize>> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .with_context(|| format!("${name} is `{v}`, not a number"))
            })
            .transpose()
    };
    let (index, count) = match count {
        Some(n) => {
            let index = match num("JOB_COMPLETION_INDEX")? {
                Some(i) => i,
                None => num("SLURM_ARRAY_TASK_ID")?
                    .map(|id| id.saturating_sub(num("SLURM_ARRAY_TASK_MIN").ok().flatten().unwrap_or(0)))
                    .context("--shard-count needs the shard's index: set $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or $SLURM_ARRAY_TASK_ID, or give --shard I/N")?,
            };
            (index, n)
        }
        None => match (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
            (Some(id), Some(n)) => (
                id.saturating_sub(num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0)),
                n,
            ),
            _ => return Ok(None),
        },
    };
    ShardSpec::new(index, count)
        .map(Some)
        .with_context(|| format!("shard index {index} is not below the shard count {count}"))
}

/// What every shard of one evaluation must agree on, and its sha256.
fn shard_config(limit: usize) -> (serde_json::Value, String) {
    let config = serde_json::json!({
        "limit": limit,
        "decoding": "greedy",
        "quantbench_version": env!("CARGO_PKG_VERSION"),
    });
    let sha = crate::fsutil::sha256_bytes(config.to_string().as_bytes());
    (config, sha)
}

/// Writes the shard file of an evaluation: `counts` are the shard's items in dataset order, `dataset_files`
/// every file the whole (limited) dataset names.
fn write_shard<P>(
    a: &Args,
    ctx: &Context,
    opened: &engine::Opened<P>,
    (kind, manifest): (Kind, &Path),
    dataset_files: Vec<&Path>,
    counts: Vec<(String, ItemCounts)>,
) -> Result<()> {
    let Some(spec) = a.shard else {
        return Ok(());
    };
    let dataset_items = dataset_files.len();
    let items = (0..dataset_items)
        .filter(|&i| spec.holds(i))
        .zip(counts)
        .map(|(index, (item, counts))| ShardItem {
            index,
            item,
            counts,
        })
        .collect();
    let (config, config_sha256) = shard_config(a.limit);
    let shard = ShardFile {
        schema: SHARD_SCHEMA.to_string(),
        shard: spec,
        model: opened.model.name.clone(),
        kind,
        variant: opened.variant.clone(),
        source_sha256: opened.model.source_sha256.clone(),
        files: opened.files.clone(),
        dataset: manifest.display().to_string(),
        dataset_sha256: crate::data::dataset_sha256(manifest, dataset_files)?,
        dataset_items,
        config,
        config_sha256,
        environment: engine::environment(ctx.threads),
        items,
    };
    write_json(a.json, &shard)
}

fn limited(len: usize, limit: usize) -> usize {
    if limit > 0 {
        len.min(limit)
    } else {
        len
    }
}

/// `quantbench eval`: accuracy and per-item latency on a speech, VQA or caption manifest; with a shard,
/// the shard's per-item counts for `merge`.
pub fn run(ctx: &Context, a: Args, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let manifest = &engine::dataset_manifest(a.manifest, ctx, sink)?;
    // The manifest is validated before any model work.
    let kind = kind_of(manifest)?;
    let setup = engine::QuantSetup::default();
    let shard = a.shard;
    match kind {
        ManifestKind::Speech => {
            let all = load_speech(manifest)?;
            let total = limited(all.len(), a.limit);
            let mut opened = engine::open_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate(
                &mut opened.pipeline,
                (&name, &variant),
                manifest,
                a.limit,
                shard,
                &ctx.audio_limits,
                sink,
            )?;
            println!(
                "{name} {variant}{}: WER {:.2} %  CER {:.2} %  n {}  latency median {:.1} ms",
                shard.map_or(String::new(), |s| format!(" shard {}/{}", s.index, s.count)),
                r.wer * 100.0,
                r.cer * 100.0,
                r.n,
                r.latency_ms.median_ms
            );
            if shard.is_none() {
                write_json(a.json, &r)?;
            }
            let counts = r
                .items
                .iter()
                .map(|it| {
                    let counts = ItemCounts::Speech {
                        word_errors: it.word_errors,
                        reference_words: it.reference_words,
                        char_errors: it.char_errors,
                        reference_chars: it.reference_chars,
                    };
                    (it.audio.clone(), counts)
                })
                .collect();
            let files = all[..total].iter().map(|i| i.audio.as_path()).collect();
            write_shard(&a, ctx, &opened, (Kind::Whisper, manifest), files, counts)?;
        }
        ManifestKind::Vqa => {
            let all = load_vqa(manifest)?;
            let total = limited(all.len(), a.limit);
            let mut opened = engine::open_blip_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate_vqa(
                &mut opened.pipeline,
                (&name, &variant),
                manifest,
                a.limit,
                shard,
                sink,
            )?;
            let types: Vec<String> = r
                .accuracy_by_type
                .iter()
                .map(|(t, a)| format!("{t} {:.2} %", a * 100.0))
                .collect();
            println!(
                "{name} {variant}{}: VQA accuracy {:.2} %  ({})  n {}  latency median {:.1} ms",
                shard.map_or(String::new(), |s| format!(" shard {}/{}", s.index, s.count)),
                r.accuracy * 100.0,
                types.join(", "),
                r.n,
                r.latency_ms.median_ms
            );
            if shard.is_none() {
                write_json(a.json, &r)?;
            }
            let counts = r
                .items
                .iter()
                .map(|it| {
                    let counts = ItemCounts::Vqa {
                        accuracy: it.accuracy,
                        answer_type: it.answer_type.clone().unwrap_or_else(|| "all".into()),
                    };
                    (format!("{} {}", it.image, it.question), counts)
                })
                .collect();
            let files = all[..total].iter().map(|i| i.image.as_path()).collect();
            write_shard(&a, ctx, &opened, (Kind::Blip, manifest), files, counts)?;
        }
        _ => {
            anyhow::ensure!(
                shard.is_none(),
                "{}: sharded evaluation takes speech or VQA manifests (a caption manifest has no per-item counts to merge)",
                manifest.display()
            );
            drop(load_captions(manifest)?);
            let mut opened = engine::open_blip_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate_captions(
                &mut opened.pipeline,
                (&name, &variant),
                manifest,
                a.limit,
                sink,
            )?;
            println!(
                "{name} {variant}: caption exact match {:.2} %  token F1 {:.2} %  n {}  latency median {:.1} ms",
                r.exact_match * 100.0,
                r.token_f1 * 100.0,
                r.n,
                r.latency_ms.median_ms
            );
            write_json(a.json, &r)?;
        }
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_batch_system() {
        let none = env_of(&[]);
        let flag = ShardSpec::new(1, 3);
        assert_eq!(shard_of(flag, None, &none).unwrap(), flag);
        assert_eq!(shard_of(None, None, &none).unwrap(), None);
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "2")]);
        assert_eq!(shard_of(None, Some(3), &k8s).unwrap(), ShardSpec::new(2, 3));
        // Slurm arrays may start at 1 (--array=1-3).
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(shard_of(None, None, &slurm).unwrap(), ShardSpec::new(2, 3));
        let e = shard_of(None, Some(3), &none).unwrap_err().to_string();
        assert!(e.contains("JOB_COMPLETION_INDEX"), "{e}");
        let bad = env_of(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(shard_of(None, Some(3), &bad).is_err());
    }
}
