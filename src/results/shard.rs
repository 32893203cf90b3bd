//! Sharded evaluation: each shard holds per-item sufficient statistics (word and char edit counts for WER,
//! per-question accuracy for VQA) with the hashes that say what was evaluated; the merge checks the shards
//! fit together and computes the totals from the counts (WER = ΣE / ΣN, never a mean of shard WERs).
//! Accuracy only: latency is never pooled across machines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Accuracy, FileHash, Kind, Metric};
use crate::measure::vqa::VqaScore;

pub const SHARD_SCHEMA: &str = "quantbench.shard/1";

/// Shard `index` of `count` (0-based): the items whose position in the dataset is `index` mod `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    /// `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("expected I/N with 0 ≤ I < N (e.g. 0/3), got `{text}`");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Self::new(index, count).ok_or_else(bad)
    }

    pub fn new(index: usize, count: usize) -> Option<Self> {
        (count > 0 && index < count).then_some(ShardSpec { index, count })
    }

    pub fn holds(self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// One item's sufficient statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemCounts {
    Speech {
        word_errors: usize,
        reference_words: usize,
        char_errors: usize,
        reference_chars: usize,
    },
    Vqa {
        accuracy: f64,
        answer_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardItem {
    /// Position in the dataset.
    pub index: usize,
    pub item: String,
    #[serde(flatten)]
    pub counts: ItemCounts,
}

/// What `eval --shard I/N` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    pub schema: String,
    pub shard: ShardSpec,
    pub model: String,
    pub kind: Kind,
    pub variant: String,
    pub source_sha256: String,
    /// Every file of the evaluated model folder, by content.
    pub files: Vec<FileHash>,
    pub dataset: String,
    pub dataset_sha256: String,
    /// Items of the whole dataset (after `--limit`): the merge checks each appears exactly once.
    pub dataset_items: usize,
    /// The evaluation's settings and their sha256: every shard of a merge must have the same.
    pub config: serde_json::Value,
    pub config_sha256: String,
    pub environment: super::Environment,
    pub items: Vec<ShardItem>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("no shards given")]
    Empty,
    #[error("{file}: schema `{found}` is not a shard (expected `{SHARD_SCHEMA}`)")]
    Schema { file: String, found: String },
    #[error("{file}: {what} differs from {first}'s ({theirs} vs {ours})")]
    Mismatch {
        file: String,
        first: String,
        what: &'static str,
        theirs: String,
        ours: String,
    },
    #[error("{model} {variant}: shard {index}/{count} appears {times} times")]
    ShardCount {
        model: String,
        variant: String,
        index: usize,
        count: usize,
        times: usize,
    },
    #[error("{model} {variant}: item {index} ({item}) appears {times} times")]
    ItemTwice {
        model: String,
        variant: String,
        index: usize,
        item: String,
        times: usize,
    },
    #[error("{model} {variant}: {missing} of {total} items are in no shard (first: item {first})")]
    ItemsMissing {
        model: String,
        variant: String,
        missing: usize,
        total: usize,
        first: usize,
    },
    #[error("{model} {variant}: item {index} is out of range (the dataset has {total} items)")]
    OutOfRange {
        model: String,
        variant: String,
        index: usize,
        total: usize,
    },
}

/// One variant's totals over its shards.
#[derive(Debug, Clone)]
pub struct Merged {
    pub model: String,
    pub kind: Kind,
    pub variant: String,
    pub source_sha256: String,
    pub files: Vec<FileHash>,
    pub dataset: String,
    pub dataset_sha256: String,
    pub shards: usize,
    pub accuracy: Accuracy,
}

fn check_same(
    (file, s): (&str, &ShardFile),
    (first, f): (&str, &ShardFile),
    variant_too: bool,
) -> Result<(), MergeError> {
    let mismatch = |what: &'static str, theirs: &str, ours: &str| {
        if theirs == ours {
            Ok(())
        } else {
            Err(MergeError::Mismatch {
                file: file.to_string(),
                first: first.to_string(),
                what,
                theirs: theirs.to_string(),
                ours: ours.to_string(),
            })
        }
    };
    mismatch("model", &s.model, &f.model)?;
    mismatch("dataset hash", &s.dataset_sha256, &f.dataset_sha256)?;
    mismatch("config hash", &s.config_sha256, &f.config_sha256)?;
    mismatch(
        "shard count",
        &s.shard.count.to_string(),
        &f.shard.count.to_string(),
    )?;
    mismatch(
        "dataset size",
        &s.dataset_items.to_string(),
        &f.dataset_items.to_string(),
    )?;
    if variant_too {
        mismatch("source model hash", &s.source_sha256, &f.source_sha256)?;
        let hashes = |x: &ShardFile| {
            x.files
                .iter()
                .map(|h| format!("{}={}", h.file, &h.sha256[..h.sha256.len().min(12)]))
                .collect::<Vec<_>>()
                .join(" ")
        };
        mismatch("model file hashes", &hashes(s), &hashes(f))?;
    }
    Ok(())
}

fn totals(kind: Kind, items: &[&ShardItem]) -> Accuracy {
    let (mut we, mut wn, mut ce, mut cn) = (0usize, 0usize, 0usize, 0usize);
    let mut vqa = VqaScore::default();
    for it in items {
        match &it.counts {
            ItemCounts::Speech {
                word_errors,
                reference_words,
                char_errors,
                reference_chars,
            } => {
                we += word_errors;
                wn += reference_words;
                ce += char_errors;
                cn += reference_chars;
            }
            ItemCounts::Vqa {
                accuracy,
                answer_type,
            } => vqa.add(answer_type, *accuracy),
        }
    }
    let evaluated = items.len();
    match kind {
        Kind::Whisper => Accuracy {
            metric: Metric::Wer,
            value: Some(we as f64 / wn.max(1) as f64),
            n: Some(evaluated),
            by_type: BTreeMap::new(),
            secondary: [("cer".to_string(), ce as f64 / cn.max(1) as f64)].into(),
            not_applicable: None,
        },
        Kind::Blip => Accuracy {
            metric: Metric::VqaAccuracy,
            value: Some(vqa.accuracy()),
            n: Some(evaluated),
            by_type: vqa
                .by_type
                .keys()
                .filter_map(|t| Some((t.clone(), vqa.accuracy_of(t)?)))
                .collect(),
            secondary: BTreeMap::new(),
            not_applicable: None,
        },
    }
}

/// Merges shards (each named by its file, for errors) into one total per variant, in first-seen order.
/// Every shard must describe the same model, dataset, config and shard count, and within a variant the
/// same model files; each shard index and each item must appear exactly once.
pub fn merge(shards: &[(String, ShardFile)]) -> Result<Vec<Merged>, MergeError> {
    let (first_name, first) = shards.first().ok_or(MergeError::Empty)?;
    let mut variants: Vec<&str> = Vec::new();
    for (name, s) in shards {
        if s.schema != SHARD_SCHEMA {
            return Err(MergeError::Schema {
                file: name.clone(),
                found: s.schema.clone(),
            });
        }
        check_same((name, s), (first_name, first), false)?;
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let mut out = Vec::new();
    for variant in variants {
        let mine: Vec<&(String, ShardFile)> = shards
            .iter()
            .filter(|(_, s)| s.variant == variant)
            .collect();
        let (vname, v0) = mine[0];
        for (name, s) in &mine {
            check_same((name, s), (vname, v0), true)?;
        }
        for index in 0..first.shard.count {
            let times = mine.iter().filter(|(_, s)| s.shard.index == index).count();
            if times != 1 {
                return Err(MergeError::ShardCount {
                    model: first.model.clone(),
                    variant: variant.to_string(),
                    index,
                    count: first.shard.count,
                    times,
                });
            }
        }
        let total = first.dataset_items;
        // A shard's `dataset_items` is read from a file: never allocate by it before the items given
        // could fill it.
        let given: usize = mine.iter().map(|(_, s)| s.items.len()).sum();
        if given < total {
            let mut seen: Vec<usize> = mine
                .iter()
                .flat_map(|(_, s)| s.items.iter().map(|it| it.index))
                .collect();
            seen.sort_unstable();
            seen.dedup();
            let first_missing = seen
                .iter()
                .enumerate()
                .find(|(i, &x)| *i != x)
                .map_or(seen.len(), |(i, _)| i);
            return Err(MergeError::ItemsMissing {
                model: first.model.clone(),
                variant: variant.to_string(),
                missing: total - seen.len(),
                total,
                first: first_missing,
            });
        }
        let mut by_index: Vec<Option<&ShardItem>> = vec![None; total];
        for it in mine.iter().flat_map(|(_, s)| &s.items) {
            let slot = by_index
                .get_mut(it.index)
                .ok_or_else(|| MergeError::OutOfRange {
                    model: first.model.clone(),
                    variant: variant.to_string(),
                    index: it.index,
                    total,
                })?;
            if slot.is_some() {
                return Err(MergeError::ItemTwice {
                    model: first.model.clone(),
                    variant: variant.to_string(),
                    index: it.index,
                    item: it.item.clone(),
                    times: 2,
                });
            }
            *slot = Some(it);
        }
        let missing: Vec<usize> = (0..total).filter(|&i| by_index[i].is_none()).collect();
        if let Some(&first_missing) = missing.first() {
            return Err(MergeError::ItemsMissing {
                model: first.model.clone(),
                variant: variant.to_string(),
                missing: missing.len(),
                total,
                first: first_missing,
            });
        }
        let items: Vec<&ShardItem> = by_index.into_iter().flatten().collect();
        let accuracy = totals(v0.kind, &items);
        out.push(Merged {
            model: v0.model.clone(),
            kind: v0.kind,
            variant: variant.to_string(),
            source_sha256: v0.source_sha256.clone(),
            files: v0.files.clone(),
            dataset: v0.dataset.clone(),
            dataset_sha256: v0.dataset_sha256.clone(),
            shards: mine.len(),
            accuracy,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: usize, count: usize, items: &[(usize, usize, usize)]) -> (String, ShardFile) {
        (
            format!("s{index}.json"),
            ShardFile {
                schema: SHARD_SCHEMA.into(),
                shard: ShardSpec { index, count },
                model: "m".into(),
                kind: Kind::Whisper,
                variant: "fp32".into(),
                source_sha256: "s".into(),
                files: vec![],
                dataset: "d".into(),
                dataset_sha256: "h".into(),
                dataset_items: 4,
                config: serde_json::json!({}),
                config_sha256: "c".into(),
                environment: serde_json::from_value(serde_json::json!({"cpu_model": "x", "cpu_flags": [],
                    "cores": 2, "threads": 2, "ort_version": "1", "ort_library": "", "quantbench_version": "0",
                    "git_commit": "g", "os": "linux"}))
                .unwrap(),
                items: items
                    .iter()
                    .map(|&(index, e, n)| ShardItem {
                        index,
                        item: format!("i{index}"),
                        counts: ItemCounts::Speech {
                            word_errors: e,
                            reference_words: n,
                            char_errors: e,
                            reference_chars: n * 5,
                        },
                    })
                    .collect(),
            },
        )
    }

    #[test]
    fn wer_is_total_edits_over_total_words_never_a_mean_of_shard_wers() {
        // Shard WERs 1/2 and 1/18 average to 27.8 %; the corpus WER is 2/20.
        let s = [
            shard(0, 2, &[(0, 1, 1), (2, 0, 1)]),
            shard(1, 2, &[(1, 1, 9), (3, 0, 9)]),
        ];
        let m = merge(&s).unwrap();
        assert_eq!(m[0].accuracy.value, Some(2.0 / 20.0));
        assert_eq!(m[0].accuracy.n, Some(4));
    }

    #[test]
    fn shards_that_do_not_fit_are_refused() {
        let a = shard(0, 2, &[(0, 1, 1), (2, 0, 1)]);
        let b = shard(1, 2, &[(1, 1, 9)]);
        assert!(matches!(
            merge(&[a.clone(), b]),
            Err(MergeError::ItemsMissing {
                missing: 1,
                first: 3,
                ..
            })
        ));
        assert!(matches!(
            merge(&[a.clone(), a.clone()]),
            Err(MergeError::ShardCount {
                index: 0,
                times: 2,
                ..
            })
        ));
        let mut c = shard(1, 2, &[(1, 1, 9), (2, 0, 9), (3, 0, 1)]);
        assert!(matches!(
            merge(&[a.clone(), c.clone()]),
            Err(MergeError::ItemTwice { index: 2, .. })
        ));
        // A hostile dataset size is an error, not an allocation.
        let (mut huge_a, mut huge_b) = (a.clone(), shard(1, 2, &[(1, 1, 9), (3, 0, 9)]));
        huge_a.1.dataset_items = usize::MAX / 2;
        huge_b.1.dataset_items = usize::MAX / 2;
        assert!(matches!(
            merge(&[huge_a, huge_b]),
            Err(MergeError::ItemsMissing { first: 4, .. })
        ));
        c.1.dataset_sha256 = "other".into();
        let e = merge(&[a, c]).unwrap_err().to_string();
        assert!(e.contains("s1.json: dataset hash differs"), "{e}");
        assert_eq!(
            ShardSpec::parse("2/3"),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        assert!(ShardSpec::parse("3/3").is_err() && ShardSpec::parse("x").is_err());
    }
}
