//! BERT WordPiece tokenizers written as Hugging Face `tokenizer.json` (lower-casing BERT normaliser, BERT
//! pre-tokeniser, `[CLS] $A [SEP]`, WordPiece decoder), so a trained model and a real BLIP load alike.

use std::path::Path;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// The special tokens, in id order at the start of every vocabulary this module writes.
pub const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[DEC]"];

/// A tokenizer over `SPECIAL` followed by `words` (ids in that order).
pub fn wordpiece(words: &[&str]) -> Result<Tokenizer, String> {
    let vocab: serde_json::Map<String, serde_json::Value> = SPECIAL
        .iter()
        .chain(words)
        .enumerate()
        .map(|(i, w)| (w.to_string(), serde_json::Value::from(i)))
        .collect();
    // Through serde: the builder wants the crate's own hash map type.
    let json = serde_json::json!({
        "type": "WordPiece",
        "unk_token": "[UNK]",
        "continuing_subword_prefix": "##",
        "max_input_chars_per_word": 100,
        "vocab": vocab,
    });
    let model: WordPiece = serde_json::from_str(&json.to_string()).map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    let post = TemplateProcessing::builder()
        .try_single("[CLS] $A [SEP]")
        .and_then(|b| b.try_pair("[CLS] $A [SEP] $B:1 [SEP]:1"))
        .map_err(|e| e.to_string())?
        .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
        .build()
        .map_err(|e| e.to_string())?;
    tokenizer.with_post_processor(Some(post));
    let special: Vec<AddedToken> = SPECIAL
        .iter()
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect();
    tokenizer.add_special_tokens(&special);
    Ok(tokenizer)
}

/// Writes `tokenizer` as `path` (pretty JSON, through a temp file).
pub fn save(tokenizer: &Tokenizer, path: &Path) -> Result<(), String> {
    let text = tokenizer.to_string(true).map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_tokenizer_json() {
        let t = wordpiece(&[
            "what", "color", "is", "the", "shape", "?", "red", "circ", "##le",
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        save(&t, &path).unwrap();
        let t = Tokenizer::from_file(&path).unwrap();
        let enc = t.encode("What color is the shape?", true).unwrap();
        assert_eq!(enc.get_ids(), &[2, 5, 6, 7, 8, 9, 10, 3]);
        let enc = t.encode("a Red circle", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            &["[CLS]", "[UNK]", "red", "circ", "##le", "[SEP]"]
        );
        assert_eq!(t.decode(&[11, 12, 13], true).unwrap(), "red circle");
        assert_eq!(
            t.decode(&[4, 11, 3], true).unwrap(),
            "red",
            "special tokens are skipped"
        );
    }
}
