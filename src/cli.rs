//! Command-line definitions. Command names and flags are a contract with users' scripts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Variant;
use crate::models::whisper::Task;
use crate::quant::calib::Estimator;
use crate::quant::{Recipe, SmoothAlpha};
use crate::results::control::DropType;
use crate::results::shard::ShardSpec;

fn drop_type(text: &str) -> Result<DropType, String> {
    DropType::parse(text)
}

fn shard(text: &str) -> Result<ShardSpec, String> {
    ShardSpec::parse(text)
}

/// Seconds above zero.
fn positive_seconds(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("expected a number of seconds above 0, got `{text}`"))
}

/// `2%` or `0.02`.
fn share(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    };
    value
        .ok()
        .filter(|v| (0.0..1.0).contains(v))
        .ok_or_else(|| format!("expected a share such as 2% or 0.02, got `{text}`"))
}

fn variant(text: &str) -> Result<Variant, String> {
    Variant::parse(text)
}

fn recipe(text: &str) -> Result<Recipe, String> {
    Recipe::parse(text).map_err(|e| e.to_string())
}

fn estimator(text: &str) -> Result<Estimator, String> {
    Estimator::parse(text)
}

/// `--smooth-quant`: `off`, one α for every part, or `ENCODER,DECODER` where either may be `off`.
fn smooth_alpha(text: &str) -> Result<SmoothAlpha, String> {
    let one = |v: &str| -> Option<Option<f32>> {
        match v.trim() {
            "off" => Some(None),
            v => v
                .parse::<f32>()
                .ok()
                .filter(|a| (0.0..=1.0).contains(a))
                .map(Some),
        }
    };
    let values = text.split(',').map(one).collect::<Option<Vec<_>>>();
    match values.as_deref() {
        Some(&[a]) => Ok(SmoothAlpha {
            encoder: a,
            decoder: a,
        }),
        Some(&[encoder, decoder]) => Ok(SmoothAlpha { encoder, decoder }),
        _ => Err(format!(
            "expected `off`, an α in [0, 1] or `ENCODER,DECODER` (e.g. 0.5,0.95 or 0.5,off), got `{text}`"
        )),
    }
}

/// `--part PART=RECIPE`.
fn part(text: &str) -> Result<(String, Recipe), String> {
    let (part, r) = text.split_once('=').ok_or_else(|| {
        format!("expected PART=RECIPE (e.g. text_decoder_with_past=weights), got `{text}`")
    })?;
    Ok((part.to_string(), recipe(r)?))
}

#[derive(Parser, Debug)]
#[command(
    name = "quantbench",
    version,
    about = "Quantize Whisper/BLIP to INT8 and measure speed and accuracy against FP32"
)]
pub struct Cli {
    /// Asset cache (default: $QUANTBENCH_CACHE, else $XDG_CACHE_HOME/quantbench, else ~/.cache/quantbench)
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Folder of pre-downloaded wheels to take assets from (default: $QUANTBENCH_WHEELHOUSE)
    #[arg(long, global = true)]
    pub wheelhouse: Option<PathBuf>,
    /// Intra-op threads per ONNX Runtime session (default: every core; `report` reads the experiment file)
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Load the experiment file's `[runtime] ort_library` even when it is not the pinned ONNX Runtime
    /// (loading a library runs its code: an experiment file is code)
    #[arg(long, global = true)]
    pub trust_library: bool,
    /// Longest audio clip read from a file, in seconds; a longer one is refused from its header
    #[arg(long, global = true, default_value_t = crate::data::audio::AudioLimits::DEFAULT_MAX_SECONDS, value_parser = positive_seconds)]
    pub max_audio_seconds: f64,
    /// Experiment the TUI opens (no subcommand)
    #[arg(long, default_value = "quantbench.toml")]
    pub config: PathBuf,
    /// Folder the TUI saves reports into (no subcommand)
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Without a subcommand, on a terminal: the interactive TUI on `--config`
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum CacheAction {
    /// Hash every cached file against its pin or its entry's record; exit 1 when one does not match
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fetch pinned assets into the cache (all of them when no name is given)
    Fetch { names: Vec<String> },
    /// Work on the asset cache
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Convert a CTranslate2 Whisper folder into optimum's ONNX layout
    Convert { ct2_dir: PathBuf, out_dir: PathBuf },
    /// Transcribe audio files; prints FILE<TAB>TEXT per file
    Transcribe {
        #[arg(long)]
        model: String,
        /// fp32, or a recipe whose INT8 folder is used (made on first use)
        #[arg(long, default_value = "fp32", value_parser = variant)]
        variant: Variant,
        /// The spoken language's code (en, de, fr, …), or `auto`: detected on each file's first 30 s by
        /// a multilingual model (its top 3 printed on stderr); English for an English-only model
        #[arg(long, default_value = "auto")]
        language: String,
        /// transcribe, or translate into English (multilingual models only)
        #[arg(long, default_value = "transcribe")]
        task: Task,
        /// Write a transcript file per input (NAME.EXT in --output-dir) instead of printing FILE<TAB>TEXT:
        /// txt, srt, vtt, json (segments with tokens and scores) or tsv (milliseconds)
        #[arg(long, value_enum)]
        format: Option<crate::report::TranscriptFormat>,
        /// Where --format writes (default: the current folder)
        #[arg(long, requires = "format")]
        output_dir: Option<PathBuf>,
        #[command(flatten)]
        long_form: LongFormArgs,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Caption images with a BLIP model folder; prints FILE<TAB>CAPTION per image
    Caption {
        #[arg(long)]
        model: String,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Answer a question about an image with a BLIP model folder; prints the answer
    Vqa {
        #[arg(long)]
        model: String,
        image: PathBuf,
        question: String,
    },
    /// Transcribe a manifest and compute WER/CER and latency
    Eval {
        #[arg(long)]
        model: String,
        /// fp32, or a recipe whose INT8 folder is used (made on first use)
        #[arg(long, default_value = "fp32", value_parser = variant)]
        variant: Variant,
        #[arg(long)]
        manifest: PathBuf,
        /// Only the first N items
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Write the per-item and total results here as JSON (with --shard: the shard's per-item counts)
        #[arg(long)]
        json: Option<PathBuf>,
        /// Evaluate shard I of N (0-based): the items at positions ≡ I mod N. Default: from
        /// $JOB_COMPLETION_INDEX with --shard-count (Kubernetes Indexed Job), or from $SLURM_ARRAY_TASK_ID
        /// and $SLURM_ARRAY_TASK_COUNT (Slurm array)
        #[arg(long, value_parser = shard, requires = "json")]
        shard: Option<ShardSpec>,
        /// N, when I comes from the environment
        #[arg(long, conflicts_with = "shard", requires = "json")]
        shard_count: Option<usize>,
    },
    /// Gate a release on a JSON report: exit 0 if every verdict holds, 3 if one fails, 1 if the report
    /// is unreadable or incomplete
    Gate {
        report: PathBuf,
        #[command(flatten)]
        gate: GateArgs,
    },
    /// Compare two JSON reports: per series faster / slower / no change, accuracy and size changes,
    /// verdicts that flipped
    Compare {
        old: PathBuf,
        new: PathBuf,
        /// Also write the comparison as markdown here
        #[arg(long)]
        md: Option<PathBuf>,
        /// Changes of the median under this share are "no change" (e.g. 2% or 0.02; default 5 %, the drift
        /// measured between back-to-back runs on 2-core VMs)
        #[arg(long, default_value = "5%", value_parser = share)]
        noise: f64,
        /// Exit 3 when a latency regressed beyond the noise, accuracy fell, or a verdict began failing
        #[arg(long, value_parser = ["regression"])]
        fail_on: Option<String>,
        /// Compare rows whose model or dataset hashes differ
        #[arg(long)]
        force: bool,
    },
    /// Merge the shard files of a sharded `eval` into accuracy totals (never latency) and gate them
    Merge {
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Write the merged result (a report with accuracy-only rows) here
        #[arg(long)]
        json: PathBuf,
        /// Fail (exit 3) when a variant's accuracy drops more than this many points from FP32's
        #[arg(long)]
        max_accuracy_drop_points: Option<f64>,
        /// Fail (exit 3) when a variant keeps less than this share of FP32's accuracy
        #[arg(long)]
        min_relative_accuracy: Option<f64>,
        #[command(flatten)]
        gate: GateArgs,
    },
    /// Quantize a model to INT8; writes the model folder (same layout) and quantization.json. With
    /// --max-drop: quantization with accuracy control (ops reverted to float until the drop on --validate
    /// is within budget, then the fastest such model; exit 3 when no model meets it)
    Quantize {
        #[command(flatten)]
        quant: QuantArgs,
        /// Output folder (default: the cache, where `--variant RECIPE` finds it)
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing output folder
        #[arg(long)]
        force: bool,
        /// Largest allowed drop against FP32 on the validation set (points, or % with --drop-type relative)
        #[arg(long, requires = "validate")]
        max_drop: Option<f64>,
        /// absolute: points of the metric; relative: percent of FP32's accuracy
        #[arg(long, default_value = "absolute", value_parser = drop_type, requires = "max_drop")]
        drop_type: DropType,
        #[command(flatten)]
        validation: ValidationArgs,
        /// At most this many ops reverted to float
        #[arg(long, default_value_t = 30, requires = "max_drop")]
        max_reverts: usize,
        /// Stop searching after this many seconds (the best model so far is kept)
        #[arg(long, default_value_t = 3600.0, requires = "max_drop")]
        max_seconds: f64,
    },
    /// Rank the ops a recipe quantizes by their sensitivity on a validation set (the per-layer error
    /// report); optionally write the most sensitive as an ignored-scope file an experiment can include
    Sensitivity {
        #[command(flatten)]
        quant: QuantArgs,
        #[command(flatten)]
        validation: ValidationArgs,
        /// Write the top --top ops as a TOML ignored scope (`names = [...]`)
        #[arg(long)]
        write_scope: Option<PathBuf>,
        /// How many of the most sensitive ops --write-scope keeps
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
    /// Write a built-in BLIP's FP32 model folder (blip-base-shape: seeded random weights at blip-vqa-base's size)
    Export { name: String, out_dir: PathBuf },
    /// Compose long recordings from short clips (a spec such as datasets/speech-long/recordings.toml):
    /// OUT_DIR gets NAME.wav, NAME.json (each clip's start and end) and manifest.jsonl
    Compose { spec: PathBuf, out_dir: PathBuf },
    /// Run an experiment file and write a markdown + JSON report
    Report {
        #[arg(long, default_value = "quantbench.toml")]
        config: PathBuf,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Gate the finished report as `quantbench gate` does (with its --junit / --summary files)
        #[arg(long)]
        gate: bool,
        #[command(flatten)]
        gate_args: GateArgs,
        /// Re-run and list every difference from this earlier report outside latency (exit 3 if any)
        #[arg(long)]
        check_repro: Option<PathBuf>,
    },
}

/// What a gate writes besides its exit code.
#[derive(Args, Debug, Default, Clone)]
pub struct GateArgs {
    /// Gate an incomplete (interrupted) report on its finished rows
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Write JUnit XML here: a testsuite per model, a testcase per verdict
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a short markdown verdict table here
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

/// The rules of long-form decoding (audio over 30 s, or any audio with --format); defaults as
/// openai-whisper's `transcribe()`.
#[derive(Args, Debug)]
pub struct LongFormArgs {
    /// Temperatures tried in turn until a window decodes within the thresholds
    #[arg(long, value_delimiter = ',', default_value = "0,0.2,0.4,0.6,0.8,1", value_parser = temperature)]
    pub temperatures: Vec<f32>,
    /// Decode a window again when its text's gzip compression ratio is above this (`off`: never)
    #[arg(long, default_value = "2.4", value_parser = threshold)]
    pub compression_ratio_threshold: Threshold,
    /// Decode a window again when its average token log probability is below this (`off`: never)
    #[arg(long, default_value = "-1", value_parser = threshold, allow_hyphen_values = true)]
    pub logprob_threshold: Threshold,
    /// Skip a window as silence when its no-speech probability is above this and its log probability
    /// below --logprob-threshold (`off`: never)
    #[arg(long, default_value = "0.6", value_parser = threshold)]
    pub no_speech_threshold: Threshold,
    /// Prompt each window with the text decoded before it
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub condition_on_previous_text: bool,
    /// Samples drawn at each temperature above 0 (the most probable is kept)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub best_of: u16,
    /// Seed of that sampling
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A threshold, or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold(pub Option<f64>);

fn threshold(text: &str) -> Result<Threshold, String> {
    if text == "off" {
        return Ok(Threshold(None));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Threshold(Some(v))),
        _ => Err(format!("`{text}` is neither a number nor `off`")),
    }
}

fn temperature(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(format!("`{text}` is not a temperature from 0 to 2")),
    }
}

impl LongFormArgs {
    pub fn options(&self) -> crate::models::whisper::LongFormOptions {
        crate::models::whisper::LongFormOptions {
            temperatures: self.temperatures.clone(),
            compression_ratio_threshold: self.compression_ratio_threshold.0,
            logprob_threshold: self.logprob_threshold.0,
            no_speech_threshold: self.no_speech_threshold.0,
            condition_on_previous_text: self.condition_on_previous_text,
            best_of: usize::from(self.best_of),
            seed: self.seed,
            ..Default::default()
        }
    }
}

/// What to quantize and how: the recipe and its parameters, shared by `quantize` and `sensitivity`.
#[derive(Args, Debug)]
pub struct QuantArgs {
    #[arg(long)]
    pub model: String,
    /// dynamic, static (calibrated QDQ, transformer preset), weights (weight-only compression), seed
    /// (the seed notebooks' recipe: static, but a BLIP text decoder gets weight-only INT8) or fused
    /// (FP32 with the fusions alone)
    #[arg(long, value_parser = recipe)]
    pub recipe: Recipe,
    /// Speech or VQA manifest to calibrate on (default: datasets/speech-calib/manifest.jsonl for
    /// Whisper, easy-VQA's training split for BLIP)
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Calibration items used, a seeded choice from the manifest (default: 30; 300 for seed)
    #[arg(long)]
    pub calib_size: Option<usize>,
    /// Seed of the calibration choice (default: 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Activation range estimator: minmax, percentile[:P] or mse (default: mse)
    #[arg(long, value_parser = estimator)]
    pub estimator: Option<Estimator>,
    /// SmoothQuant α for the encoder side (BLIP: vision model and text encoder) and the decoder side;
    /// `off` for none, or per part (default: off; 0.5,off for seed)
    #[arg(long, value_parser = smooth_alpha)]
    pub smooth_quant: Option<SmoothAlpha>,
    /// Leave biases as they are (no fast bias correction)
    #[arg(long)]
    pub no_bias_correction: bool,
    /// Keep this node in float (exact node name; repeatable)
    #[arg(long = "ignore-name")]
    pub ignore_names: Vec<String>,
    /// Keep nodes whose name matches this regular expression in float (repeatable)
    #[arg(long = "ignore-regex")]
    pub ignore_patterns: Vec<String>,
    /// Keep every node of this op type in float, e.g. Gather (repeatable)
    #[arg(long = "ignore-type")]
    pub ignore_types: Vec<String>,
    /// A recipe for one graph, overriding --recipe there: PART=RECIPE with PART the file name without
    /// .onnx, e.g. text_decoder_with_past=weights (repeatable)
    #[arg(long = "part", value_parser = part)]
    pub parts: Vec<(String, Recipe)>,
    /// Quantize the graphs as they are, without first fusing attention into MultiHeadAttention and GELU into Gelu
    #[arg(long)]
    pub no_fusion: bool,
}

/// The validation set accuracy control judges on.
#[derive(Args, Debug)]
pub struct ValidationArgs {
    /// Validation manifest (speech for Whisper, VQA for BLIP) or easy-vqa:train; keep it disjoint from
    /// the evaluation set
    #[arg(long)]
    pub validate: Option<PathBuf>,
    /// Only the first N validation items (0 = all)
    #[arg(long, default_value_t = 0)]
    pub validate_size: usize,
}
