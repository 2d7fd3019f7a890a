//! The fixture photos' recorded top-5 through both strategies, and the calibration of the default
//! minimum confidence on them. Two sets, both the reference onnxruntime outputs of both models (the
//! outputs the ml tier's golden tests hold tract to): ml's photos
//! (`ml/tests/fixtures/photos/expected.json`) and the household photos of
//! `backend/tests/fixtures/household/` (vegetables, a toilet, a temple, a flower).

use std::path::PathBuf;
use std::sync::Arc;

use backend::assessment::{Assessment, Assessor, MinConfidence, Prediction, Strategy};
use backend::knowledge::KnowledgeBase;

/// What a photo must get: guidance for one category, one not-a-product group, or no guidance at all
/// (either "not sure" or any not-a-product group), never a wrong category.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Category(&'static str),
    NotAProduct(&'static str),
    NoGuidance,
}

fn expected_answer(file: &str) -> Answer {
    match file {
        "coffee.jpg" | "coffee.webp" => Answer::Category("drinks"),
        "chelsea.jpg" => Answer::NotAProduct("animals"),
        // A portrait in a space suit and a rocket on its pad: nothing to dispose of, and the model
        // has no class for either.
        "astronaut.jpg" | "rocket.jpg" | "rocket-exif-orientation-6.jpg" => Answer::NoGuidance,
        "broccoli.jpg" | "lettuce.jpg" | "corn.jpg" => Answer::Category("fresh-produce"),
        "toilet.jpg" => Answer::Category("bathroom-fixtures"),
        "temple.jpg" => Answer::NotAProduct("buildings-and-places"),
        // A garden flower close up: the model is unsure (daisy at 0.31 for Lite0, nothing for Lite1).
        "dahlia.jpg" => Answer::NoGuidance,
        other => panic!("no expected answer for fixture photo {other}"),
    }
}

const RECORDINGS: [&str; 2] = [
    "../ml/tests/fixtures/photos/expected.json",
    "tests/fixtures/household/expected.json",
];

/// (photo file, model, top-5) for every photo and model in both fixture files.
fn recorded_outputs() -> Vec<(String, String, Vec<Prediction>)> {
    RECORDINGS.iter().flat_map(|file| recorded(file)).collect()
}

fn recorded(relative: &str) -> Vec<(String, String, Vec<Prediction>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let document: serde_json::Value = serde_json::from_str(&text).expect("expected.json is JSON");
    let mut outputs = Vec::new();
    for photo in document["photos"].as_array().expect("photos") {
        let file = photo["file"].as_str().expect("file").to_owned();
        for (model, result) in photo["models"].as_object().expect("models") {
            let top5 = result["top5"]
                .as_array()
                .expect("top5")
                .iter()
                .map(|t| Prediction {
                    label: t["label"].as_str().expect("label").to_owned(),
                    class_index: t["index"].as_u64().expect("index") as u32,
                    probability: t["probability"].as_f64().expect("probability"),
                })
                .collect();
            outputs.push((file.clone(), model.clone(), top5));
        }
    }
    outputs
}

fn satisfies(a: &Assessment, answer: Answer) -> bool {
    let category = a.category.as_ref().map(|c| c.id.as_str());
    let group = a.not_a_product.as_ref().map(|g| g.id.as_str());
    match answer {
        Answer::Category(id) => a.known && category == Some(id),
        Answer::NotAProduct(id) => !a.known && group == Some(id),
        Answer::NoGuidance => !a.known,
    }
}

/// The photos (× models × strategies) that get a wrong answer at this threshold.
fn misses(kb: &Arc<KnowledgeBase>, min: MinConfidence) -> Vec<String> {
    let mut wrong = Vec::new();
    for (file, model, top5) in recorded_outputs() {
        for strategy in [Strategy::Top1, Strategy::CategoryAggregate] {
            let a = Assessor::new(kb.clone(), strategy, min).assess(&top5);
            if !satisfies(&a, expected_answer(&file)) {
                wrong.push(format!("{file} / {model} / {strategy}: {}", a.summary));
            }
        }
    }
    wrong
}

#[test]
fn every_fixture_photo_gets_its_expected_answer_from_both_builds() {
    let kb = Arc::new(KnowledgeBase::bundled().expect("knowledge base validates"));
    assert_eq!(recorded_outputs().len(), 24, "12 photos × 2 models");
    let wrong = misses(&kb, MinConfidence::DEFAULT);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_default_threshold_sits_inside_the_calibrated_range_with_margin() {
    let kb = Arc::new(KnowledgeBase::bundled().expect("knowledge base validates"));
    let good: Vec<f64> = (1..100)
        .map(|percent| f64::from(percent) / 100.0)
        .filter(|&t| misses(&kb, MinConfidence::parse(t).expect("in range")).is_empty())
        .collect();
    let (low, high) = (good.first().copied(), good.last().copied());
    eprintln!("thresholds with every fixture photo right: {low:?} ..= {high:?}");
    let default = MinConfidence::DEFAULT.get();
    let (Some(low), Some(high)) = (low, high) else {
        panic!("no threshold gets every fixture photo right");
    };
    let steps = ((high - low) * 100.0).round() as usize + 1;
    assert_eq!(
        good.len(),
        steps,
        "the good thresholds are one interval: {good:?}"
    );
    assert!(
        low + 0.05 <= default && default + 0.05 <= high,
        "default {default} is not inside {low}..={high} with a 0.05 margin"
    );
    // A threshold far outside the range really does produce wrong answers.
    assert!(!misses(&kb, MinConfidence::parse(0.10).expect("valid")).is_empty());
    assert!(!misses(&kb, MinConfidence::parse(0.60).expect("valid")).is_empty());
}
