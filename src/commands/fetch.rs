use anyhow::Result;

use super::Outcome;
use crate::engine::{Context, Event};

/// `quantbench fetch [NAME...]`: pinned assets into the cache; prints NAME<TAB>DIR.
pub fn run(ctx: &Context, names: &[String], sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let all: Vec<String> = crate::assets::ASSETS
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let names = if names.is_empty() { &all } else { names };
    for n in names {
        let dir = ctx
            .cache
            .ensure(n, &mut |m| sink(Event::Note(m.to_string())))?;
        println!("{n}\t{}", dir.display());
    }
    Ok(Outcome::Done)
}
