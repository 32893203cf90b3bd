//! VQA accuracy as the official VQA evaluation (vqaEval.py of VT-vision-lab/VQA) computes it, quirks
//! included: answers are normalised (punctuation, number words to digits, articles, contractions) and an
//! answer scores min(#other annotators who gave it / 3, 1), averaged over the ten leave-one-out subsets.
//! With a single reference (easy-VQA) the leave-one-out rule cannot apply; the answer then scores 1 on an
//! exact match after normalising both.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

const PUNCTUATION: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

const NUMBERS: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The evaluation's contraction table. Its four upper-case keys ("Im", "Ive", "Id've", "I'dve") can never
/// match, since words are lower-cased first, and are left out.
const CONTRACTIONS: &[(&str, &str)] = &[
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// The evaluation's `processPunctuation`. A mark touching a space, or any text with a digit-comma-digit,
/// loses the mark; otherwise it becomes a space. Periods not followed by a digit go, at most 32 of them
/// (the evaluation passes `re.UNICODE` where `re.sub` takes its count).
pub fn strip_punctuation(text: &str) -> String {
    static COMMA: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let comma = COMMA.get_or_init(|| Regex::new(r"\d,\d").expect("valid regex"));
    let drop_all = comma.is_match(text);
    let mut out = text.to_string();
    for p in PUNCTUATION {
        let touches = text.contains(&format!("{p} ")) || text.contains(&format!(" {p}"));
        out = out.replace(p, if touches || drop_all { "" } else { " " });
    }
    let chars: Vec<char> = out.chars().collect();
    let mut removed = 0;
    let mut result = String::with_capacity(out.len());
    for (i, &c) in chars.iter().enumerate() {
        let digit_next = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c == '.' && !digit_next && removed < 32 {
            removed += 1;
            continue;
        }
        result.push(c);
    }
    result
}

/// The evaluation's `processDigitArticle`: lower-case, number words to digits, articles dropped,
/// contractions restored, words joined by one space.
pub fn digits_and_articles(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split_whitespace()
        .map(|w| NUMBERS.iter().find(|(k, _)| *k == w).map_or(w, |(_, v)| *v))
        .filter(|w| !ARTICLES.contains(w))
        .map(|w| {
            CONTRACTIONS
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| *v)
        })
        .collect();
    words.join(" ")
}

/// Both steps, as applied to a model's answer.
pub fn normalize_answer(text: &str) -> String {
    let text = text.replace(['\n', '\t'], " ");
    digits_and_articles(&strip_punctuation(text.trim()))
}

/// Accuracy of `answer` against the annotators' `references`, in [0, 1].
pub fn accuracy(answer: &str, references: &[String]) -> f64 {
    match references {
        [] => 0.0,
        [only] => f64::from(u8::from(normalize_answer(answer) == normalize_answer(only))),
        _ => {
            let mut answer = answer.replace(['\n', '\t'], " ").trim().to_string();
            let mut refs: Vec<String> = references.to_vec();
            // The evaluation normalises only when the annotators disagree.
            if refs.iter().any(|r| *r != refs[0]) {
                refs = refs.iter().map(|r| strip_punctuation(r)).collect();
                answer = digits_and_articles(&strip_punctuation(&answer));
            }
            let total: f64 = (0..refs.len())
                .map(|left_out| {
                    let matching = refs
                        .iter()
                        .enumerate()
                        .filter(|(i, r)| *i != left_out && **r == answer)
                        .count();
                    (matching as f64 / 3.0).min(1.0)
                })
                .sum();
            total / refs.len() as f64
        }
    }
}

/// Accuracy over many questions, overall and per answer type ("yes/no", "number", "shape", ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VqaScore {
    pub questions: usize,
    pub sum: f64,
    pub by_type: BTreeMap<String, (usize, f64)>,
}

impl VqaScore {
    pub fn add(&mut self, answer_type: &str, accuracy: f64) {
        self.questions += 1;
        self.sum += accuracy;
        let t = self.by_type.entry(answer_type.to_string()).or_default();
        t.0 += 1;
        t.1 += accuracy;
    }

    pub fn accuracy(&self) -> f64 {
        self.sum / self.questions.max(1) as f64
    }

    pub fn accuracy_of(&self, answer_type: &str) -> Option<f64> {
        self.by_type
            .get(answer_type)
            .map(|(n, s)| s / (*n).max(1) as f64)
    }
}

// Every expected value below was checked against the evaluation's own Python functions
// (processPunctuation, processDigitArticle and the accuracy loop of vqaEval.py).
#[cfg(test)]
mod tests {
    use super::*;

    fn refs(spec: &[(&str, usize)]) -> Vec<String> {
        spec.iter()
            .flat_map(|(a, n)| std::iter::repeat_n(a.to_string(), *n))
            .collect()
    }

    #[test]
    fn punctuation_follows_the_evaluation() {
        assert_eq!(strip_punctuation("yes."), "yes");
        assert_eq!(strip_punctuation("3.5"), "3.5");
        assert_eq!(strip_punctuation("hello, world"), "hello world");
        assert_eq!(strip_punctuation("a,b"), "a b");
        assert_eq!(strip_punctuation("1,000"), "1000");
        // A digit-comma-digit anywhere makes every mark vanish, hyphens included.
        assert_eq!(strip_punctuation("left-handed 1,5"), "lefthanded 15");
        assert_eq!(strip_punctuation("left-handed"), "left handed");
        assert_eq!(strip_punctuation("(red)"), " red ");
        assert_eq!(strip_punctuation("why? (red)"), "why red ");
        assert_eq!(strip_punctuation("e.g. mr. t"), "eg mr t");
        let dots = ".".repeat(40);
        assert_eq!(
            strip_punctuation(&dots),
            ".".repeat(8),
            "at most 32 periods go"
        );
    }

    #[test]
    fn digits_articles_and_contractions() {
        assert_eq!(digits_and_articles("Two dogs"), "2 dogs");
        assert_eq!(digits_and_articles("the  cat"), "cat");
        assert_eq!(digits_and_articles("A None"), "0");
        assert_eq!(digits_and_articles("dont know"), "don't know");
        assert_eq!(
            digits_and_articles("Im here"),
            "im here",
            "upper-case keys never match"
        );
        assert_eq!(
            digits_and_articles("an apple and the pear"),
            "apple and pear"
        );
        assert_eq!(normalize_answer("  Two.\n"), "2");
    }

    #[test]
    fn ten_annotators_leave_one_out() {
        let r = refs(&[("yes", 3), ("no", 7)]);
        // "yes": 3 gts see 2 others (2/3), 7 gts see 3 (1) → (3·2/3 + 7)/10.
        assert!((accuracy("yes", &r) - 0.9).abs() < 1e-12);
        assert_eq!(accuracy("no", &r), 1.0);
        assert_eq!(accuracy("maybe", &r), 0.0);
        let r = refs(&[("red", 2), ("blue", 8)]);
        assert!((accuracy("red", &r) - 0.6).abs() < 1e-12);
        // Normalisation of the answer only happens because the annotators disagree.
        assert!((accuracy("Red.", &r) - 0.6).abs() < 1e-12);
        // The answer becomes digits; the references only lose punctuation, so "two" answers match "2"s.
        let r = refs(&[("2", 1), ("two", 9)]);
        assert!((accuracy("two", &r) - 0.3).abs() < 1e-12);
        assert!((accuracy("2", &r) - 0.3).abs() < 1e-12);
        // All ten agree: nothing is normalised, so only the literal answer counts.
        let r = refs(&[("red", 10)]);
        assert_eq!(accuracy("red", &r), 1.0);
        assert_eq!(accuracy("Red", &r), 0.0);
    }

    #[test]
    fn one_reference_is_an_exact_match_after_normalising_both() {
        let one = |a: &str| vec![a.to_string()];
        assert_eq!(accuracy("Circle.", &one("circle")), 1.0);
        assert_eq!(accuracy("a circle", &one("circle")), 1.0);
        assert_eq!(accuracy("two", &one("2")), 1.0);
        assert_eq!(accuracy("square", &one("circle")), 0.0);
        assert_eq!(accuracy("circle", &[]), 0.0);
    }

    #[test]
    fn scores_average_overall_and_per_type() {
        let mut s = VqaScore::default();
        s.add("yes/no", 1.0);
        s.add("yes/no", 0.0);
        s.add("shape", 1.0);
        assert!((s.accuracy() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.accuracy_of("yes/no"), Some(0.5));
        assert_eq!(s.accuracy_of("shape"), Some(1.0));
        assert_eq!(s.accuracy_of("colour"), None);
    }
}
