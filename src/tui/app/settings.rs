//! Measurement settings the TUI may change.

/// Measurement settings the UI may change; each change is recorded in saved reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub threads: usize,
    pub warmup: usize,
    pub runs: usize,
    pub e2e_passes: usize,
}

impl Settings {
    pub const FIELDS: [&'static str; 4] = ["threads", "warm-up runs", "measured runs", "passes"];

    pub fn get(&self, field: usize) -> usize {
        [self.threads, self.warmup, self.runs, self.e2e_passes][field]
    }

    pub(super) fn adjust(&mut self, field: usize, delta: isize) {
        let (value, min) = match field {
            0 => (&mut self.threads, 1),
            1 => (&mut self.warmup, 0),
            2 => (&mut self.runs, 1),
            _ => (&mut self.e2e_passes, 1),
        };
        *value = value.saturating_add_signed(delta).clamp(min, 1000);
    }

    /// "threads 2 → 1" for every field that differs from `from`.
    pub fn changes_from(&self, from: &Settings) -> Vec<String> {
        (0..Self::FIELDS.len())
            .filter(|&f| self.get(f) != from.get(f))
            .map(|f| format!("{} {} → {}", Self::FIELDS[f], from.get(f), self.get(f)))
            .collect()
    }
}
