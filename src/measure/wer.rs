//! Word and character error rates as jiwer computes them: corpus rate = total edits / total reference units,
//! edits from a minimum-edit alignment split into substitutions, deletions and insertions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditCounts {
    pub hits: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    pub reference_len: usize,
}

impl EditCounts {
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// errors / reference units. jiwer refuses an empty reference; here it divides by 1 instead.
    pub fn rate(&self) -> f64 {
        self.errors() as f64 / self.reference_len.max(1) as f64
    }

    pub fn add(&mut self, other: &EditCounts) {
        self.hits += other.hits;
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
        self.reference_len += other.reference_len;
    }
}

/// One step of an alignment, in reading order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Hit,
    Substitution,
    Deletion,
    Insertion,
}

/// Levenshtein alignment with a backtrace that, among minimum-cost paths, prefers matches/substitutions,
/// then deletions, then insertions (rapidfuzz's Opcodes order, which jiwer uses).
pub fn edits<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> Vec<Edit> {
    let (n, m) = (reference.len(), hypothesis.len());
    let mut d = vec![0usize; (n + 1) * (m + 1)];
    let idx = |i: usize, j: usize| i * (m + 1) + j;
    for i in 0..=n {
        d[idx(i, 0)] = i;
    }
    for j in 0..=m {
        d[idx(0, j)] = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[idx(i - 1, j - 1)] + usize::from(reference[i - 1] != hypothesis[j - 1]);
            d[idx(i, j)] = sub.min(d[idx(i - 1, j)] + 1).min(d[idx(i, j - 1)] + 1);
        }
    }
    let mut ops = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        if i > 0 && j > 0 {
            let same = reference[i - 1] == hypothesis[j - 1];
            if d[idx(i, j)] == d[idx(i - 1, j - 1)] + usize::from(!same) {
                ops.push(if same { Edit::Hit } else { Edit::Substitution });
                i -= 1;
                j -= 1;
                continue;
            }
        }
        if i > 0 && d[idx(i, j)] == d[idx(i - 1, j)] + 1 {
            ops.push(Edit::Deletion);
            i -= 1;
        } else {
            ops.push(Edit::Insertion);
            j -= 1;
        }
    }
    ops.reverse();
    ops
}

/// Edit counts of the alignment [`edits`] backtraces, in O(len(hypothesis)) memory: two rows of the DP, each
/// cell carrying the counts of the path through its preferred predecessor (diagonal, then deletion, then
/// insertion: the order the backtrace tries them, so the path is the same one). A reference of a million
/// words costs a few rows, not gigabytes.
pub fn align<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> EditCounts {
    #[derive(Clone, Copy, Default)]
    struct Cell {
        cost: usize,
        hits: usize,
        subs: usize,
        dels: usize,
        ins: usize,
    }
    let m = hypothesis.len();
    let mut prev: Vec<Cell> = (0..=m)
        .map(|j| Cell {
            cost: j,
            ins: j,
            ..Default::default()
        })
        .collect();
    let mut cur = prev.clone();
    for (i, r) in reference.iter().enumerate() {
        cur[0] = Cell {
            cost: i + 1,
            dels: i + 1,
            ..Default::default()
        };
        for j in 1..=m {
            let same = *r == hypothesis[j - 1];
            let diag = prev[j - 1].cost + usize::from(!same);
            let (up, left) = (prev[j].cost + 1, cur[j - 1].cost + 1);
            let best = diag.min(up).min(left);
            cur[j] = if diag == best {
                let mut c = prev[j - 1];
                if same {
                    c.hits += 1;
                } else {
                    c.subs += 1;
                }
                c
            } else if up == best {
                Cell {
                    dels: prev[j].dels + 1,
                    ..prev[j]
                }
            } else {
                Cell {
                    ins: cur[j - 1].ins + 1,
                    ..cur[j - 1]
                }
            };
            cur[j].cost = best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let last = prev[m];
    EditCounts {
        hits: last.hits,
        substitutions: last.subs,
        deletions: last.dels,
        insertions: last.ins,
        reference_len: reference.len(),
    }
}

/// Word diffs are for showing a few worst items: past this many DP cells the words are listed unaligned,
/// all marked, rather than allocating (n + 1)(m + 1) cells.
const DIFF_MAX_CELLS: usize = 1 << 24;

/// The words of both texts, each marked `true` when the alignment does not match it (substituted,
/// deleted from the reference, inserted in the hypothesis).
pub type MarkedWords = Vec<(String, bool)>;

pub fn word_diff(reference: &str, hypothesis: &str) -> (MarkedWords, MarkedWords) {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    let cells = (r.len() + 1).saturating_mul(h.len() + 1);
    if cells > DIFF_MAX_CELLS {
        let all = |w: &[&str]| w.iter().map(|w| (w.to_string(), true)).collect();
        return (all(&r), all(&h));
    }
    let (mut rw, mut hw) = (r.iter(), h.iter());
    let (mut ro, mut ho) = (Vec::new(), Vec::new());
    let take = |it: &mut std::slice::Iter<&str>, out: &mut MarkedWords, differs: bool| {
        if let Some(w) = it.next() {
            out.push((w.to_string(), differs));
        }
    };
    for op in edits(&r, &h) {
        match op {
            Edit::Hit | Edit::Substitution => {
                let differs = op == Edit::Substitution;
                take(&mut rw, &mut ro, differs);
                take(&mut hw, &mut ho, differs);
            }
            Edit::Deletion => take(&mut rw, &mut ro, true),
            Edit::Insertion => take(&mut hw, &mut ho, true),
        }
    }
    (ro, ho)
}

pub fn word_counts(reference: &str, hypothesis: &str) -> EditCounts {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    align(&r, &h)
}

/// Characters of the texts with runs of whitespace collapsed to one space (jiwer's cer default transform).
pub fn char_counts(reference: &str, hypothesis: &str) -> EditCounts {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect::<Vec<char>>()
    };
    align(&norm(reference), &norm(hypothesis))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts the full backtrace gives: the reference `align` must equal.
    fn counts_by_backtrace<T: PartialEq>(r: &[T], h: &[T]) -> EditCounts {
        let mut c = EditCounts {
            reference_len: r.len(),
            ..Default::default()
        };
        for op in edits(r, h) {
            match op {
                Edit::Hit => c.hits += 1,
                Edit::Substitution => c.substitutions += 1,
                Edit::Deletion => c.deletions += 1,
                Edit::Insertion => c.insertions += 1,
            }
        }
        c
    }

    #[test]
    fn two_row_counts_follow_the_backtraced_path() {
        let mut rng = crate::rng::XorShift64::new(7);
        for _ in 0..2000 {
            let mut seq = |max: u64| -> Vec<u64> {
                let n = rng.next_u64() % max;
                (0..n).map(|_| rng.next_u64() % 4).collect()
            };
            let (r, h) = (seq(12), seq(12));
            assert_eq!(align(&r, &h), counts_by_backtrace(&r, &h), "{r:?} {h:?}");
        }
    }

    #[test]
    fn a_million_word_reference_needs_only_two_rows() {
        let r: Vec<u32> = (0..1_000_000).map(|i| i % 97).collect();
        let h: Vec<u32> = (0..50).map(|i| i % 97).collect();
        // Full DP: 50 million cells. Two rows: 102 cells.
        let c = align(&r, &h);
        assert_eq!(c.hits, 50);
        assert_eq!(c.deletions, 1_000_000 - 50);
        assert_eq!(c.reference_len, 1_000_000);
        let long = "a ".repeat(300_000);
        let (rw, hw) = word_diff(&long, &long[..2000]);
        assert_eq!((rw.len(), hw.len()), (300_000, 1000));
    }

    #[test]
    fn word_diff_marks_substitutions_deletions_and_insertions() {
        let (r, h) = word_diff("the cat sat on the mat", "the bat sat on mat today");
        fn marked(v: &MarkedWords) -> Vec<&str> {
            v.iter()
                .filter(|(_, m)| *m)
                .map(|(w, _)| w.as_str())
                .collect()
        }
        // Three substitutions tie with sub + deletion + insertion; the backtrace prefers substitutions.
        assert_eq!(marked(&r), vec!["cat", "the", "mat"]);
        assert_eq!(marked(&h), vec!["bat", "mat", "today"]);
        assert_eq!((r.len(), h.len()), (6, 6));
        let (r, h) = word_diff("a b c d", "a c d e");
        assert_eq!((marked(&r), marked(&h)), (vec!["b"], vec!["e"]));
        assert_eq!(word_counts("a b c d", "a c d e").errors(), 2);
    }

    #[test]
    fn hand_worked_word_cases() {
        // one substitution out of 4 words
        let c = word_counts("the cat sat down", "the cat sit down");
        assert_eq!(
            (c.substitutions, c.deletions, c.insertions, c.hits),
            (1, 0, 0, 3)
        );
        assert_eq!(c.rate(), 0.25);
        // one deletion and one insertion
        let c = word_counts("a b c", "b c d");
        assert_eq!((c.substitutions, c.deletions, c.insertions), (0, 1, 1));
        // hypothesis longer than the reference: WER above 1
        let c = word_counts("hi", "oh hi there you");
        assert_eq!(c.errors(), 3);
        assert_eq!(c.rate(), 3.0);
        let c = word_counts("one two", "");
        assert_eq!(c.deletions, 2);
    }

    #[test]
    fn corpus_rate_is_total_edits_over_total_words() {
        // jiwer.wer(["a b c d", "e f"], ["a x c d", "e f g h"]) == (1 + 2) / 6
        let mut total = EditCounts::default();
        total.add(&word_counts("a b c d", "a x c d"));
        total.add(&word_counts("e f", "e f g h"));
        assert_eq!(total.rate(), 0.5);
    }

    #[test]
    fn cer_counts_characters_including_spaces() {
        // jiwer.cer("abc de", "abd de") == 1/6
        let c = char_counts("abc de", "abd  de");
        assert_eq!(c.errors(), 1);
        assert!((c.rate() - 1.0 / 6.0).abs() < 1e-12);
    }
}
