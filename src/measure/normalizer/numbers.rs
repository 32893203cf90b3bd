//! Whisper's `EnglishNumberNormalizer`: spelled-out numbers to digits, currency and percent symbols,
//! ordinals and plurals kept as suffixes. Follows the Python state machine line by line, including its
//! quirks (Python truthiness of 0, Fraction parsing of decimal strings).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::{Captures, Regex};

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i128),
    Str(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Str(s) => s.clone(),
        }
    }
    /// Python's `str(value or "")`: 0 and "" are falsy.
    fn or_empty(v: &Option<Val>) -> String {
        match v {
            None | Some(Val::Int(0)) => String::new(),
            Some(v) => v.text(),
        }
    }
}

/// `Fraction(s)` for digit strings with an optional decimal part: (numerator, denominator).
fn fraction(s: &str) -> Option<(i128, i128)> {
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let den = 10i128.checked_pow(frac.len() as u32)?;
    let num: i128 = format!("{int}{frac}").parse().ok()?;
    Some((num, den))
}

fn is_numeric(s: &str) -> bool {
    let (a, b) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    !a.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit())
        && b.is_none_or(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
}

struct Tables {
    zeros: Vec<&'static str>,
    ones: HashMap<String, i128>,
    ones_suffixed: HashMap<String, (i128, &'static str)>,
    tens: HashMap<String, i128>,
    tens_suffixed: HashMap<String, (i128, &'static str)>,
    multipliers: HashMap<String, i128>,
    multipliers_suffixed: HashMap<String, (i128, &'static str)>,
    preceding_prefixers: HashMap<&'static str, &'static str>,
    following_prefixers: HashMap<&'static str, &'static str>,
    prefixes: Vec<char>,
    specials: Vec<&'static str>,
    words: std::collections::HashSet<String>,
}

const ONES: [&str; 19] = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [(&str, i128); 8] = [
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];
const MULTIPLIERS: [(&str, u32); 12] = [
    ("hundred", 2),
    ("thousand", 3),
    ("million", 6),
    ("billion", 9),
    ("trillion", 12),
    ("quadrillion", 15),
    ("quintillion", 18),
    ("sextillion", 21),
    ("septillion", 24),
    ("octillion", 27),
    ("nonillion", 30),
    ("decillion", 33),
];

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let ones: HashMap<String, i128> = ONES
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as i128 + 1))
            .collect();
        let mut ones_suffixed: HashMap<String, (i128, &'static str)> = ones
            .iter()
            .map(|(n, &v)| {
                (
                    if n == "six" {
                        "sixes".into()
                    } else {
                        format!("{n}s")
                    },
                    (v, "s"),
                )
            })
            .collect();
        for (n, v, s) in [
            ("zeroth", 0, "th"),
            ("first", 1, "st"),
            ("second", 2, "nd"),
            ("third", 3, "rd"),
            ("fifth", 5, "th"),
            ("twelfth", 12, "th"),
        ] {
            ones_suffixed.insert(n.into(), (v, s));
        }
        for (n, &v) in &ones {
            if v > 3 && v != 5 && v != 12 {
                let name = format!("{n}{}", if n.ends_with('t') { "h" } else { "th" });
                ones_suffixed.insert(name, (v, "th"));
            }
        }
        let tens: HashMap<String, i128> = TENS.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let mut tens_suffixed = HashMap::new();
        for (n, v) in TENS {
            tens_suffixed.insert(n.replace('y', "ies"), (v, "s"));
            tens_suffixed.insert(n.replace('y', "ieth"), (v, "th"));
        }
        let multipliers: HashMap<String, i128> = MULTIPLIERS
            .iter()
            .map(|(n, e)| (n.to_string(), 10i128.pow(*e)))
            .collect();
        let mut multipliers_suffixed = HashMap::new();
        for (n, e) in MULTIPLIERS {
            multipliers_suffixed.insert(format!("{n}s"), (10i128.pow(e), "s"));
            multipliers_suffixed.insert(format!("{n}th"), (10i128.pow(e), "th"));
        }
        let preceding_prefixers: HashMap<_, _> = [
            ("minus", "-"),
            ("negative", "-"),
            ("plus", "+"),
            ("positive", "+"),
        ]
        .into_iter()
        .collect();
        let following_prefixers: HashMap<_, _> = [
            ("pound", "£"),
            ("pounds", "£"),
            ("euro", "€"),
            ("euros", "€"),
            ("dollar", "$"),
            ("dollars", "$"),
            ("cent", "¢"),
            ("cents", "¢"),
        ]
        .into_iter()
        .collect();
        let zeros = vec!["o", "oh", "zero"];
        let specials = vec!["and", "double", "triple", "point"];
        let mut words = std::collections::HashSet::new();
        words.extend(zeros.iter().map(|s| s.to_string()));
        words.extend(ones.keys().cloned());
        words.extend(ones_suffixed.keys().cloned());
        words.extend(tens.keys().cloned());
        words.extend(tens_suffixed.keys().cloned());
        words.extend(multipliers.keys().cloned());
        words.extend(multipliers_suffixed.keys().cloned());
        words.extend(preceding_prefixers.keys().map(|s| s.to_string()));
        words.extend(following_prefixers.keys().map(|s| s.to_string()));
        words.extend(["per", "percent"].map(String::from));
        words.extend(specials.iter().map(|s| s.to_string()));
        Tables {
            zeros,
            ones,
            ones_suffixed,
            tens,
            tens_suffixed,
            multipliers,
            multipliers_suffixed,
            preceding_prefixers,
            following_prefixers,
            prefixes: vec!['-', '+', '£', '€', '$', '¢'],
            specials,
            words,
        }
    })
}

struct State {
    prefix: Option<String>,
    value: Option<Val>,
    out: Vec<String>,
}

impl State {
    fn output(&mut self, result: String) {
        let r = match self.prefix.take() {
            Some(p) => p + &result,
            None => result,
        };
        self.value = None;
        self.out.push(r);
    }
    fn flush(&mut self) {
        if let Some(v) = self.value.clone() {
            self.output(v.text());
        }
    }
}

fn process_words(words: &[&str]) -> Vec<String> {
    let t = tables();
    let mut st = State {
        prefix: None,
        value: None,
        out: Vec::new(),
    };
    let mut skip = false;
    let in_decimals =
        |w: &str| t.ones.contains_key(w) || t.tens.contains_key(w) || t.zeros.contains(&w);
    for i in 0..words.len() {
        if skip {
            skip = false;
            continue;
        }
        let prev = if i > 0 { Some(words[i - 1]) } else { None };
        let current = words[i];
        let next = words.get(i + 1).copied();
        let next_is_numeric = next.is_some_and(is_numeric);
        let next_in_words = next.is_some_and(|n| t.words.contains(n));
        let prev_in = |m: &HashMap<String, i128>| prev.is_some_and(|p| m.contains_key(p));
        let first = current.chars().next().unwrap_or(' ');
        let has_prefix = t.prefixes.contains(&first);
        let without_prefix = if has_prefix {
            &current[first.len_utf8()..]
        } else {
            current
        };

        if is_numeric(without_prefix) {
            let (num, den) = match fraction(without_prefix) {
                Some(f) => f,
                None => {
                    // Too large for i128: keep the digits as they are.
                    st.flush();
                    st.output(current.to_string());
                    continue;
                }
            };
            if let Some(v) = &st.value {
                if let Val::Str(s) = v {
                    if s.ends_with('.') {
                        st.value = Some(Val::Str(format!("{s}{current}")));
                        continue;
                    }
                }
                st.flush();
            }
            if has_prefix {
                st.prefix = Some(first.to_string());
            }
            st.value = Some(if num % den == 0 {
                Val::Int(num / den)
            } else {
                Val::Str(without_prefix.to_string())
            });
        } else if !t.words.contains(current) {
            st.flush();
            st.output(current.to_string());
        } else if t.zeros.contains(&current) {
            st.value = Some(Val::Str(Val::or_empty(&st.value) + "0"));
        } else if let Some(&ones) = t.ones.get(current) {
            st.value = Some(match st.value.take() {
                None => Val::Int(ones),
                Some(v) if matches!(v, Val::Str(_)) || prev_in(&t.ones) => {
                    let s = v.text();
                    if prev_in(&t.tens) && ones < 10 {
                        Val::Str(format!("{}{ones}", &s[..s.len() - 1]))
                    } else {
                        Val::Str(format!("{s}{ones}"))
                    }
                }
                Some(Val::Int(v)) if ones < 10 => {
                    if v % 10 == 0 {
                        Val::Int(v + ones)
                    } else {
                        Val::Str(format!("{v}{ones}"))
                    }
                }
                Some(Val::Int(v)) => {
                    if v % 100 == 0 {
                        Val::Int(v + ones)
                    } else {
                        Val::Str(format!("{v}{ones}"))
                    }
                }
                Some(Val::Str(_)) => unreachable!("handled above"),
            });
        } else if let Some(&(ones, suffix)) = t.ones_suffixed.get(current) {
            let text = match st.value.clone() {
                None => format!("{ones}{suffix}"),
                Some(v) if matches!(v, Val::Str(_)) || prev_in(&t.ones) => {
                    let s = v.text();
                    if prev_in(&t.tens) && ones < 10 {
                        format!("{}{ones}{suffix}", &s[..s.len() - 1])
                    } else {
                        format!("{s}{ones}{suffix}")
                    }
                }
                Some(Val::Int(v)) if ones < 10 => {
                    if v % 10 == 0 {
                        format!("{}{suffix}", v + ones)
                    } else {
                        format!("{v}{ones}{suffix}")
                    }
                }
                Some(Val::Int(v)) => {
                    if v % 100 == 0 {
                        format!("{}{suffix}", v + ones)
                    } else {
                        format!("{v}{ones}{suffix}")
                    }
                }
                Some(Val::Str(_)) => unreachable!("handled above"),
            };
            st.output(text);
        } else if let Some(&tens) = t.tens.get(current) {
            st.value = Some(match st.value.take() {
                None => Val::Int(tens),
                Some(Val::Str(s)) => Val::Str(format!("{s}{tens}")),
                Some(Val::Int(v)) => {
                    if v % 100 == 0 {
                        Val::Int(v + tens)
                    } else {
                        Val::Str(format!("{v}{tens}"))
                    }
                }
            });
        } else if let Some(&(tens, suffix)) = t.tens_suffixed.get(current) {
            let text = match st.value.clone() {
                None => format!("{tens}{suffix}"),
                Some(Val::Str(s)) => format!("{s}{tens}{suffix}"),
                Some(Val::Int(v)) => {
                    if v % 100 == 0 {
                        format!("{}{suffix}", v + tens)
                    } else {
                        format!("{v}{tens}{suffix}")
                    }
                }
            };
            st.output(text);
        } else if let Some(&mult) = t.multipliers.get(current) {
            match st.value.clone() {
                None => st.value = Some(Val::Int(mult)),
                Some(v) if matches!(v, Val::Str(_) | Val::Int(0)) => {
                    match fraction(&v.text()).and_then(|(n, d)| n.checked_mul(mult).map(|p| (p, d)))
                    {
                        Some((p, d)) if p % d == 0 => st.value = Some(Val::Int(p / d)),
                        _ => {
                            st.output(v.text());
                            st.value = Some(Val::Int(mult));
                        }
                    }
                }
                Some(Val::Int(v)) => {
                    let before = v.div_euclid(1000) * 1000;
                    let residual = v.rem_euclid(1000);
                    st.value = Some(Val::Int(
                        before.saturating_add(residual.saturating_mul(mult)),
                    ));
                }
                Some(Val::Str(_)) => unreachable!("handled above"),
            }
        } else if let Some(&(mult, suffix)) = t.multipliers_suffixed.get(current) {
            match st.value.clone() {
                None => st.output(format!("{mult}{suffix}")),
                Some(Val::Str(s)) => {
                    match fraction(&s).and_then(|(n, d)| n.checked_mul(mult).map(|p| (p, d))) {
                        Some((p, d)) if p % d == 0 => st.output(format!("{}{suffix}", p / d)),
                        _ => {
                            st.output(s);
                            st.output(format!("{mult}{suffix}"));
                        }
                    }
                }
                Some(Val::Int(v)) => {
                    let before = v.div_euclid(1000) * 1000;
                    let residual = v.rem_euclid(1000);
                    let value = before.saturating_add(residual.saturating_mul(mult));
                    st.output(format!("{value}{suffix}"));
                }
            }
            st.value = None;
        } else if let Some(&p) = t.preceding_prefixers.get(current) {
            st.flush();
            if next_in_words || next_is_numeric {
                st.prefix = Some(p.to_string());
            } else {
                st.output(current.to_string());
            }
        } else if let Some(&p) = t.following_prefixers.get(current) {
            if let Some(v) = st.value.clone() {
                st.prefix = Some(p.to_string());
                st.output(v.text());
            } else {
                st.output(current.to_string());
            }
        } else if current == "per" || current == "percent" {
            if let Some(v) = st.value.clone() {
                if current == "per" {
                    if next == Some("cent") {
                        st.output(format!("{}%", v.text()));
                        skip = true;
                    } else {
                        st.output(v.text());
                        st.output(current.to_string());
                    }
                } else {
                    st.output(format!("{}%", v.text()));
                }
            } else {
                st.output(current.to_string());
            }
        } else if t.specials.contains(&current) {
            if !next_in_words && !next_is_numeric {
                st.flush();
                st.output(current.to_string());
            } else if current == "and" {
                let prev_is_multiplier = prev.is_some_and(|p| t.multipliers.contains_key(p));
                if !prev_is_multiplier {
                    st.flush();
                    st.output(current.to_string());
                }
            } else if current == "double" || current == "triple" {
                let n = next.unwrap_or("");
                if t.ones.contains_key(n) || t.zeros.contains(&n) {
                    let repeats = if current == "double" { 2 } else { 3 };
                    let ones = t.ones.get(n).copied().unwrap_or(0);
                    st.value = Some(Val::Str(
                        Val::or_empty(&st.value) + &ones.to_string().repeat(repeats),
                    ));
                    skip = true;
                } else {
                    st.flush();
                    st.output(current.to_string());
                }
            } else if current == "point" && (next.is_some_and(in_decimals) || next_is_numeric) {
                st.value = Some(Val::Str(Val::or_empty(&st.value) + "."));
            }
        }
    }
    st.flush();
    st.out
}

struct Patterns {
    half: Regex,
    letter_digit: Regex,
    digit_letter: Regex,
    suffix_space: Regex,
    cents: Regex,
    only_cents: Regex,
    ones: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("number pattern");
        Patterns {
            half: re(r"\band\s+a\s+half\b"),
            letter_digit: re(r"([a-z])([0-9])"),
            digit_letter: re(r"([0-9])([a-z])"),
            suffix_space: re(r"([0-9])\s+(st|nd|rd|th|s)\b"),
            cents: re(r"([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})\b"),
            only_cents: re(r"[€£$]0.([0-9]{1,2})\b"),
            ones: re(r"\b1(s?)\b"),
        }
    })
}

fn preprocess(s: &str) -> String {
    let p = patterns();
    let t = tables();
    let segments: Vec<&str> = p.half.split(s).collect();
    let mut results: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if segment.trim().is_empty() {
            continue;
        }
        results.push(segment);
        if i != segments.len() - 1 {
            let last = segment.split_whitespace().last().unwrap_or("");
            let decimal =
                t.ones.contains_key(last) || t.tens.contains_key(last) || t.zeros.contains(&last);
            if decimal || t.multipliers.contains_key(last) {
                results.push("point five");
            } else {
                results.push("and a half");
            }
        }
    }
    let s = results.join(" ");
    let s = p.letter_digit.replace_all(&s, "${1} ${2}");
    let s = p.digit_letter.replace_all(&s, "${1} ${2}");
    p.suffix_space.replace_all(&s, "${1}${2}").into_owned()
}

fn postprocess(s: &str) -> String {
    let p = patterns();
    let s = p
        .cents
        .replace_all(s, |c: &Captures| match c[3].parse::<u32>() {
            Ok(cents) => format!("{}{}.{cents:02}", &c[1], &c[2]),
            Err(_) => c[0].to_string(),
        });
    let s = p
        .only_cents
        .replace_all(&s, |c: &Captures| match c[1].parse::<u32>() {
            Ok(cents) => format!("¢{cents}"),
            Err(_) => c[0].to_string(),
        });
    p.ones.replace_all(&s, "one${1}").into_owned()
}

/// `EnglishNumberNormalizer()(s)`.
pub fn normalize_numbers(s: &str) -> String {
    let s = preprocess(s);
    let words: Vec<&str> = s.split_whitespace().collect();
    postprocess(&process_words(&words).join(" "))
}

#[cfg(test)]
mod tests {
    use super::normalize_numbers as n;

    #[test]
    fn hand_checked_number_rules() {
        assert_eq!(n("one oh one"), "101");
        assert_eq!(n("twenty one"), "21");
        assert_eq!(n("nineteen eighty four"), "1984");
        assert_eq!(n("two thousand and twenty"), "2020");
        assert_eq!(n("the twenty first century"), "the 21st century");
        assert_eq!(n("three and a half"), "3.5");
        assert_eq!(n("minus five"), "-5");
        assert_eq!(n("double seven"), "77");
        assert_eq!(n("one"), "one");
        assert_eq!(n("ones and twos"), "ones and 2s");
        assert_eq!(n("five dollars and ten cents"), "$5.10");
        assert_eq!(n("fifty per cent"), "50%");
    }
}
