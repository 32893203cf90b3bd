//! Whisper's special tokens, looked up by name in tokenizer.json (ids differ between English-only and
//! multilingual vocabularies).

/// Vocabularies this large or larger belong to multilingual models.
const MULTILINGUAL_VOCAB: usize = 51_865;

#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub eot: i64,
    pub sot: i64,
    pub no_timestamps: i64,
    pub multilingual: bool,
    pub english: Option<i64>,
    pub transcribe: Option<i64>,
    /// Suppressed at every step: sot, startofprev, startoflm, translate, transcribe, nocaptions/nospeech.
    pub always_suppressed: Vec<i64>,
}

impl SpecialTokens {
    pub fn lookup(tok: &tokenizers::Tokenizer, vocab_size: usize) -> Result<Self, String> {
        let id = |name: &str| tok.token_to_id(name).map(|i| i as i64);
        let need =
            |name: &str| id(name).ok_or_else(|| format!("token {name} not found in the tokenizer"));
        let multilingual = vocab_size >= MULTILINGUAL_VOCAB;
        let sot = need("<|startoftranscript|>")?;
        let always_suppressed = [
            "<|startoftranscript|>",
            "<|startofprev|>",
            "<|startoflm|>",
            "<|translate|>",
            "<|transcribe|>",
            "<|nocaptions|>",
            "<|nospeech|>",
        ]
        .iter()
        .filter_map(|n| id(n))
        .collect();
        Ok(SpecialTokens {
            eot: need("<|endoftext|>")?,
            sot,
            no_timestamps: need("<|notimestamps|>")?,
            multilingual,
            english: if multilingual {
                Some(need("<|en|>")?)
            } else {
                None
            },
            transcribe: if multilingual {
                Some(need("<|transcribe|>")?)
            } else {
                None
            },
            always_suppressed,
        })
    }

    /// English transcription without timestamps.
    pub fn prompt(&self) -> Vec<i64> {
        let mut p = vec![self.sot];
        if let (Some(en), Some(tr)) = (self.english, self.transcribe) {
            p.extend([en, tr]);
        }
        p.push(self.no_timestamps);
        p
    }
}
