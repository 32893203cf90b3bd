//! Whisper's special tokens, looked up by name in tokenizer.json (ids differ between English-only and
//! multilingual vocabularies).

/// Vocabularies this large or larger belong to multilingual models.
const MULTILINGUAL_VOCAB: usize = 51_865;

#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub eot: i64,
    pub sot: i64,
    pub no_timestamps: i64,
    /// `<|startofprev|>`: opens the previous window's text in a long-form prompt.
    pub sot_prev: Option<i64>,
    /// `<|nospeech|>`, or `<|nocaptions|>` in older vocabularies: its probability at the
    /// `<|startoftranscript|>` position says whether a window holds speech.
    pub no_speech: Option<i64>,
    pub multilingual: bool,
    pub english: Option<i64>,
    pub transcribe: Option<i64>,
    pub translate: Option<i64>,
    /// A multilingual model's language tokens (`<|en|>` … between `<|startoftranscript|>` and
    /// `<|translate|>`), by code; empty for English-only models.
    pub languages: Vec<(String, i64)>,
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
            sot_prev: id("<|startofprev|>"),
            no_speech: id("<|nospeech|>").or_else(|| id("<|nocaptions|>")),
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
            translate: if multilingual {
                Some(need("<|translate|>")?)
            } else {
                None
            },
            languages: if multilingual {
                let translate = need("<|translate|>")?;
                (sot + 1..translate)
                    .filter_map(|i| {
                        let t = tok.id_to_token(i as u32)?;
                        let code = t.strip_prefix("<|")?.strip_suffix("|>")?;
                        Some((code.to_string(), i))
                    })
                    .collect()
            } else {
                Vec::new()
            },
            always_suppressed,
        })
    }

    /// English transcription without timestamps.
    pub fn prompt(&self) -> Vec<i64> {
        let mut p = self.english_sequence();
        p.push(self.no_timestamps);
        p
    }

    /// The first token of the timestamps (`<|0.00|>`); every id from here to the vocabulary's end is one.
    pub fn timestamp_begin(&self) -> i64 {
        self.no_timestamps + 1
    }

    fn english_sequence(&self) -> Vec<i64> {
        let mut p = vec![self.sot];
        if let (Some(en), Some(tr)) = (self.english, self.transcribe) {
            p.extend([en, tr]);
        }
        p
    }

    /// The prompt for `language` (a code such as `de`) and `task`, without timestamps. An English-only
    /// model takes only English transcription.
    pub fn prompt_for(&self, language: &str, task: Task) -> Result<Vec<i64>, String> {
        let mut p = self.sot_sequence(language, task)?;
        p.push(self.no_timestamps);
        Ok(p)
    }

    /// `<|startoftranscript|>` with the language and task tokens (multilingual models), as long-form
    /// decoding starts each window with timestamps on.
    pub fn sot_sequence(&self, language: &str, task: Task) -> Result<Vec<i64>, String> {
        if !self.multilingual {
            if task == Task::Translate {
                return Err(
                    "this is an English-only model: it cannot translate (--task translate needs a multilingual model such as whisper-base)"
                        .into(),
                );
            }
            if language != "en" {
                return Err(format!(
                    "this is an English-only model: it cannot transcribe language `{language}` (use a multilingual model such as whisper-base)"
                ));
            }
            return Ok(self.english_sequence());
        }
        let lang = self.language(language).ok_or_else(|| {
            let codes: Vec<&str> = self.languages.iter().map(|(c, _)| c.as_str()).collect();
            format!(
                "`{language}` is not a language this model knows ({})",
                codes.join(", ")
            )
        })?;
        let task_token = match task {
            Task::Transcribe => self.transcribe,
            Task::Translate => self.translate,
        }
        .ok_or("the tokenizer has no task tokens")?;
        Ok(vec![self.sot, lang, task_token])
    }

    pub fn language(&self, code: &str) -> Option<i64> {
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
    }
}

/// What the decoder is asked for: text in the spoken language, or its English translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Transcribe,
    Translate,
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "transcribe" => Ok(Task::Transcribe),
            "translate" => Ok(Task::Translate),
            other => Err(format!("unknown task `{other}` (transcribe or translate)")),
        }
    }
}
