//! Sharded evaluation through deploy/'s own scripts, locally for N = 3: the Slurm array's task script (with
//! Slurm's environment) on the bundled speech, the Kubernetes Indexed Job's (with JOB_COMPLETION_INDEX) on
//! easy-VQA; the merge equals the unsharded `eval` exactly, and gates.

use std::path::{Path, PathBuf};
use std::process::Command;

use quantbench::results::{EvalResult, ExperimentResult, VqaEvalResult};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const BIN: &str = env!("CARGO_BIN_EXE_quantbench");

fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?}: {text}");
    text
}

fn unsharded(model: &str, variant: &str, manifest: &str, limit: usize, out: &Path) -> String {
    ok(Command::new(BIN)
        .args([
            "eval",
            "--model",
            model,
            "--variant",
            variant,
            "--manifest",
            manifest,
        ])
        .args(["--limit", &limit.to_string(), "--json"])
        .arg(out)
        .current_dir(repo()));
    std::fs::read_to_string(out).unwrap()
}

fn merged(out: &Path) -> ExperimentResult {
    ExperimentResult::from_json(&std::fs::read_to_string(out.join("merged.json")).unwrap()).unwrap()
}

#[test]
fn slurm_array_shards_of_the_bundled_speech_merge_to_the_unsharded_wer() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    let manifest = "datasets/speech-en/manifest.jsonl";
    for index in 0..3 {
        ok(Command::new(repo().join("deploy/slurm/eval.sbatch"))
            .env("SLURM_SUBMIT_DIR", repo())
            .env("SLURM_ARRAY_TASK_ID", index.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("QB", BIN)
            .env("QB_MODEL", "whisper-tiny.en")
            .env("QB_MANIFEST", manifest)
            .env("QB_VARIANTS", "fp32 dynamic")
            .env("QB_OUT", &shards)
            .current_dir(repo()));
    }
    let text = ok(Command::new(repo().join("deploy/slurm/merge.sbatch"))
        .env("SLURM_SUBMIT_DIR", repo())
        .env("QB", BIN)
        .env("QB_OUT", &shards)
        .env("QB_MAX_DROP", "5.0")
        .current_dir(repo()));
    assert!(text.contains("gate: pass"), "{text}");
    let m = merged(&shards);
    assert_eq!(m.rows.len(), 2);
    for (row, variant) in m.rows.iter().zip(["fp32", "dynamic"]) {
        assert_eq!(row.variant, variant);
        assert!(row.series.is_empty(), "latency is never pooled");
        let full: EvalResult = serde_json::from_str(&unsharded(
            "whisper-tiny.en",
            variant,
            manifest,
            0,
            &dir.path().join(format!("{variant}.json")),
        ))
        .unwrap();
        assert_eq!(
            row.accuracy.value,
            Some(full.wer),
            "{variant}: WER = ΣE/ΣN over the shards"
        );
        assert_eq!(row.accuracy.secondary["cer"], full.cer);
        assert_eq!(row.accuracy.n, Some(full.n));
        assert_eq!(row.dataset_sha256.len(), 64);
    }
    let dynamic = &m.rows[1];
    assert_eq!(dynamic.verdicts.len(), 1);
    assert!(dynamic.verdicts[0].pass);

    // A gate the merge cannot pass: exit 3, like `gate`.
    let o = Command::new(repo().join("deploy/merge.sh"))
        .env("QB", BIN)
        .env("QB_OUT", &shards)
        .env("QB_MIN_RELATIVE", "1.5")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A shard of other data is refused, naming the file.
    let one = shards.join("fp32-1.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&one).unwrap()).unwrap();
    v["dataset_sha256"] = "0".repeat(64).into();
    std::fs::write(&one, v.to_string()).unwrap();
    let o = Command::new(BIN)
        .arg("merge")
        .args((0..3).map(|i| shards.join(format!("fp32-{i}.json"))))
        .arg("--json")
        .arg(dir.path().join("x.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("fp32-1.json: dataset hash differs"), "{err}");
    // Two shards only: an item set is incomplete.
    let o = Command::new(BIN)
        .arg("merge")
        .args((0..2).map(|i| shards.join(format!("dynamic-{i}.json"))))
        .arg("--json")
        .arg(dir.path().join("x.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("shard 2/3 appears 0 times"), "{err}");
}

#[test]
fn kubernetes_indexed_job_shards_of_easy_vqa_merge_to_the_unsharded_accuracy() {
    for yaml in [
        "deploy/k8s/eval-indexed-job.yaml",
        "deploy/k8s/merge-job.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(yaml)).unwrap();
        assert!(
            text.contains("/opt/quantbench/deploy/eval-shard.sh")
                || text.contains("/opt/quantbench/deploy/merge.sh"),
            "{yaml} runs the scripts exercised here"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    for index in 0..3 {
        ok(Command::new(repo().join("deploy/eval-shard.sh"))
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("QB_SHARDS", "3")
            .env("QB", BIN)
            .env("QB_MODEL", "blip-easyvqa")
            .env("QB_MANIFEST", "easy-vqa:test")
            .env("QB_LIMIT", "90")
            .env("QB_OUT", &shards)
            .current_dir(repo()));
    }
    ok(Command::new(repo().join("deploy/merge.sh"))
        .env("QB", BIN)
        .env("QB_OUT", &shards));
    let m = merged(&shards);
    let full: VqaEvalResult = serde_json::from_str(&unsharded(
        "blip-easyvqa",
        "fp32",
        "easy-vqa:test",
        90,
        &dir.path().join("full.json"),
    ))
    .unwrap();
    let row = &m.rows[0];
    assert_eq!(row.accuracy.value, Some(full.accuracy));
    assert_eq!(row.accuracy.by_type, full.accuracy_by_type);
    assert_eq!(row.accuracy.n, Some(90));
    assert!(std::fs::read_to_string(shards.join("junit.xml"))
        .unwrap()
        .contains("<testsuites"));
}
