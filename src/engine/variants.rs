//! Variants of a model: `fp32` (the converted or given folder) and one INT8 folder per recipe, made on first
//! use in the cache (or by `quantbench quantize --out`), verified by running it before it is published.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::calibrate::{calibrate, CalibrationSet};
use super::workload::ArmInfo;
use super::{Context, Event, Stage, Task};
use crate::config::{ModelEntry, Variant};
use crate::models::blip::{BlipModel, BlipPipeline};
use crate::models::whisper::{DecodeOptions, Pipeline, WhisperModel};
use crate::models::{resolve, ResolvedModel};
use crate::quant::{
    quantize_folder, IgnoredScope, QuantOptions, QuantSummary, Recipe, StaticOverrides,
    SIDECAR_FILE,
};
use crate::results::control::AccuracyControl;
use crate::results::{FileHash, PartSize};

use crate::assets::entry;
use crate::fsutil::Publish;

pub const BASELINE: &str = Variant::BASELINE;

/// How INT8 variants are made: the nodes every recipe keeps in float, the calibrated recipes' parameters
/// set explicitly (the rest are the recipe's defaults) and the calibration manifest.
#[derive(Debug, Clone)]
pub struct QuantSetup {
    pub ignored: IgnoredScope,
    pub overrides: StaticOverrides,
    pub calibration: Option<PathBuf>,
    /// A recipe per graph, overriding the variant's for that part.
    pub parts: std::collections::BTreeMap<String, Recipe>,
    /// Fusions before quantization (on unless an entry or `--no-fusion` turns them off).
    pub fusion: bool,
}

impl Default for QuantSetup {
    fn default() -> Self {
        QuantSetup {
            ignored: IgnoredScope::default(),
            overrides: StaticOverrides::default(),
            calibration: None,
            parts: Default::default(),
            fusion: true,
        }
    }
}

impl QuantSetup {
    /// What an experiment entry asks of its INT8 variants.
    pub fn of_entry(entry: &ModelEntry) -> Self {
        QuantSetup {
            ignored: entry.ignored_scope.clone(),
            overrides: entry.static_params.clone(),
            calibration: entry.calibration.clone(),
            parts: entry.parts.clone(),
            fusion: entry.fusion,
        }
    }

    pub(super) fn options(&self, recipe: Recipe) -> QuantOptions {
        QuantOptions {
            recipe,
            ignored: self.ignored.clone(),
            params: self.overrides.params_for(recipe),
            parts: self.parts.clone(),
            fusion: self.fusion,
        }
    }

    /// The calibration items, for recipes that need them. A BLIP without a calibration manifest calibrates
    /// on easy-VQA's training split (the seed's 300 VQA training samples).
    pub(super) fn calibration_set(
        &self,
        recipe: Recipe,
        fp32: &ResolvedModel,
        ctx: &Context,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Option<CalibrationSet>> {
        if !self.options(recipe).needs_calibration() {
            return Ok(None);
        }
        let manifest = match &self.calibration {
            Some(m) => Some(m.clone()),
            None if fp32.is_blip() => Some(
                crate::data::easy_vqa::prepare(
                    &ctx.cache,
                    crate::data::easy_vqa::Split::Train,
                    &mut |m| sink(Event::Note(m.to_string())),
                )?
                .vqa,
            ),
            None => None,
        };
        let params = self.overrides.params_for(recipe);
        CalibrationSet::load(manifest.as_deref(), params.calibration_size, params.seed).map(Some)
    }
}

/// The cache folder holding every INT8 folder made from a resolved FP32 model.
pub(super) fn quantized_root(ctx: &Context, fp32: &ResolvedModel) -> PathBuf {
    let folder = fp32
        .onnx_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ctx.cache
        .root
        .join("quantized")
        .join(format!("{}-{}", &fp32.source_sha256[..16], folder))
}

/// Everything that shapes an INT8 folder, in words: the source (every file of it), the recipe and its
/// parameters, the per-part recipes, the ignored scope, the calibration items and the code revision.
fn cache_key(fp32: &ResolvedModel, options: &QuantOptions, set: Option<&CalibrationSet>) -> String {
    serde_json::json!({
        "source_sha256": fp32.source_sha256,
        "recipe": options.recipe.name(),
        "parameters": options.parameters(),
        "parts": options.parts.iter().map(|(p, r)| (p.clone(), r.name())).collect::<std::collections::BTreeMap<_, _>>(),
        "ignored_scope": options.ignored,
        "calibration_sha256": set.map(|s| s.sha256.clone()),
        "code_revision": entry::CODE_REVISION,
    })
    .to_string()
}

/// Where the cache keeps the INT8 folder of a resolved FP32 model for these options.
fn cached_dir(
    ctx: &Context,
    fp32: &ResolvedModel,
    options: &QuantOptions,
    set: Option<&CalibrationSet>,
) -> PathBuf {
    let key = cache_key(fp32, options, set);
    quantized_root(ctx, fp32).join(format!(
        "int8-{}-{}",
        options.recipe.name(),
        &crate::fsutil::sha256_bytes(key.as_bytes())[..16]
    ))
}

/// Runs every graph of the model in `dir` once: Whisper on a second of noise, BLIP on a question about a
/// grey image.
fn probe(dir: &Path, blip: bool, threads: usize) -> Result<()> {
    if blip {
        let model = BlipModel::open(dir, threads)?;
        let side = model.config.image_size;
        let image = image::RgbImage::from_pixel(side, side, image::Rgb([128, 128, 128]));
        BlipPipeline::new(model).answer(&image, "what is in the image?")?;
    } else {
        let model = WhisperModel::open(dir, threads)?;
        Pipeline::new(model, DecodeOptions::default()).transcribe(&probe_audio())?;
    }
    Ok(())
}

/// One second of seeded low-level noise: enough to run every graph of the pipeline once.
fn probe_audio() -> Vec<f32> {
    let mut rng = crate::rng::XorShift64::new(0x2545_f491);
    (0..16_000)
        .map(|_| (rng.uniform() as f32 - 0.5) * 0.02)
        .collect()
}

/// Quantizes `spec` with `recipe` into `out` (or the cache). An existing `out` is refused unless `force`.
pub fn quantize(
    spec: &str,
    recipe: Recipe,
    setup: &QuantSetup,
    out: Option<&Path>,
    force: bool,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<(PathBuf, QuantSummary)> {
    ctx.init_runtime(sink)?;
    let fp32 = resolve(spec, &ctx.cache, &mut |m| sink(Event::Note(m.to_string())))?;
    let options = setup.options(recipe);
    let set = setup.calibration_set(recipe, &fp32, ctx, sink)?;
    let dst = match out {
        Some(o) => o.to_path_buf(),
        None => cached_dir(ctx, &fp32, &options, set.as_ref()),
    };
    if dst.exists() && !force {
        bail!(
            "{}: already exists (pass --force to replace it)",
            dst.display()
        );
    }
    // Folders of earlier versions carry only the sidecar.
    if dst.exists() && !entry::is_quantbench_output(&dst) && !dst.join(SIDECAR_FILE).is_file() {
        bail!(
            "{}: is not a quantbench output (it has no {SIDECAR_FILE}); --force replaces only folders quantbench made",
            dst.display()
        );
    }
    let summary = build(
        &fp32,
        &options,
        set.as_ref(),
        &dst,
        Publish::Replace,
        ctx,
        sink,
    )?;
    Ok((dst, summary))
}

/// Makes the INT8 folder `dst` in a private temp folder, runs it, seals it and publishes it by rename; under
/// `Publish::IfAbsent` a folder another process published first is kept and its summary returned.
fn build(
    fp32: &ResolvedModel,
    options: &QuantOptions,
    set: Option<&CalibrationSet>,
    dst: &Path,
    mode: Publish,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<QuantSummary> {
    let parent = dst.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let tmp = crate::fsutil::work_dir(parent, "quantize")
        .with_context(|| parent.display().to_string())?;
    let files = crate::models::graph_files(&fp32.onnx_dir);
    let task = Task::new(&fp32.name, &[options.recipe.name()]);
    let work = tempfile::Builder::new()
        .prefix(".work-")
        .tempdir_in(parent)
        .with_context(|| parent.display().to_string())?;
    let (src, calibration) = match set {
        Some(set) => {
            let (src, c) = calibrate(&fp32.onnx_dir, options, set, work.path(), &task, ctx, sink)?;
            (src, Some(c))
        }
        None => (fp32.onnx_dir.clone(), None),
    };
    ctx.cancel.check()?;
    // The gauge counts graphs: quantize_folder announces each one (one note) before rewriting it.
    let mut announced = 0;
    let summary = quantize_folder(
        &src,
        tmp.path(),
        &files,
        options.clone(),
        calibration.as_ref(),
        &mut |m: &str| {
            sink(Event::Progress {
                task: task.clone(),
                stage: Stage::Quantize,
                done: announced.min(files.len()),
                total: files.len(),
            });
            announced += 1;
            sink(Event::Note(m.to_string()));
        },
    )?;
    sink(Event::Progress {
        task,
        stage: Stage::Quantize,
        done: files.len(),
        total: files.len(),
    });
    sink(Event::Note(format!(
        "quantize {}: checking the INT8 model runs ...",
        fp32.name
    )));
    probe(tmp.path(), fp32.is_blip(), ctx.threads).context("the quantized model does not run")?;
    entry::seal(tmp.path(), &cache_key(fp32, options, set))
        .with_context(|| tmp.path().display().to_string())?;
    match crate::fsutil::publish_dir(tmp, dst, mode).with_context(|| dst.display().to_string())? {
        crate::fsutil::Published::Ours => Ok(summary),
        crate::fsutil::Published::Theirs => {
            sink(Event::Note(format!(
                "quantize {}: another process published {} first; using it",
                fp32.name,
                dst.display()
            )));
            read_sidecar(dst)?.with_context(|| format!("{}: has no {SIDECAR_FILE}", dst.display()))
        }
    }
}

/// The quantization sidecar of a model folder, if it has one.
pub(super) fn read_sidecar(dir: &Path) -> Result<Option<QuantSummary>> {
    let sidecar = dir.join(SIDECAR_FILE);
    match std::fs::read_to_string(&sidecar) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| sidecar.display().to_string())?,
        )),
        Err(_) => Ok(None),
    }
}

/// Every file of a model folder by content (hidden files aside), and the graphs among them as parts.
pub(crate) fn folder_contents(dir: &Path) -> Result<(Vec<PartSize>, Vec<FileHash>)> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| dir.display().to_string())?;
    for e in entries {
        let e = e.with_context(|| dir.display().to_string())?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name.starts_with('.') || !p.is_file() {
            continue;
        }
        files.push(FileHash {
            bytes: std::fs::metadata(&p)
                .with_context(|| p.display().to_string())?
                .len(),
            sha256: crate::fsutil::sha256_file(&p).with_context(|| p.display().to_string())?,
            file: name,
        });
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    let parts = crate::models::graph_files(dir)
        .into_iter()
        .map(|f| {
            let h = files
                .iter()
                .find(|h| h.file == f)
                .with_context(|| dir.join(f).display().to_string())?;
            Ok(PartSize {
                part: f.trim_end_matches(".onnx").to_string(),
                bytes: h.bytes,
                sha256: h.sha256.clone(),
            })
        })
        .collect::<Result<_>>()?;
    Ok((parts, files))
}

/// The cached INT8 folder of a recipe: where it lives and what makes it.
struct Int8Entry {
    options: QuantOptions,
    set: Option<CalibrationSet>,
    dir: PathBuf,
}

impl Int8Entry {
    fn of(
        fp32: &ResolvedModel,
        setup: &QuantSetup,
        recipe: Recipe,
        ctx: &Context,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Self> {
        let options = setup.options(recipe);
        let set = setup.calibration_set(recipe, fp32, ctx, sink)?;
        let dir = cached_dir(ctx, fp32, &options, set.as_ref());
        Ok(Int8Entry { options, set, dir })
    }

    fn build(
        &self,
        fp32: &ResolvedModel,
        mode: Publish,
        ctx: &Context,
        sink: &mut dyn FnMut(Event),
    ) -> Result<QuantSummary> {
        build(
            fp32,
            &self.options,
            self.set.as_ref(),
            &self.dir,
            mode,
            ctx,
            sink,
        )
    }
}

fn sealed(files: &[FileHash]) -> Vec<entry::SealedFile> {
    files
        .iter()
        .map(|f| entry::SealedFile {
            file: f.file.clone(),
            bytes: f.bytes,
            sha256: f.sha256.clone(),
        })
        .collect()
}

/// A model opened in one variant, with what it is.
pub struct Opened<P = Pipeline> {
    pub pipeline: P,
    pub model: ResolvedModel,
    pub variant: String,
    pub onnx_dir: PathBuf,
    pub parts: Vec<PartSize>,
    pub files: Vec<FileHash>,
    pub quantization: Option<QuantSummary>,
    pub accuracy_control: Option<AccuracyControl>,
}

impl<P> Opened<P> {
    /// What the measuring loop and the rows need to know of this variant.
    pub fn info(&self) -> ArmInfo {
        ArmInfo {
            variant: self.variant.clone(),
            baseline: self.quantization.is_none(),
            source_sha256: self.model.source_sha256.clone(),
            parts: self.parts.clone(),
            files: self.files.clone(),
            quantization: self.quantization.clone(),
            accuracy_control: self.accuracy_control.clone(),
        }
    }
}

/// Resolves `spec` and opens it as `variant`, quantizing on first use as `setup` says.
pub fn open_variant(
    spec: &str,
    variant: Variant,
    setup: &QuantSetup,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Opened> {
    open_with(spec, variant, setup, ctx, sink, |dir, threads| {
        Ok(Pipeline::new(
            WhisperModel::open(dir, threads)?,
            DecodeOptions::default(),
        ))
    })
}

/// As `open_variant`, for a BLIP.
pub fn open_blip_variant(
    spec: &str,
    variant: Variant,
    setup: &QuantSetup,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Opened<BlipPipeline>> {
    open_with(spec, variant, setup, ctx, sink, |dir, threads| {
        Ok(BlipPipeline::new(BlipModel::open(dir, threads)?))
    })
}

fn open_with<P>(
    spec: &str,
    variant: Variant,
    setup: &QuantSetup,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
    open: impl FnOnce(&Path, usize) -> Result<P>,
) -> Result<Opened<P>> {
    ctx.init_runtime(sink)?;
    let fp32 = resolve(spec, &ctx.cache, &mut |m| sink(Event::Note(m.to_string())))?;
    let variant_kind = variant;
    let (dir, mut quantization, variant) = match variant {
        Variant::Fp32 => {
            // A folder given by path may itself be a quantized one: label it by its sidecar.
            let summary = read_sidecar(&fp32.onnx_dir)?;
            let label = summary.as_ref().map_or(BASELINE, |s| s.recipe.name());
            (fp32.onnx_dir.clone(), summary, label.to_string())
        }
        Variant::Recipe(recipe) => {
            let int8 = Int8Entry::of(&fp32, setup, recipe, ctx, sink)?;
            let summary = match read_sidecar(&int8.dir)? {
                Some(s) if int8.dir.join(entry::SEAL_FILE).is_file() => s,
                Some(_) => {
                    sink(Event::Note(format!(
                        "warning: {}: a cached INT8 folder without a record of its files; making it again",
                        int8.dir.display()
                    )));
                    int8.build(&fp32, Publish::Replace, ctx, sink)?
                }
                None => int8.build(&fp32, Publish::IfAbsent, ctx, sink)?,
            };
            (int8.dir, Some(summary), recipe.name().to_string())
        }
    };
    sink(Event::Progress {
        task: Task::new(&fp32.name, &[&variant]),
        stage: Stage::Load,
        done: 0,
        total: 1,
    });
    let (mut parts, mut files) = folder_contents(&dir)?;
    // Only the cache's own entries are held to their record: a folder the user keeps is theirs to edit.
    let changes = if dir.starts_with(&ctx.cache.root) {
        entry::changes(&dir, &sealed(&files))
    } else {
        Vec::new()
    };
    if !changes.is_empty() {
        let what = format!(
            "{}: changed after quantbench made it ({})",
            dir.display(),
            changes.join("; ")
        );
        match variant_kind {
            Variant::Recipe(recipe) => {
                sink(Event::Note(format!("warning: {what}; making it again")));
                let int8 = Int8Entry::of(&fp32, setup, recipe, ctx, sink)?;
                quantization = Some(int8.build(&fp32, Publish::Replace, ctx, sink)?);
                (parts, files) = folder_contents(&dir)?;
            }
            Variant::Fp32 => bail!("{what}; delete it and it is made again on next use"),
        }
    }
    let pipeline = open(&dir, ctx.threads)?;
    let accuracy_control = read_control(&dir)?;
    sink(Event::Opened {
        model: fp32.name.clone(),
        variant: variant.clone(),
        parts: parts.clone(),
        quantization: quantization.clone(),
    });
    Ok(Opened {
        pipeline,
        model: fp32,
        variant,
        onnx_dir: dir,
        parts,
        files,
        quantization,
        accuracy_control,
    })
}

/// The accuracy-control record of a model folder, if accuracy control chose it.
pub(super) fn read_control(dir: &Path) -> Result<Option<AccuracyControl>> {
    let file = dir.join(crate::results::control::SIDECAR_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| file.display().to_string())?,
        )),
        Err(_) => Ok(None),
    }
}

/// Every arm of an entry, opened with `open`: FP32, each variant, then the entry's extra folders (models
/// accuracy control made), labelled as the entry says.
pub fn open_arms<P>(
    entry: &ModelEntry,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
    open: impl Fn(&Path, usize) -> Result<P>,
) -> Result<Vec<Opened<P>>> {
    let setup = QuantSetup::of_entry(entry);
    let mut arms = Vec::new();
    for v in entry.variants() {
        arms.push(open_with(&entry.model, v, &setup, ctx, sink, &open)?);
    }
    for (label, dir) in &entry.extra_arms {
        let mut arm = open_with(
            &dir.display().to_string(),
            Variant::Fp32,
            &setup,
            ctx,
            sink,
            &open,
        )?;
        arm.variant = label.clone();
        arms.push(arm);
    }
    Ok(arms)
}
