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

pub fn align<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> EditCounts {
    let mut c = EditCounts {
        reference_len: reference.len(),
        ..Default::default()
    };
    for op in edits(reference, hypothesis) {
        match op {
            Edit::Hit => c.hits += 1,
            Edit::Substitution => c.substitutions += 1,
            Edit::Deletion => c.deletions += 1,
            Edit::Insertion => c.insertions += 1,
        }
    }
    c
}

/// The words of both texts, each marked `true` when the alignment does not match it (substituted,
/// deleted from the reference, inserted in the hypothesis).
pub type MarkedWords = Vec<(String, bool)>;

pub fn word_diff(reference: &str, hypothesis: &str) -> (MarkedWords, MarkedWords) {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
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
