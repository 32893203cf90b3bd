//! easy-VQA from its pinned wheel: the splits have the published sizes, load as VQA and caption manifests,
//! and every image decodes as a 64×64 picture.

use quantbench::assets::Cache;
use quantbench::data::easy_vqa::{prepare, Split};
use quantbench::data::image::load_rgb;
use quantbench::data::manifest::{load_captions, load_vqa};

#[test]
fn splits_have_the_published_sizes_and_load_as_manifests() {
    let cache = Cache::new(None, None);
    let test = prepare(&cache, Split::Test, &mut |_| {}).unwrap();
    let questions = load_vqa(&test.vqa).unwrap();
    assert_eq!(questions.len(), 9_673);
    let yes_no = questions
        .iter()
        .filter(|q| q.answer_type.as_deref() == Some("yes/no"))
        .count();
    assert_eq!(yes_no, 7_136, "the dataset's README count");
    assert!(questions.iter().all(|q| q.answers.len() == 1));
    let first = &questions[0];
    assert_eq!(
        (
            first.image_rel.as_str(),
            first.question.as_str(),
            first.answers[0].as_str()
        ),
        ("images/0.png", "what is the red shape?", "triangle")
    );

    let captions = load_captions(&test.captions).unwrap();
    // 112 of the 1,000 test images are never asked enough to tell both their colour and their shape.
    assert_eq!(captions.len(), 888);
    let zero = captions
        .iter()
        .find(|c| c.image_rel == "images/0.png")
        .unwrap();
    assert_eq!(zero.captions, vec!["a red triangle"]);
    for c in &captions {
        let img = load_rgb(&c.image).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (64, 64),
            "{}",
            c.image.display()
        );
    }

    let train = prepare(&cache, Split::Train, &mut |_| {}).unwrap();
    assert_eq!(load_vqa(&train.vqa).unwrap().len(), 38_575);
}
