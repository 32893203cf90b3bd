//! Image decoding and BLIP preprocessing against Pillow 13 + numpy (tests/fixtures/image_reference.json,
//! made by tools/make_image_fixtures.py): PNG decoding, grey and alpha conversion, and the bicubic resize
//! must match Pillow byte for byte; JPEG decoders differ in their IDCT, so JPEG gets a tolerance.

use std::path::PathBuf;

use quantbench::data::image::{load_rgb, resize_bicubic};
use quantbench::models::blip::preprocess::{pixel_values, ImageConfig};
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mean(bytes: &[u8]) -> f64 {
    bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / bytes.len() as f64
}

#[test]
fn decoding_and_bicubic_resize_match_pillow() {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/image_reference.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let path = case["image"].as_str().unwrap();
        let size = &case["size"];
        let (w, h) = (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        );
        let jpeg = path.ends_with(".jpg");
        let decoded = load_rgb(&repo().join(path)).unwrap();
        let resized = resize_bicubic(&decoded, w, h);
        assert_eq!((resized.width(), resized.height()), (w, h));
        let got = (sha256(decoded.as_raw()), sha256(resized.as_raw()));
        if jpeg {
            let d = (mean(decoded.as_raw()) - case["decoded_mean"].as_f64().unwrap()).abs();
            assert!(d < 0.05, "{path}: decoded mean differs by {d}");
        } else {
            assert_eq!(
                got.0,
                case["decoded_sha256"].as_str().unwrap(),
                "{path}: decoding"
            );
            assert_eq!(
                got.1,
                case["resized_sha256"].as_str().unwrap(),
                "{path} → {w}×{h}"
            );
        }
        let d = (mean(resized.as_raw()) - case["resized_mean"].as_f64().unwrap()).abs();
        assert!(
            d < if jpeg { 0.05 } else { 1e-9 },
            "{path}: resized mean off by {d}"
        );
        for s in case["samples"].as_array().unwrap() {
            let (x, y) = (s[0].as_u64().unwrap() as u32, s[1].as_u64().unwrap() as u32);
            let want: Vec<i64> = s[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let got = resized.get_pixel(x, y).0;
            for c in 0..3 {
                let diff = (i64::from(got[c]) - want[c]).abs();
                assert!(
                    diff <= i64::from(jpeg) * 3,
                    "{path} ({x},{y}) channel {c}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn pixel_values_match_blip_image_processor() {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/image_reference.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let config = ImageConfig::default();
    let mut checked = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let path = case["image"].as_str().unwrap();
        if case["size"][0] != 384 || path.ends_with(".jpg") {
            continue;
        }
        let values = pixel_values(&load_rgb(&repo().join(path)).unwrap(), &config);
        assert_eq!(values.shape(), &[1, 3, 384, 384]);
        for p in case["pixel_values"].as_array().unwrap() {
            let idx = |i: usize| p[i].as_u64().unwrap() as usize;
            let want = p[3].as_f64().unwrap() as f32;
            let got = values[[0, idx(0), idx(1), idx(2)]];
            assert!((got - want).abs() <= 1e-6, "{path} {p}: {got} vs {want}");
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 24);
}

#[test]
fn bad_images_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "this is not a picture").unwrap();
    let e = load_rgb(&text).unwrap_err().to_string();
    assert!(e.contains("notes.png") && e.contains("not an image"), "{e}");
    let truncated = dir.path().join("half.jpg");
    let full = std::fs::read(repo().join("datasets/images/rocket.jpg")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let e = load_rgb(&truncated).unwrap_err().to_string();
    assert!(e.contains("half.jpg") && e.contains("truncated"), "{e}");
    let png = std::fs::read(repo().join("datasets/images/camera.png")).unwrap();
    let cut = dir.path().join("cut.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    let e = load_rgb(&cut).unwrap_err().to_string();
    assert!(
        e.contains("cut.png") && e.contains("corrupt or truncated"),
        "{e}"
    );
    let missing = load_rgb(&dir.path().join("nope.png"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("nope.png") && missing.contains("cannot read"),
        "{missing}"
    );
}
