//! Caption scores: exact match and token-level F1 (SQuAD's), each the best over the references, after
//! lower-casing and dropping punctuation.

fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn exact_match(caption: &str, references: &[String]) -> bool {
    let c = tokens(caption);
    references.iter().any(|r| tokens(r) == c)
}

/// Harmonic mean of token precision and recall (tokens counted with multiplicity), best reference.
pub fn token_f1(caption: &str, references: &[String]) -> f64 {
    let c = tokens(caption);
    references
        .iter()
        .map(|r| {
            let r = tokens(r);
            let mut left = r.clone();
            let mut common = 0usize;
            for t in &c {
                if let Some(i) = left.iter().position(|x| x == t) {
                    left.swap_remove(i);
                    common += 1;
                }
            }
            if common == 0 {
                return 0.0;
            }
            let (p, q) = (
                common as f64 / c.len() as f64,
                common as f64 / r.len() as f64,
            );
            2.0 * p * q / (p + q)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_and_f1() {
        let refs = vec![
            "A red circle.".to_string(),
            "a circle that is red".to_string(),
        ];
        assert!(exact_match("a red circle", &refs));
        assert!(!exact_match("a blue circle", &refs));
        assert_eq!(token_f1("a red circle", &refs), 1.0);
        // "a blue circle" vs "a red circle": 2 of 3 tokens each way.
        assert!((token_f1("a blue circle", &refs) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(token_f1("green", &refs), 0.0);
        // Multiplicity: "red red" shares one "red" with "a red circle": p = 1/2, r = 1/3.
        assert!((token_f1("red red", &refs[..1]) - 0.4).abs() < 1e-12);
        assert_eq!(token_f1("", &refs), 0.0);
    }
}
