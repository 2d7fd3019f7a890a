//! Stable (`top1`) and canary (`category-aggregate`) decisions on crafted prediction lists.
//! (The recorded outputs of the fixture photos are in `photos.rs`.)

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
fn stable_falls_back_to_a_category_that_holds_the_majority() {
    let a = assessor(Strategy::Top1).assess(&spread_over_bottles());
    assert!(a.known, "{a:?}");
    assert_eq!(a.strategy, Strategy::Top1);
    assert_eq!(category(&a), Some("drink-bottles"));
    assert!((a.confidence - 0.75).abs() < 1e-9, "{}", a.confidence);
    assert_eq!(a.contributing.len(), 3);
}

/// Eight classes; the two bottles are the plurality (0.40) but not a majority of the mass.
fn bottles_as_a_plurality() -> Vec<Prediction> {
    vec![
        p("beer bottle", 440, 0.20),
        p("wine bottle", 907, 0.20),
        p("tabby cat", 281, 0.12),
        p("coffee mug", 504, 0.12),
        p("banana", 954, 0.12),
        p("sneaker", 770, 0.10),
        p("mountain", 970, 0.08),
        p("teapot", 849, 0.06),
    ]
}

#[test]
fn stable_is_not_sure_without_a_confident_class_or_a_majority() {
    let a = assessor(Strategy::Top1).assess(&bottles_as_a_plurality());
    assert!(!a.known);
    assert_eq!(a.uncertainty, Some(Uncertainty::LowConfidence));
    assert_eq!(category(&a), None);
    assert_eq!(a.recyclable, None);
    assert!(a.tips.is_empty());
    assert!((a.confidence - 0.20).abs() < 1e-9);
    assert!(a.summary.contains("beer bottle"), "{}", a.summary);

    let canary = assessor(Strategy::CategoryAggregate).assess(&bottles_as_a_plurality());
    assert_eq!(category(&canary), Some("drink-bottles"), "{canary:?}");
    assert!((canary.confidence - 0.40).abs() < 1e-9);
}

#[test]
fn a_confident_top_class_decides_for_stable_but_not_for_canary() {
    let desk_or_computer = [
        p("desk", 526, 0.40),
        p("desktop computer", 527, 0.30),
        p("computer keyboard", 508, 0.20),
        p("monitor", 664, 0.05),
    ];
    let stable = assessor(Strategy::Top1).assess(&desk_or_computer);
    assert_eq!(category(&stable), Some("furniture"));
    assert_eq!(stable.contributing.len(), 1);
    let canary = assessor(Strategy::CategoryAggregate).assess(&desk_or_computer);
    assert_eq!(category(&canary), Some("computers"));
    assert!((canary.confidence - 0.50).abs() < 1e-9);
}

/// What a synthetic top-k must become, for both strategies.
enum Expect {
    Category(&'static str),
    NotAProduct(&'static str),
}

#[test]
fn household_waste_gets_the_right_guidance_for_both_strategies() {
    use Expect::{Category, NotAProduct};
    let cases: &[(&str, Vec<Prediction>, Expect)] = &[
        (
            "a pile of vegetables",
            vec![
                p("broccoli", 937, 0.41),
                p("cauliflower", 938, 0.22),
                p("cabbage", 936, 0.12),
                p("cucumber", 943, 0.05),
            ],
            Category("fresh-produce"),
        ),
        (
            "mushrooms",
            vec![
                p("bolete", 997, 0.30),
                p("agaric", 992, 0.25),
                p("mushroom", 947, 0.20),
            ],
            Category("fresh-produce"),
        ),
        (
            "food scraps on a plate",
            vec![
                p("hot pot", 926, 0.38),
                p("carbonara", 959, 0.20),
                p("plate", 923, 0.15),
            ],
            Category("prepared-food"),
        ),
        (
            "a snack wrapper",
            vec![
                p("product packet / packaging", 692, 0.52),
                p("plastic bag", 728, 0.10),
                p("cardboard box / carton", 478, 0.08),
            ],
            Category("plastic-film"),
        ),
        (
            "a carrier bag",
            vec![p("plastic bag", 728, 0.88), p("purse", 748, 0.03)],
            Category("plastic-film"),
        ),
        (
            "a refrigerator",
            vec![
                p("refrigerator", 760, 0.62),
                p("medicine cabinet", 648, 0.11),
                p("washing machine", 897, 0.06),
            ],
            Category("large-appliances"),
        ),
        (
            "a light switch",
            vec![p("electrical switch", 844, 0.71), p("modem", 662, 0.04)],
            Category("small-electronics"),
        ),
        (
            "a bale of hay",
            vec![p("hay", 958, 0.80)],
            Category("garden-waste"),
        ),
        (
            "an old radiator",
            vec![p("radiator", 753, 0.55), p("space heater", 811, 0.20)],
            Category("building-materials"),
        ),
        (
            "a person",
            vec![
                p("bridegroom", 982, 0.48),
                p("suit", 834, 0.20),
                p("bow tie", 457, 0.08),
            ],
            NotAProduct("people"),
        ),
        (
            "a dog",
            vec![p("Golden Retriever", 207, 0.91)],
            NotAProduct("animals"),
        ),
        (
            "a car",
            vec![
                p("sports car", 817, 0.52),
                p("convertible", 511, 0.30),
                p("car wheel", 479, 0.05),
            ],
            NotAProduct("vehicles"),
        ),
        (
            "a rifle",
            vec![p("rifle", 764, 0.66), p("assault rifle", 413, 0.20)],
            NotAProduct("weapons-and-armour"),
        ),
    ];
    for strategy in [Strategy::Top1, Strategy::CategoryAggregate] {
        let assessor = assessor(strategy);
        for (photo, predictions, expect) in cases {
            let a = assessor.assess(predictions);
            match expect {
                Category(id) => {
                    assert!(a.known, "{strategy}, {photo}: {a:?}");
                    assert_eq!(category(&a), Some(*id), "{strategy}, {photo}");
                    assert!(a.not_a_product.is_none());
                }
                NotAProduct(id) => {
                    assert!(!a.known, "{strategy}, {photo}: {a:?}");
                    assert_eq!(
                        a.uncertainty,
                        Some(Uncertainty::NotAProduct),
                        "{strategy}, {photo}"
                    );
                    let group = a
                        .not_a_product
                        .as_ref()
                        .expect("the group that explains it");
                    assert_eq!(group.id, *id, "{strategy}, {photo}");
                    assert!(a.summary.contains(&group.reason), "{}", a.summary);
                    assert!(!a.disposal.contains("won't guess"), "{}", a.disposal);
                }
            }
        }
    }
}

#[test]
fn plastic_film_is_never_called_recyclable() {
    let a = assessor(Strategy::Top1).assess(&[p("product packet / packaging", 692, 0.9)]);
    assert_eq!(a.recyclable, Some(false));
    assert!(a.disposal.contains("kerbside"), "{}", a.disposal);
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
        assert!(a.summary.contains("an animal"), "{}", a.summary);
        assert!(a.disposal.contains("vet"), "{}", a.disposal);
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
