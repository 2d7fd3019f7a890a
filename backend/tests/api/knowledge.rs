//! The knowledge base agrees with the model's label file, index by index.

use std::path::PathBuf;

use backend::knowledge::{CLASS_COUNT, Entry, KnowledgeBase, TipKind};

fn labels_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/model/labels.txt")
}

fn model_labels() -> Vec<String> {
    let path = labels_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the model's labels at {}: {e}", path.display()));
    text.lines().map(str::to_owned).collect()
}

/// Every mapped class whose label differs from the model's label at its index.
fn label_mismatches(kb: &KnowledgeBase, labels: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (owner, class) in kb.classes() {
        match labels.get(class.index as usize) {
            Some(label) if *label == class.label => {}
            Some(label) => problems.push(format!(
                "{owner}: class {} is {label:?} in labels.txt but {:?} in the knowledge base",
                class.index, class.label
            )),
            None => problems.push(format!(
                "{owner}: class {} does not exist in labels.txt",
                class.index
            )),
        }
    }
    problems
}

#[test]
fn every_mapped_class_exists_and_its_label_matches_the_model() {
    let labels = model_labels();
    assert_eq!(labels.len(), CLASS_COUNT as usize, "labels.txt line count");
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    let problems = label_mismatches(&kb, &labels);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_label_check_catches_a_shifted_label_file() {
    // A label file off by one line (a header line added, say) must not pass.
    let mut shifted = vec!["background".to_owned()];
    shifted.extend(model_labels());
    shifted.truncate(CLASS_COUNT as usize);
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    assert!(label_mismatches(&kb, &shifted).len() > 100);
}

#[test]
fn coverage_is_broad_and_every_category_is_complete() {
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    assert!(
        kb.class_count() >= 150,
        "only {} classes mapped",
        kb.class_count()
    );
    for category in kb.categories() {
        assert!(
            category.tips.len() >= 2,
            "{} needs at least two tips",
            category.id
        );
        let useful = [
            TipKind::Reduce,
            TipKind::Reuse,
            TipKind::Recycle,
            TipKind::Resell,
        ];
        assert!(category.tips.iter().all(|t| useful.contains(&t.kind)));
    }
}

#[test]
fn everyday_items_land_in_the_expected_categories() {
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    let expected = [
        (440, "drink-bottles"),            // beer bottle
        (907, "drink-bottles"),            // wine bottle
        (737, "drink-bottles"),            // soda bottle
        (720, "pill-bottles"),             // pill bottle
        (728, "plastic-film"),             // plastic bag
        (692, "plastic-film"),             // packet (snack wrappers)
        (997, "fresh-produce"),            // bolete
        (958, "garden-waste"),             // hay
        (844, "small-electronics"),        // electrical switch
        (478, "cardboard-packaging"),      // carton
        (620, "computers"),                // laptop
        (487, "phones-and-handhelds"),     // mobile phone
        (851, "displays"),                 // television
        (760, "large-appliances"),         // refrigerator
        (610, "t-shirts-and-casual-wear"), // T-shirt
        (770, "shoes"),                    // sneaker
        (559, "furniture"),                // folding chair
        (567, "cookware"),                 // frying pan
        (504, "tableware"),                // coffee mug
        (954, "fresh-produce"),            // banana
        (963, "prepared-food"),            // pizza
        (845, "medical-sharps"),           // syringe
        (671, "bicycles"),                 // mountain bike
    ];
    for (index, category) in expected {
        let found = kb.category_of(index).map(|c| c.id.as_str());
        assert_eq!(found, Some(category), "class {index}");
    }
    // Animals, people, landscapes and cars are not products, and say so.
    for (index, group) in [
        (1, "animals"),
        (207, "animals"),
        (281, "animals"),
        (970, "landscapes"),
        (981, "people"),
        (817, "vehicles"),
    ] {
        assert!(
            kb.category_of(index).is_none(),
            "class {index} is a product"
        );
        assert!(
            matches!(kb.entry(index), Some(Entry::NotProduct(g)) if g.id == group),
            "class {index} should be in {group}"
        );
    }
}

#[test]
fn every_class_the_model_can_say_is_accounted_for() {
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    assert_eq!(kb.classes().count(), CLASS_COUNT as usize);
    assert_eq!(kb.unaccounted(), Vec::<u32>::new());
    // The same check on the bundled document with one class taken out must fail, naming it.
    let bundled = include_str!("../../data/knowledge.json");
    let without_hay = bundled.replace(r#"{ "index": 958, "label": "hay" },"#, "");
    assert_ne!(without_hay, bundled, "the fixture edit must apply");
    let err = KnowledgeBase::parse_complete(&without_hay).expect_err("hay is unaccounted");
    assert!(err.to_string().contains("958"), "{err}");
}

#[test]
fn safety_categories_never_suggest_resale() {
    let kb = KnowledgeBase::bundled().expect("knowledge base validates");
    for id in ["medical-sharps", "protective-helmets", "disposable-hygiene"] {
        let category = kb
            .categories()
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("category {id} exists"));
        assert!(!category.resellable && !category.reusable, "{id}");
    }
}
