//! The BLIP pipeline on a synthetic three-graph model whose decoder's next token is a known function of
//! what it is given: (cache length + 1 + context length) mod vocabulary. Greedy decoding through the real
//! ONNX Runtime then shows the cache is fed back (its length grows by one per step), the decoder attends
//! to the image when captioning and to the encoded question when answering, and decoding stops at [SEP]
//! or at `max_length`. The folder checks name what is missing.

mod common;

use std::path::Path;

use quantbench::models::blip::{tokenizer, BlipConfig, BlipModel, BlipPipeline};
use quantbench::onnx::proto::tensor_proto::DataType;
use quantbench::onnx::{attr, write_model, Dim, GraphBuilder};

const VOCAB: i64 = 40;
const SEP: i64 = 3;
const DEC: i64 = 4;
/// Image size in the synthetic blip.json: 8×8, so 3·8·8 = 192 values = 48 image tokens of width 4.
const IMAGE_TOKENS: i64 = 48;

fn words() -> Vec<String> {
    (0..VOCAB - 5).map(|i| format!("w{i}")).collect()
}

fn vision(dir: &Path) {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "pixel_values",
        DataType::Float,
        &[Dim::Named("b"), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)],
    );
    let shape = g.i64_const(&[1, IMAGE_TOKENS, 4]);
    g.op_into("Reshape", &[&x, &shape], vec![], &["last_hidden_state"]);
    g.output(
        "last_hidden_state",
        DataType::Float,
        &[Dim::Named("b"), Dim::Named("n"), Dim::Fixed(4)],
    );
    write_model(&g.finish("vision", 17), &dir.join("vision_model.onnx")).unwrap();
}

fn text_inputs(g: &mut GraphBuilder) -> (String, String) {
    let ids = g.input(
        "input_ids",
        DataType::Int64,
        &[Dim::Named("b"), Dim::Named("t")],
    );
    g.input(
        "attention_mask",
        DataType::Int64,
        &[Dim::Named("b"), Dim::Named("t")],
    );
    let ctx = g.input(
        "encoder_hidden_states",
        DataType::Float,
        &[Dim::Named("b"), Dim::Named("s"), Dim::Fixed(4)],
    );
    g.input(
        "encoder_attention_mask",
        DataType::Int64,
        &[Dim::Named("b"), Dim::Named("s")],
    );
    (ids, ctx)
}

/// last_hidden_state = the question ids as floats, [1, t, 4]: its length is the question's.
fn text_encoder(dir: &Path) {
    let mut g = GraphBuilder::new();
    let (ids, _) = text_inputs(&mut g);
    let f = g.op(
        "Cast",
        &[&ids],
        vec![attr::int("to", DataType::Float as i64)],
    );
    let axis = g.i64_const(&[2]);
    let f = g.op("Unsqueeze", &[&f, &axis], vec![]);
    let ones = g.f32_init("ones", &[4], &[1.0; 4]);
    g.op_into("Mul", &[&f, &ones], vec![], &["last_hidden_state"]);
    g.output(
        "last_hidden_state",
        DataType::Float,
        &[Dim::Named("b"), Dim::Named("t"), Dim::Fixed(4)],
    );
    write_model(
        &g.finish("text_encoder", 17),
        &dir.join("text_encoder.onnx"),
    )
    .unwrap();
}

fn decoder(dir: &Path, cache_names: (&str, &str)) {
    let mut g = GraphBuilder::new();
    let (ids, ctx) = text_inputs(&mut g);
    let kv = [
        Dim::Named("b"),
        Dim::Fixed(1),
        Dim::Named("past"),
        Dim::Fixed(4),
    ];
    let step = g.op(
        "Cast",
        &[&ids],
        vec![attr::int("to", DataType::Float as i64)],
    );
    let shape = g.i64_const(&[1, 1, 1, 1]);
    let step = g.op("Reshape", &[&step, &shape], vec![]);
    let wide = g.i64_const(&[1, 1, 1, 4]);
    let step = g.op("Expand", &[&step, &wide], vec![]);
    let mut past_len = String::new();
    for kind in ["key", "value"] {
        let past = g.input(&format!("{}0.{kind}", cache_names.0), DataType::Float, &kv);
        if past_len.is_empty() {
            let s = g.op("Shape", &[&past], vec![]);
            let two = g.i64_const(&[2]);
            past_len = g.op("Gather", &[&s, &two], vec![]);
        }
        let present = format!("{}0.{kind}", cache_names.1);
        g.op_into(
            "Concat",
            &[&past, &step],
            vec![attr::int("axis", 2)],
            &[&present],
        );
        g.output(&present, DataType::Float, &kv);
    }
    let s = g.op("Shape", &[&ctx], vec![]);
    let one = g.i64_const(&[1]);
    let ctx_len = g.op("Gather", &[&s, &one], vec![]);
    let next = g.op("Add", &[&past_len, &ctx_len], vec![]);
    let next = g.op("Add", &[&next, &one], vec![]);
    let vocab = g.i64_const(&[VOCAB]);
    let next = g.op("Mod", &[&next, &vocab], vec![]);
    let values = g.f32_init("onehot_values", &[2], &[0.0, 1.0]);
    let hot = g.op("OneHot", &[&next, &vocab, &values], vec![]);
    let shape = g.i64_const(&[1, 1, VOCAB]);
    g.op_into("Reshape", &[&hot, &shape], vec![], &["logits"]);
    g.output(
        "logits",
        DataType::Float,
        &[Dim::Named("b"), Dim::Fixed(1), Dim::Fixed(VOCAB)],
    );
    write_model(
        &g.finish("decoder", 17),
        &dir.join("text_decoder_with_past.onnx"),
    )
    .unwrap();
}

fn folder(dir: &Path, max_length: usize, max_question_tokens: usize) {
    vision(dir);
    text_encoder(dir);
    decoder(dir, ("past_key_values.", "present."));
    let words = words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    tokenizer::save(
        &tokenizer::wordpiece(&words).unwrap(),
        &dir.join("tokenizer.json"),
    )
    .unwrap();
    let config = BlipConfig {
        image_size: 8,
        bos_token_id: DEC,
        sep_token_id: SEP,
        max_length,
        max_question_tokens,
        ..Default::default()
    };
    std::fs::write(
        dir.join("blip.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// What greedy decoding must produce: [DEC], then (k + 1 + context) mod V for k = 0, 1, … until [SEP].
fn expected(context: i64, max_length: usize) -> Vec<i64> {
    let mut t = vec![DEC];
    for k in 0.. {
        if t.len() >= max_length {
            break;
        }
        let next = (k + 1 + context) % VOCAB;
        t.push(next);
        if next == SEP {
            break;
        }
    }
    t
}

fn open(dir: &Path) -> BlipPipeline {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    BlipPipeline::new(BlipModel::open(dir, 1).unwrap())
}

#[test]
fn greedy_decoding_feeds_the_cache_and_stops_at_sep_or_max_length() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 20, 512);
    let mut p = open(dir.path());
    let image = image::RgbImage::from_pixel(30, 20, image::Rgb([10, 200, 30]));

    // Caption: the context is the 48 image tokens: 49 % 40 = 9, 10, …, 39, 0, 1, 2 → 19 tokens after [DEC].
    let c = p.caption(&image).unwrap();
    assert_eq!(c.tokens, expected(IMAGE_TOKENS, 20));
    assert_eq!(c.tokens.len(), 20, "stopped by max_length");
    assert!(c.text.starts_with("w4 w5 w6"), "{}", c.text);

    // Answer: the context is the question's 5 tokens ([CLS] w1 w2 w3 [SEP]): 6, 7, …, 39, 0, 1, 2, 3 = [SEP].
    let a = p.answer(&image, "w1 w2 w3").unwrap();
    assert_eq!(a.tokens, expected(5, 20)[..a.tokens.len()].to_vec());
    assert_eq!(a.tokens.len(), 20);
    assert!(!a.question_truncated);

    // 33 words + [CLS] [SEP] = 35: 36, 37, 38, 39, 0, 1, 2, 3 → [SEP] after 8 steps.
    let long: Vec<String> = (0..33).map(|i| format!("w{}", i % 30)).collect();
    let a = p.answer(&image, &long.join(" ")).unwrap();
    assert_eq!(a.tokens, expected(35, 20));
    assert_eq!(*a.tokens.last().unwrap(), SEP, "stopped at [SEP]");
    assert_eq!(a.text, "w31 w32 w33 w34", "special tokens are not words");
}

#[test]
fn long_questions_are_cut_and_say_so_and_empty_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 20, 8);
    let mut p = open(dir.path());
    let image = image::RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 0]));
    let a = p.answer(&image, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10").unwrap();
    assert!(a.question_truncated);
    assert_eq!(a.tokens[1], (8 + 1) % VOCAB, "the encoder saw 8 tokens");
    let e = p.answer(&image, "   ").unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

/// Why the folder does not open.
fn refusal(dir: &Path) -> String {
    BlipModel::open(dir, 1).err().unwrap().to_string()
}

#[test]
fn folders_missing_parts_or_names_are_refused_with_a_list() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 20, 512);
    std::fs::remove_file(dir.path().join("text_encoder.onnx")).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = refusal(dir.path());
    assert!(
        e.contains("missing text_encoder.onnx, tokenizer.json"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 20, 512);
    decoder(dir.path(), ("past.", "present."));
    let e = refusal(dir.path());
    assert!(
        e.contains("text_decoder_with_past.onnx") && e.contains("past.0.key"),
        "{e}"
    );
    decoder(dir.path(), ("past_key_values.", "present_kv."));
    let e = refusal(dir.path());
    assert!(
        e.contains("cache output present.0.key, present.0.value missing"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 20, 512);
    std::fs::write(
        dir.path().join("blip.json"),
        r#"{"image_size": 8, "bogus": 1}"#,
    )
    .unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("blip.json") && e.contains("bogus"), "{e}");
}

/// Runs the binary; it must succeed. Returns its stdout.
fn quantbench(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn caption_and_vqa_commands_print_what_the_pipeline_generates() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 6, 512);
    let model = dir.path().display().to_string();
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/images/chelsea.png");
    let run = |args: &[&str]| quantbench(args);
    // 48 image tokens: 49 % 40 = 9 → w4, then w5 … (5 tokens after [DEC] with max_length 6).
    let caption = run(&["caption", "--model", &model, image]);
    assert_eq!(caption, format!("{image}\tw4 w5 w6 w7 w8\n"));
    // "w1 w2" + [CLS] [SEP] = 4 tokens: 5 → w0.
    let answer = run(&["vqa", "--model", &model, image, "w1 w2"]);
    assert_eq!(answer, "w0 w1 w2 w3 w4\n");
}

#[test]
fn eval_scores_vqa_and_caption_manifests() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 6, 512);
    let model = dir.path().display().to_string();
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/images/chelsea.png");
    let line = |v: serde_json::Value| v.to_string() + "\n";
    let answer = "w0 w1 w2 w3 w4"; // what the synthetic model answers to "w1 w2"
    let mut ten = vec!["x".to_string(); 7];
    ten.extend(vec![answer.to_string(); 3]);
    let vqa = dir.path().join("vqa.jsonl");
    std::fs::write(
        &vqa,
        line(serde_json::json!({"image": image, "question": "w1 w2", "answers": [answer], "answer_type": "shape"}))
            + &line(serde_json::json!({"image": image, "question": "w1 w2", "answers": ["nope"], "answer_type": "colour"}))
            + &line(serde_json::json!({"image": image, "question": "w1 w2", "answers": ten, "answer_type": "yes/no"})),
    )
    .unwrap();
    let captions = dir.path().join("captions.jsonl");
    std::fs::write(
        &captions,
        line(serde_json::json!({"image": image, "captions": ["W4 w5 w6 w7 w8."]}))
            + &line(serde_json::json!({"image": image, "captions": ["w4 w5 x"]})),
    )
    .unwrap();
    let run = |manifest: &Path| -> serde_json::Value {
        let json = dir.path().join("out.json");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
            .args(["eval", "--model", &model, "--manifest"])
            .arg(manifest)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
    };
    let r = run(&vqa);
    // 1, 0 and (3 · 2/3 + 7 · 1) / 10 = 0.9 for the ten annotators.
    let acc = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((acc(&r["accuracy"]) - 1.9 / 3.0).abs() < 1e-9, "{r}");
    assert_eq!(acc(&r["accuracy_by_type"]["shape"]), 1.0);
    assert_eq!(acc(&r["accuracy_by_type"]["colour"]), 0.0);
    assert!((acc(&r["accuracy_by_type"]["yes/no"]) - 0.9).abs() < 1e-9);
    assert_eq!(r["items"][0]["answer"], answer);
    assert_eq!(r["items"][0]["correct"], true);
    assert_eq!(r["items"][2]["correct"], false);

    let r = run(&captions);
    // Exact on the first (case and punctuation aside); F1 on the second: p = 2/5, r = 2/3 → 0.5.
    assert_eq!(acc(&r["exact_match"]), 0.5);
    assert!((acc(&r["token_f1"]) - 0.75).abs() < 1e-9, "{r}");
    assert_eq!(r["n"], 2);
}
