//! easy-VQA (PyPI `easy-vqa` 1.0, MIT; 64×64 images of one coloured shape) as a VQA manifest and a caption
//! manifest. The pinned wheel is read as a zip and a split is written once into the cache:
//! `images/N.png`, `vqa.jsonl` (one answer per question, with its type) and `captions.jsonl` ("a red
//! circle": colour and shape taken from the dataset's own answers about that image).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::assets::Cache;

pub const SHAPES: [&str; 3] = ["circle", "rectangle", "triangle"];
pub const COLOURS: [&str; 8] = [
    "red", "green", "blue", "black", "gray", "teal", "brown", "yellow",
];
const WHEEL_FILE: &str = "easy_vqa-1.0-py3-none-any.whl";
/// Bumped when what `prepare` writes changes.
const LAYOUT: u32 = 2;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct EasyVqaError {
    pub path: PathBuf,
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// "yes/no", "shape" or "colour".
pub fn answer_type(answer: &str) -> &'static str {
    match answer {
        "yes" | "no" => "yes/no",
        a if SHAPES.contains(&a) => "shape",
        _ => "colour",
    }
}

fn mentioned<'a>(words: &[&'a str], question: &str) -> Option<&'a str> {
    question
        .split(|c: char| !c.is_alphanumeric())
        .find_map(|w| words.iter().find(|x| **x == w).copied())
}

/// The one word of `words` not ruled out, if exactly one is left.
fn last_standing<'a>(words: &[&'a str], absent: &[&str]) -> Option<&'a str> {
    let mut left = words.iter().filter(|w| !absent.contains(w));
    match (left.next(), left.next()) {
        (Some(w), None) => Some(*w),
        _ => None,
    }
}

/// "a COLOUR SHAPE" from the questions about one image and their answers, when they tell both (directly,
/// or by ruling out every other colour or shape).
pub fn caption(questions: &[(String, String)]) -> Option<String> {
    let (mut colour, mut shape) = (None, None);
    let mut absent: Vec<&str> = Vec::new();
    for (q, a) in questions {
        let a = a.as_str();
        if SHAPES.contains(&a) {
            shape = Some(a);
            colour = colour.or(mentioned(&COLOURS, q)); // "what is the red shape?"
        } else if COLOURS.contains(&a) {
            colour = Some(a);
            shape = shape.or(mentioned(&SHAPES, q)); // "what color is the triangle?"
        } else {
            // "is there a red shape?" yes / "is there not a circle?" no: the thing named is there.
            let negated = q.contains(" not ") || q.starts_with("is no ");
            let named = [mentioned(&COLOURS, q), mentioned(&SHAPES, q)];
            if (a == "yes") != negated {
                colour = colour.or(named[0]);
                shape = shape.or(named[1]);
            } else {
                absent.extend(named.into_iter().flatten());
            }
        }
    }
    let colour = colour.or_else(|| last_standing(&COLOURS, &absent))?;
    let shape = shape.or_else(|| last_standing(&SHAPES, &absent))?;
    Some(format!("a {colour} {shape}"))
}

/// A split written out as manifests.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PathBuf,
    pub vqa: PathBuf,
    pub captions: PathBuf,
}

/// The split's folder in the cache, written on first use from the pinned wheel.
pub fn prepare(
    cache: &Cache,
    split: Split,
    progress: &mut dyn FnMut(&str),
) -> Result<Prepared, EasyVqaError> {
    let dir = cache
        .root
        .join("datasets")
        .join(format!("easy-vqa-1.0-l{LAYOUT}"))
        .join(split.name());
    let prepared = Prepared {
        vqa: dir.join("vqa.jsonl"),
        captions: dir.join("captions.jsonl"),
        dir: dir.clone(),
    };
    if dir.join(".complete").is_file() {
        return Ok(prepared);
    }
    let wheel = cache
        .ensure("easy-vqa", progress)
        .map_err(|e| err(&cache.root, e.to_string()))?
        .join(WHEEL_FILE);
    progress(&format!(
        "easy-vqa: writing the {} split to {} ...",
        split.name(),
        dir.display()
    ));
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| err(parent, e.to_string()))?;
    let tmp =
        crate::fsutil::work_dir(parent, "easy-vqa").map_err(|e| err(parent, e.to_string()))?;
    write_split(&wheel, split, tmp.path())?;
    let mode = if dir.exists() {
        crate::fsutil::Publish::Replace
    } else {
        crate::fsutil::Publish::IfAbsent
    };
    crate::fsutil::publish_dir(tmp, &dir, mode).map_err(|e| err(&dir, e.to_string()))?;
    Ok(prepared)
}

fn err(path: &Path, what: impl Into<String>) -> EasyVqaError {
    EasyVqaError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn write_split(wheel: &Path, split: Split, out: &Path) -> Result<(), EasyVqaError> {
    let file = std::fs::File::open(wheel).map_err(|e| err(wheel, e.to_string()))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| err(wheel, format!("not a wheel: {e}")))?;
    let member =
        |name: &str, zip: &mut zip::ZipArchive<std::fs::File>| -> Result<Vec<u8>, EasyVqaError> {
            let mut entry = zip
                .by_name(name)
                .map_err(|_| err(wheel, format!("has no member {name}")))?;
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| err(wheel, format!("{name}: {e}")))?;
            Ok(bytes)
        };
    let root = format!("easy_vqa/data/{}", split.name());
    let questions: Vec<(String, String, u64)> =
        serde_json::from_slice(&member(&format!("{root}/questions.json"), &mut zip)?)
            .map_err(|e| err(wheel, format!("{root}/questions.json: {e}")))?;
    let mut by_image: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    let mut vqa = String::new();
    for (q, a, image) in &questions {
        by_image
            .entry(*image)
            .or_default()
            .push((q.clone(), a.clone()));
        let line = serde_json::json!({
            "image": format!("images/{image}.png"),
            "question": q,
            "answers": [a],
            "answer_type": answer_type(a),
        });
        vqa += &format!("{line}\n");
    }
    let images = out.join("images");
    std::fs::create_dir_all(&images).map_err(|e| err(&images, e.to_string()))?;
    let mut captions = String::new();
    for (image, qs) in &by_image {
        let png = member(&format!("{root}/images/{image}.png"), &mut zip)?;
        let path = images.join(format!("{image}.png"));
        std::fs::write(&path, png).map_err(|e| err(&path, e.to_string()))?;
        if let Some(c) = caption(qs) {
            let line = serde_json::json!({"image": format!("images/{image}.png"), "captions": [c]});
            captions += &format!("{line}\n");
        }
    }
    for (name, text) in [
        ("vqa.jsonl", vqa),
        ("captions.jsonl", captions),
        (
            "README.md",
            "easy-VQA 1.0 (PyPI easy-vqa, MIT, Victor Zhou), written by quantbench from the pinned wheel.\n"
                .to_string(),
        ),
        (".complete", String::new()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| err(&path, e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qa(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(q, a)| (q.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn captions_come_from_the_answers_about_the_image() {
        // Image 0 of the test split, as the dataset asks about it.
        let zero = qa(&[
            ("what is the red shape?", "triangle"),
            ("does the image contain a circle?", "no"),
            ("is there not a black shape in the image?", "yes"),
        ]);
        assert_eq!(caption(&zero).as_deref(), Some("a red triangle"));
        let yes_no = qa(&[
            ("is there not a teal shape?", "no"),
            ("does the image contain a rectangle?", "yes"),
            ("is there a blue shape?", "no"),
        ]);
        assert_eq!(caption(&yes_no).as_deref(), Some("a teal rectangle"));
        let colour_only = qa(&[("what color is the shape?", "green")]);
        assert_eq!(caption(&colour_only), None);
        let ruled_out = qa(&[
            ("what color is the shape?", "brown"),
            ("is there a circle?", "no"),
            ("is there not a triangle in the image?", "yes"),
        ]);
        assert_eq!(caption(&ruled_out).as_deref(), Some("a brown rectangle"));
        assert_eq!(answer_type("no"), "yes/no");
        assert_eq!(answer_type("circle"), "shape");
        assert_eq!(answer_type("teal"), "colour");
    }
}
