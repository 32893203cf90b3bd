//! A port of Whisper's `EnglishTextNormalizer` (openai-whisper 20250625, MIT; english.json is its
//! British→American spelling table): lower-casing, bracketed text and fillers removed, contractions and
//! titles expanded, symbols and diacritics dropped, spelled-out numbers to digits, spellings unified.

mod numbers;

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use unicode_general_category::{get_general_category, GeneralCategory as G};
use unicode_normalization::UnicodeNormalization;

pub use numbers::normalize_numbers;

struct Rules {
    brackets: Regex,
    parens: Regex,
    fillers: Regex,
    space_apostrophe: Regex,
    replacers: Vec<(Regex, &'static str)>,
    digit_commas: Regex,
    periods: Regex,
    symbol_prefix: Regex,
    symbol_suffix: Regex,
    spaces: Regex,
    spellings: HashMap<String, String>,
}

const REPLACERS: &[(&str, &str)] = &[
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\blet's\b", "let us"),
    (r"\bain't\b", "aint"),
    (r"\by'all\b", "you all"),
    (r"\bwanna\b", "want to"),
    (r"\bgotta\b", "got to"),
    (r"\bgonna\b", "going to"),
    (r"\bi'ma\b", "i am going to"),
    (r"\bimma\b", "i am going to"),
    (r"\bwoulda\b", "would have"),
    (r"\bcoulda\b", "could have"),
    (r"\bshoulda\b", "should have"),
    (r"\bma'am\b", "madam"),
    (r"\bmr\b", "mister "),
    (r"\bmrs\b", "missus "),
    (r"\bst\b", "saint "),
    (r"\bdr\b", "doctor "),
    (r"\bprof\b", "professor "),
    (r"\bcapt\b", "captain "),
    (r"\bgov\b", "governor "),
    (r"\bald\b", "alderman "),
    (r"\bgen\b", "general "),
    (r"\bsen\b", "senator "),
    (r"\brep\b", "representative "),
    (r"\bpres\b", "president "),
    (r"\brev\b", "reverend "),
    (r"\bhon\b", "honorable "),
    (r"\basst\b", "assistant "),
    (r"\bassoc\b", "associate "),
    (r"\blt\b", "lieutenant "),
    (r"\bcol\b", "colonel "),
    (r"\bjr\b", "junior "),
    (r"\bsr\b", "senior "),
    (r"\besq\b", "esquire "),
    (r"'d been\b", " had been"),
    (r"'s been\b", " has been"),
    (r"'d gone\b", " had gone"),
    (r"'s gone\b", " has gone"),
    (r"'d done\b", " had done"),
    (r"'s got\b", " has got"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'s\b", " is"),
    (r"'d\b", " would"),
    (r"'ll\b", " will"),
    (r"'t\b", " not"),
    (r"'ve\b", " have"),
    (r"'m\b", " am"),
];

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("normalizer pattern");
        Rules {
            brackets: re(r"[<\[][^>\]]*[>\]]"),
            parens: re(r"\(([^)]+?)\)"),
            fillers: re(r"\b(hmm|mm|mhm|mmm|uh|um)\b"),
            space_apostrophe: re(r"\s+'"),
            replacers: REPLACERS.iter().map(|(p, r)| (re(p), *r)).collect(),
            digit_commas: re(r"(\d),(\d)"),
            periods: re(r"\.([^0-9]|$)"),
            symbol_prefix: re(r"[.$¢€£]([^0-9])"),
            symbol_suffix: re(r"([^0-9])%"),
            spaces: re(r"\s+"),
            spellings: serde_json::from_str(include_str!("english.json")).expect("english.json"),
        }
    })
}

/// Whisper's `EnglishTextNormalizer()(s)`.
pub fn normalize(s: &str) -> String {
    let r = rules();
    let mut s = s.to_lowercase();
    s = r.brackets.replace_all(&s, "").into_owned();
    s = r.parens.replace_all(&s, "").into_owned();
    s = r.fillers.replace_all(&s, "").into_owned();
    s = r.space_apostrophe.replace_all(&s, "'").into_owned();
    for (pattern, replacement) in &r.replacers {
        s = pattern.replace_all(&s, *replacement).into_owned();
    }
    s = r.digit_commas.replace_all(&s, "${1}${2}").into_owned();
    s = r.periods.replace_all(&s, " ${1}").into_owned();
    s = remove_symbols_and_diacritics(&s, ".%$¢€£");
    s = normalize_numbers(&s);
    s = s
        .split_whitespace()
        .map(|w| r.spellings.get(w).map(String::as_str).unwrap_or(w))
        .collect::<Vec<_>>()
        .join(" ");
    s = r.symbol_prefix.replace_all(&s, " ${1}").into_owned();
    s = r.symbol_suffix.replace_all(&s, "${1} ").into_owned();
    r.spaces.replace_all(&s, " ").into_owned()
}

fn additional_diacritic(c: char) -> Option<&'static str> {
    Some(match c {
        'œ' => "oe",
        'Œ' => "OE",
        'ø' => "o",
        'Ø' => "O",
        'æ' => "ae",
        'Æ' => "AE",
        'ß' => "ss",
        'ẞ' => "SS",
        'đ' => "d",
        'Đ' => "D",
        'ð' => "d",
        'Ð' => "D",
        'þ' => "th",
        'Þ' => "th",
        'ł' => "l",
        'Ł' => "L",
        _ => return None,
    })
}

/// NFKD, then: kept symbols stay, non-spacing marks go, other marks/symbols/punctuation become spaces.
fn remove_symbols_and_diacritics(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if keep.contains(c) {
            out.push(c);
        } else if let Some(rep) = additional_diacritic(c) {
            out.push_str(rep);
        } else {
            match get_general_category(c) {
                G::NonspacingMark => {}
                G::SpacingMark
                | G::EnclosingMark
                | G::MathSymbol
                | G::CurrencySymbol
                | G::ModifierSymbol
                | G::OtherSymbol
                | G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation => out.push(' '),
                _ => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    /// Expected outputs produced by openai-whisper 20250625's EnglishTextNormalizer (see
    /// tests/fixtures/normalizer_reference.json for the full list run in the integration tests).
    #[test]
    fn rules_match_whisper() {
        let cases = [
            ("Hello, World!", "hello world"),
            ("I won't go; they can't.", "i will not go they can not"),
            ("Mr. Smith and Dr Jones", "mister smith and doctor jones"),
            (
                "Um, the [inaudible] colour (sic) is grey",
                "the color is gray",
            ),
            ("twenty five dollars", "$25"),
            ("It costs $20 million.", "it costs $20000000"),
            ("one hundred and twenty three", "123"),
            ("the 1960s", "the 1960s"),
            ("two point five percent", "2.5%"),
            ("Café naïve", "cafe naive"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).trim(), want, "input: {input}");
        }
    }
}
