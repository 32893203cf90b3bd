//! Writes the seed corpus of every fuzz target into `corpus/<target>/`: small valid inputs the fuzzer
//! mutates (a synthetic CTranslate2 Whisper, tiny graphs, short WAV/FLAC/PNG/JPEG files, manifests and
//! experiment files). Run from `fuzz/`: `cargo run --bin seeds`.
use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use quantbench::models::whisper::{
    ct2::{Ct2Error, Ct2Model},
    export,
};
use quantbench::onnx::proto::tensor_proto::DataType;
use quantbench::onnx::{attr, Dim, GraphBuilder};

fn put(dir: &str, name: &str, bytes: &[u8]) {
    let d = Path::new("corpus").join(dir);
    std::fs::create_dir_all(&d).expect("corpus folder");
    std::fs::write(d.join(name), bytes).expect("seed");
}

fn ct2_bytes(vars: &BTreeMap<String, Vec<usize>>, scalars: &[(&str, i32)]) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&((text.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.push(0);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&6u32.to_le_bytes());
    s(&mut b, "WhisperSpec");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&((vars.len() + scalars.len()) as u32).to_le_bytes());
    for (name, shape) in vars {
        s(&mut b, name);
        b.push(shape.len() as u8);
        for d in shape {
            b.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        b.push(4); // f16
        let n: usize = shape.iter().product();
        b.extend_from_slice(&((n * 2) as u32).to_le_bytes());
        for i in 0..n {
            let v = half::f16::from_f32(((i % 7) as f32 - 3.0) * 0.1);
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (name, v) in scalars {
        s(&mut b, name);
        b.push(0);
        b.push(3); // i32
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

/// A Whisper with d_model 4, one layer each side, grown until the exporter takes it: every variable it
/// asks for is added with the shape it expects.
fn synthetic_ct2() -> Vec<u8> {
    const D: usize = 4;
    let mut vars: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    vars.insert("encoder/conv1/weight".into(), vec![D, 2, 3]);
    vars.insert("decoder/embeddings/weight".into(), vec![6, D]);
    vars.insert("encoder/position_encodings/encodings".into(), vec![2, D]);
    vars.insert("decoder/position_encodings/encodings".into(), vec![3, D]);
    vars.insert("encoder/layer_0/ffn/linear_0/weight".into(), vec![8, D]);
    vars.insert("decoder/layer_0/ffn/linear_0/weight".into(), vec![8, D]);
    let scalars = [("encoder/num_heads", 2), ("decoder/num_heads", 2)];
    for _ in 0..200 {
        let bytes = ct2_bytes(&vars, &scalars);
        let m = Ct2Model::parse(Path::new("model.bin"), &bytes).expect("synthetic model parses");
        let d = export::dims(&m).expect("dims");
        match export::graphs(&m, &d) {
            Ok(_) => return bytes,
            Err(Ct2Error::Missing { name, .. }) => {
                let shape = if name.ends_with("/weight") {
                    vec![D, D]
                } else {
                    vec![D]
                };
                vars.insert(name, shape);
            }
            Err(Ct2Error::Shape { name, expected, .. }) => {
                let shape = if let Some(rows) = expected
                    .strip_prefix("at least ")
                    .and_then(|r| r.strip_suffix(" rows"))
                {
                    vec![rows.parse().expect("row count"), D]
                } else {
                    expected
                        .trim_matches(['[', ']'])
                        .split(", ")
                        .map(|x| match x.parse::<usize>().expect("dim") {
                            0 => D,
                            n => n,
                        })
                        .collect()
                };
                vars.insert(name, shape);
            }
            Err(e) => panic!("synthetic model: {e}"),
        }
    }
    panic!("the synthetic model did not converge")
}

fn graphs() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // MatMul + bias Add, then LayerNorm → MatMul.
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[Dim::Named("batch"), Dim::Fixed(4)]);
    let w = g.f32_init("w", &[4, 3], &[0.5, -1.0, 0.25, 2.0, 0.0, 1.0, -0.5, 0.75, 1.5, 0.1, 0.2, 0.3]);
    let b = g.f32_init("b", &[3], &[0.1, 0.2, 0.3]);
    let h = quantbench::onnx::layers::linear(&mut g, &x, &w, Some(&b));
    let gamma = g.f32_init("gamma", &[3], &[1.0, 1.0, 1.0]);
    let beta = g.f32_init("beta", &[3], &[0.0, 0.0, 0.0]);
    let n = quantbench::onnx::layers::layer_norm(&mut g, &h, &gamma, &beta);
    let w2 = g.f32_init("w2", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = g.op("MatMul", &[&n, &w2], vec![]);
    g.output(&y, DataType::Float, &[Dim::Named("batch"), Dim::Fixed(2)]);
    out.push(("linear", g.finish("seed", 17).encode_to_vec()));
    // Embedding Gather.
    let mut g = GraphBuilder::new();
    let ids = g.input("ids", DataType::Int64, &[Dim::Named("n")]);
    let table = g.f32_init("table", &[5, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let e = g.op("Gather", &[&table, &ids], vec![attr::int("axis", 0)]);
    g.output(&e, DataType::Float, &[Dim::Named("n"), Dim::Fixed(2)]);
    out.push(("gather", g.finish("seed", 17).encode_to_vec()));
    out
}

fn wav(spec: hound::WavSpec, frames: usize) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cursor, spec).expect("wav");
    for i in 0..frames * usize::from(spec.channels) {
        let v = (i as f32 * 0.05).sin() * 0.5;
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, _) => w.write_sample(v).expect("sample"),
            (_, 8) => w.write_sample((v * 127.0) as i8).expect("sample"),
            _ => w.write_sample((v * 32767.0) as i16).expect("sample"),
        }
    }
    w.finalize().expect("wav");
    cursor.into_inner()
}

fn main() {
    put("ct2", "whisper-d4.bin", &synthetic_ct2());
    for (name, bytes) in graphs() {
        put("onnx_quantize", &format!("{name}.onnx"), &bytes);
    }

    let mono = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    put("audio", "mono16.wav", &wav(mono, 400));
    put(
        "audio",
        "float.wav",
        &wav(
            hound::WavSpec {
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
                ..mono
            },
            300,
        ),
    );
    put(
        "audio",
        "stereo8-44k.wav",
        &wav(
            hound::WavSpec {
                channels: 2,
                sample_rate: 44_100,
                bits_per_sample: 8,
                ..mono
            },
            500,
        ),
    );
    let flac = std::fs::read("../datasets/speech-en/librispeech/2412-153948-0000.flac").expect("flac");
    put("audio", "librispeech-head.flac", &flac[..flac.len().min(12_000)]);
    // Every compressed container and codec, as real encoders wrote them (tools/make_audio_fixtures.sh).
    for name in ["clip.mp3", "clip.m4a", "clip.aac", "clip.ogg", "clip-video.mp4", "clip-video.mov", "clip-video.mkv", "clip.opus"] {
        let bytes = std::fs::read(format!("../tests/fixtures/audio/{name}")).expect("audio fixture");
        put("audio", name, &bytes);
    }

    for (name, img) in [
        ("rgb", image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(12, 9, |x, y| image::Rgb([x as u8 * 20, y as u8 * 25, 128])))),
        ("grey", image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(7, 5, |x, y| image::Luma([(x * y) as u8 * 9])))),
    ] {
        for (ext, format) in [("png", image::ImageFormat::Png), ("jpg", image::ImageFormat::Jpeg)] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, format).expect("encode");
            put("image_header", &format!("{name}.{ext}"), bytes.get_ref());
        }
    }
    put("image_header", "rgba.png", &std::fs::read("../tests/fixtures/rgba.png").expect("fixture"));

    put("manifest", "speech.jsonl", b"{\"audio\": \"a.wav\", \"text\": \"hello there\"}\n");
    put("manifest", "vqa.jsonl", b"{\"image\": \"a.png\", \"question\": \"what shape?\", \"answers\": [\"circle\"], \"answer_type\": \"other\"}\n");
    put("manifest", "captions.jsonl", b"{\"image\": \"a.png\", \"captions\": [\"a red circle\", \"a circle\"]}\n");

    put("experiment", "quantbench.toml", &std::fs::read("../quantbench.toml").expect("experiment"));
    put("experiment", "tui.toml", &std::fs::read("../tests/fixtures/tui-experiment.toml").expect("fixture"));

    let blip = serde_json::to_vec(&quantbench::models::blip::BlipConfig::default()).expect("json");
    put("model_config", "blip.json", &[&[0u8][..], &blip].concat());
    let whisper = br#"{"num_mel_bins": 80, "vocab_size": 51864, "d_model": 384, "decoder_attention_heads": 6, "max_target_positions": 448, "suppress_tokens": [1, 2, 7], "begin_suppress_tokens": [220, 50256]}"#;
    put("model_config", "config.json", &[&[1u8][..], &whisper[..]].concat());
    println!("seeds written under corpus/");
}
