//! Stable (`top1`) and canary (`category-aggregate`) decisions on crafted prediction lists.

use std::sync::Arc;

use backend::assessment::{Assessment, Assessor, MinConfidence, Prediction, Strategy, Uncertainty};
use backend::knowledge::KnowledgeBase;

fn assessor(strategy: Strategy) -> Assessor {
    assessor_with(strategy, MinConfidence::DEFAULT)
}

fn assessor_with(strategy: Strategy, min: MinConfidence) -> Assessor {
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    Assessor::new(Arc::new(kb), strategy, min)
}

fn p(label: &str, class_index: u32, probability: f64) -> Prediction {
    Prediction {
        label: label.to_owned(),
        class_index,
        probability,
    }
}

fn category(a: &Assessment) -> Option<&str> {
    a.category.as_ref().map(|c| c.id.as_str())
}

/// Three kinds of bottle, none convincing alone, plus a cat and a mug.
fn spread_over_bottles() -> Vec<Prediction> {
    vec![
        p("beer bottle", 440, 0.30),
        p("wine bottle", 907, 0.25),
        p("soda bottle", 737, 0.20),
        p("tabby cat", 281, 0.15),
        p("coffee mug", 504, 0.10),
    ]
}

#[test]
fn stable_is_not_sure_when_no_single_class_is_convincing() {
    let a = assessor(Strategy::Top1).assess(&spread_over_bottles());
    assert!(!a.known);
    assert_eq!(a.strategy, Strategy::Top1);
    assert_eq!(a.uncertainty, Some(Uncertainty::LowConfidence));
    assert_eq!(category(&a), None);
    assert_eq!(a.recyclable, None);
    assert!(a.tips.is_empty());
    assert!((a.confidence - 0.30).abs() < 1e-9);
    assert!(a.summary.contains("beer bottle"), "{}", a.summary);
}

#[test]
fn canary_sums_the_bottles_into_one_confident_category() {
    let a = assessor(Strategy::CategoryAggregate).assess(&spread_over_bottles());
    assert!(a.known, "{a:?}");
    assert_eq!(a.strategy, Strategy::CategoryAggregate);
    assert_eq!(category(&a), Some("drink-bottles"));
    assert!((a.confidence - 0.75).abs() < 1e-9, "{}", a.confidence);
    let contributing: Vec<u32> = a.contributing.iter().map(|c| c.class_index).collect();
    assert_eq!(contributing, vec![440, 907, 737]);
    assert_eq!(a.recyclable, Some(true));
    assert!(a.materials.iter().any(|m| m == "glass"));
    assert!(!a.disposal.is_empty() && a.carbon_note.is_some() && !a.tips.is_empty());
}

#[test]
fn both_agree_on_a_confident_single_class() {
    let predictions = vec![
        p("laptop computer", 620, 0.82),
        p("notebook computer", 681, 0.09),
        p("computer keyboard", 508, 0.03),
    ];
    let stable = assessor(Strategy::Top1).assess(&predictions);
    assert!(stable.known);
    assert_eq!(category(&stable), Some("computers"));
    assert_eq!(stable.contributing.len(), 1);
    assert!((stable.confidence - 0.82).abs() < 1e-9);

    let canary = assessor(Strategy::CategoryAggregate).assess(&predictions);
    assert_eq!(category(&canary), Some("computers"));
    assert_eq!(canary.contributing.len(), 3);
    assert!((canary.confidence - 0.94).abs() < 1e-9);
}

#[test]
fn ml_order_does_not_matter() {
    let mut shuffled = spread_over_bottles();
    shuffled.reverse();
    let a = assessor(Strategy::CategoryAggregate).assess(&shuffled);
    assert_eq!(a.contributing.first().map(|c| c.class_index), Some(440));
    let b = assessor(Strategy::Top1)
        .assess(&[p("soda bottle", 737, 0.1), p("laptop computer", 620, 0.8)]);
    assert_eq!(category(&b), Some("computers"));
}

#[test]
fn animals_are_not_products_for_either_strategy() {
    let cat = vec![
        p("tabby cat", 281, 0.71),
        p("tiger cat", 282, 0.12),
        p("Egyptian Mau", 285, 0.08),
        p("carton", 478, 0.02),
    ];
    for strategy in [Strategy::Top1, Strategy::CategoryAggregate] {
        let a = assessor(strategy).assess(&cat);
        assert!(!a.known, "{strategy}: {a:?}");
        assert_eq!(a.uncertainty, Some(Uncertainty::NotAProduct), "{strategy}");
        assert!(a.summary.contains("tabby cat"), "{}", a.summary);
        assert!(a.contributing.is_empty());
    }
}

#[test]
fn canary_lets_one_strong_non_product_outweigh_a_weaker_category() {
    let a = assessor(Strategy::CategoryAggregate).assess(&[
        p("Golden Retriever", 207, 0.50),
        p("beer bottle", 440, 0.20),
        p("wine bottle", 907, 0.20),
    ]);
    assert!(!a.known);
    assert_eq!(a.uncertainty, Some(Uncertainty::NotAProduct));

    let b = assessor(Strategy::CategoryAggregate).assess(&[
        p("Golden Retriever", 207, 0.30),
        p("beer bottle", 440, 0.25),
        p("wine bottle", 907, 0.25),
    ]);
    assert!(b.known);
    assert_eq!(category(&b), Some("drink-bottles"));
}

#[test]
fn scattered_low_probabilities_are_not_sure_for_both() {
    let scattered = vec![
        p("banana", 954, 0.20),
        p("sneaker", 770, 0.15),
        p("carton", 478, 0.12),
        p("mountain", 970, 0.10),
        p("teapot", 849, 0.08),
    ];
    for strategy in [Strategy::Top1, Strategy::CategoryAggregate] {
        let a = assessor(strategy).assess(&scattered);
        assert!(!a.known, "{strategy}");
        assert_eq!(
            a.uncertainty,
            Some(Uncertainty::LowConfidence),
            "{strategy}"
        );
        assert!(a.disposal.contains("won't guess"), "{}", a.disposal);
    }
}

#[test]
fn the_threshold_is_configurable() {
    let laptop = [p("laptop computer", 620, 0.80)];
    let strict = MinConfidence::parse(0.9).expect("valid");
    let a = assessor_with(Strategy::Top1, strict).assess(&laptop);
    assert_eq!(a.uncertainty, Some(Uncertainty::LowConfidence));
    let lenient = MinConfidence::parse(0.1).expect("valid");
    let b = assessor_with(Strategy::Top1, lenient).assess(&spread_over_bottles());
    assert_eq!(category(&b), Some("drink-bottles"));
}

#[test]
fn no_predictions_is_not_sure() {
    let a = assessor(Strategy::CategoryAggregate).assess(&[]);
    assert!(!a.known);
    assert_eq!(a.uncertainty, Some(Uncertainty::NoPredictions));
}
