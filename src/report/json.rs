use super::Exporter;
use crate::results::ExperimentResult;

pub struct Json;

impl Exporter for Json {
    fn extension(&self) -> &'static str {
        "json"
    }
    fn render(&self, result: &ExperimentResult) -> String {
        serde_json::to_string_pretty(result).expect("results serialise") + "\n"
    }
}
