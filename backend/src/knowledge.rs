//! The 3R knowledge base: every ImageNet-1k class the model can say is accounted for, either in a
//! *category* of products or waste (materials, reduce/reuse/recycle/resell flags, disposal guidance,
//! tips and a rough carbon note) or in a *not-a-product group* (animals, people, landscapes,
//! vehicles too large to be household waste…) that says why no disposal advice is given.
//!
//! The data is authored in `backend/data/knowledge.json`, embedded in the binary and validated when the
//! service starts: a broken or incomplete knowledge base stops the service instead of producing wrong
//! advice or an unexplained "not sure".
//!
//! What the flags mean, so that guidance stays honest across places:
//! - `recyclable`: most households can get it recycled through kerbside collection, the council
//!   recycling centre or a statutory take-back point (WEEE, batteries). A material that most kerbside
//!   collections refuse and that only patchy store drop-offs take (plastic film, snack packets) is
//!   *not* recyclable; its disposal text names the drop-off where one exists.
//! - `biodegradable`: breaks down in a compost heap or food/garden-waste collection.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// The knowledge base shipped with the service.
const BUNDLED_JSON: &str = include_str!("../data/knowledge.json");

/// The only document format this code understands (2 added the not-a-product groups).
const FORMAT_VERSION: u32 = 2;

/// ImageNet-1k has classes `0..CLASS_COUNT`.
pub const CLASS_COUNT: u32 = 1000;

/// Why a knowledge-base document was rejected.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge base is not valid JSON: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("knowledge base format version {found} is not supported (expected {FORMAT_VERSION})")]
    UnsupportedVersion { found: u32 },
    #[error("knowledge base has no categories")]
    Empty,
    #[error("category id {0:?} appears more than once")]
    DuplicateCategory(String),
    #[error("category {category:?}: {problem}")]
    InvalidCategory { category: String, problem: String },
    #[error("category {category:?}: class index {index} is outside 0..{CLASS_COUNT}")]
    IndexOutOfRange { category: String, index: u32 },
    #[error("class index {index} is listed in both {first:?} and {second:?}")]
    DuplicateClass {
        index: u32,
        first: String,
        second: String,
    },
    #[error(
        "{} of {CLASS_COUNT} classes are in no category and no not-a-product group, e.g. {}",
        .missing.len(),
        preview(.missing)
    )]
    Incomplete { missing: Vec<u32> },
}

fn preview(indices: &[u32]) -> String {
    let mut shown: Vec<String> = indices.iter().take(8).map(u32::to_string).collect();
    if indices.len() > shown.len() {
        shown.push("…".to_owned());
    }
    shown.join(", ")
}

/// Which of the four Rs a tip is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TipKind {
    Reduce,
    Reuse,
    Recycle,
    Resell,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tip {
    pub kind: TipKind,
    pub text: String,
}

/// An ImageNet-1k class that belongs to a category; `label` is the model's label for `index`
/// (kept so a test can prove the two never drift apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownClass {
    pub index: u32,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Stable identifier (`drink-bottles`), used in JSON answers and metrics.
    pub id: String,
    /// What a person calls it.
    pub name: String,
    pub materials: Vec<String>,
    pub recyclable: bool,
    pub reusable: bool,
    pub resellable: bool,
    pub biodegradable: bool,
    pub functional_categories: Vec<String>,
    pub disposal: String,
    pub tips: Vec<Tip>,
    pub carbon_note: String,
    pub classes: Vec<KnownClass>,
}

/// Classes the service deliberately gives no disposal advice for, and why (`animals`: "an animal").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotProduct {
    /// Stable identifier (`animals`), used in JSON answers.
    pub id: String,
    pub name: String,
    /// Completes "This looks like …": `an animal`, `a vehicle too large to be household waste`.
    pub reason: String,
    /// What to do instead, shown where disposal advice would be.
    pub explanation: String,
    pub classes: Vec<KnownClass>,
}

/// Where a class belongs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    Category(&'a Category),
    NotProduct(&'a NotProduct),
}

impl Entry<'_> {
    pub fn id(&self) -> &str {
        match self {
            Entry::Category(category) => &category.id,
            Entry::NotProduct(group) => &group.id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    categories: Vec<Category>,
    not_products: Vec<NotProduct>,
}

/// Where a class index points: a category and the class's position in it, or a not-a-product group.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Category(usize, usize),
    NotProduct(usize),
}

/// A validated knowledge base with a class-index lookup.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    categories: Vec<Category>,
    not_products: Vec<NotProduct>,
    by_class: HashMap<u32, Slot>,
}

impl KnowledgeBase {
    /// The knowledge base embedded in the binary; it must account for every class.
    pub fn bundled() -> Result<Self, KnowledgeError> {
        Self::parse_complete(BUNDLED_JSON)
    }

    /// Parses and validates a document that must account for all [`CLASS_COUNT`] classes.
    pub fn parse_complete(json: &str) -> Result<Self, KnowledgeError> {
        let kb = Self::parse(json)?;
        let missing = kb.unaccounted();
        if missing.is_empty() {
            Ok(kb)
        } else {
            Err(KnowledgeError::Incomplete { missing })
        }
    }

    /// Parses and validates a knowledge-base document; classes it does not list are allowed (see
    /// [`KnowledgeBase::unaccounted`]).
    pub fn parse(json: &str) -> Result<Self, KnowledgeError> {
        let document: Document = serde_json::from_str(json)?;
        if document.version != FORMAT_VERSION {
            return Err(KnowledgeError::UnsupportedVersion {
                found: document.version,
            });
        }
        if document.categories.is_empty() {
            return Err(KnowledgeError::Empty);
        }
        for category in &document.categories {
            validate_category(category)?;
        }
        for group in &document.not_products {
            validate_not_product(group)?;
        }
        let mut ids = HashSet::new();
        let mut owners = HashMap::new();
        for (at, category) in document.categories.iter().enumerate() {
            register(
                &category.id,
                &category.classes,
                |k| Slot::Category(at, k),
                &mut ids,
                &mut owners,
            )?;
        }
        for (at, group) in document.not_products.iter().enumerate() {
            register(
                &group.id,
                &group.classes,
                |_| Slot::NotProduct(at),
                &mut ids,
                &mut owners,
            )?;
        }
        let by_class = owners
            .into_iter()
            .map(|(index, (_, slot))| (index, slot))
            .collect();
        Ok(Self {
            categories: document.categories,
            not_products: document.not_products,
            by_class,
        })
    }

    pub fn not_products(&self) -> &[NotProduct] {
        &self.not_products
    }

    /// Where a class belongs, if the knowledge base lists it.
    pub fn entry(&self, class_index: u32) -> Option<Entry<'_>> {
        self.by_class.get(&class_index).map(|slot| match *slot {
            Slot::Category(c, _) => Entry::Category(&self.categories[c]),
            Slot::NotProduct(g) => Entry::NotProduct(&self.not_products[g]),
        })
    }

    /// Every listed class with the id of the category or group that lists it.
    pub fn classes(&self) -> impl Iterator<Item = (&str, &KnownClass)> {
        let products = self
            .categories
            .iter()
            .flat_map(|c| c.classes.iter().map(move |k| (c.id.as_str(), k)));
        let others = self
            .not_products
            .iter()
            .flat_map(|g| g.classes.iter().map(move |k| (g.id.as_str(), k)));
        products.chain(others)
    }

    /// Class indices in `0..CLASS_COUNT` that no category and no group lists, ascending.
    pub fn unaccounted(&self) -> Vec<u32> {
        (0..CLASS_COUNT)
            .filter(|index| !self.by_class.contains_key(index))
            .collect()
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category a class belongs to, if the class is a product or waste item we know about.
    pub fn category_of(&self, class_index: u32) -> Option<&Category> {
        match self.entry(class_index)? {
            Entry::Category(category) => Some(category),
            Entry::NotProduct(_) => None,
        }
    }

    /// The class entry and its category, for product classes.
    pub fn class(&self, class_index: u32) -> Option<(&KnownClass, &Category)> {
        match self.by_class.get(&class_index)? {
            &Slot::Category(c, k) => {
                let category = &self.categories[c];
                Some((&category.classes[k], category))
            }
            Slot::NotProduct(..) => None,
        }
    }

    /// How many class indices map to a product category.
    pub fn class_count(&self) -> usize {
        self.categories.iter().map(|c| c.classes.len()).sum()
    }
}

/// Adds one category's or group's classes to the index: ids are unique across both kinds, every
/// index is in range and no class has two owners.
fn register<'d>(
    id: &'d str,
    classes: &[KnownClass],
    slot: impl Fn(usize) -> Slot,
    ids: &mut HashSet<&'d str>,
    owners: &mut HashMap<u32, (&'d str, Slot)>,
) -> Result<(), KnowledgeError> {
    if !ids.insert(id) {
        return Err(KnowledgeError::DuplicateCategory(id.to_owned()));
    }
    for (position, class) in classes.iter().enumerate() {
        if class.index >= CLASS_COUNT {
            return Err(KnowledgeError::IndexOutOfRange {
                category: id.to_owned(),
                index: class.index,
            });
        }
        if let Some((first, _)) = owners.insert(class.index, (id, slot(position))) {
            return Err(KnowledgeError::DuplicateClass {
                index: class.index,
                first: first.to_owned(),
                second: id.to_owned(),
            });
        }
    }
    Ok(())
}

fn validate_not_product(group: &NotProduct) -> Result<(), KnowledgeError> {
    let problem = |problem: &str| KnowledgeError::InvalidCategory {
        category: group.id.clone(),
        problem: problem.to_owned(),
    };
    let blank = |text: &str| text.trim().is_empty();
    if !valid_id(&group.id) {
        return Err(problem(
            "id must be non-empty lowercase ASCII letters, digits and '-'",
        ));
    }
    if blank(&group.name) || blank(&group.reason) || blank(&group.explanation) {
        return Err(problem("name, reason and explanation must not be empty"));
    }
    if group.classes.is_empty() || group.classes.iter().any(|c| blank(&c.label)) {
        return Err(problem("lists no classes, or a class with an empty label"));
    }
    Ok(())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn validate_category(category: &Category) -> Result<(), KnowledgeError> {
    let problem = |problem: &str| KnowledgeError::InvalidCategory {
        category: category.id.clone(),
        problem: problem.to_owned(),
    };
    if !valid_id(&category.id) {
        return Err(problem(
            "id must be non-empty lowercase ASCII letters, digits and '-'",
        ));
    }
    let blank = |text: &str| text.trim().is_empty();
    if blank(&category.name) {
        return Err(problem("name is empty"));
    }
    if category.materials.is_empty() || category.materials.iter().any(|m| blank(m)) {
        return Err(problem("needs at least one material and no empty ones"));
    }
    if category.functional_categories.is_empty()
        || category.functional_categories.iter().any(|f| blank(f))
    {
        return Err(problem(
            "needs at least one functional category and no empty ones",
        ));
    }
    if blank(&category.disposal) {
        return Err(problem("disposal guidance is empty"));
    }
    if blank(&category.carbon_note) {
        return Err(problem("carbon note is empty"));
    }
    if category.tips.is_empty() || category.tips.iter().any(|t| blank(&t.text)) {
        return Err(problem("needs at least one tip and no empty ones"));
    }
    if category.classes.is_empty() {
        return Err(problem("lists no classes"));
    }
    if category.classes.iter().any(|c| blank(&c.label)) {
        return Err(problem("has a class with an empty label"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(categories: &str) -> String {
        document_with(categories, "")
    }

    fn document_with(categories: &str, not_products: &str) -> String {
        format!(r#"{{"version":2,"categories":[{categories}],"not_products":[{not_products}]}}"#)
    }

    fn group(id: &str, classes: &str) -> String {
        format!(
            r#"{{"id":"{id}","name":"G","reason":"an animal","explanation":"ask a vet",
               "classes":[{classes}]}}"#
        )
    }

    fn category(id: &str, classes: &str) -> String {
        format!(
            r#"{{"id":"{id}","name":"N","materials":["glass"],"recyclable":true,"reusable":true,
               "resellable":false,"biodegradable":false,"functional_categories":["container"],
               "disposal":"bin it right","tips":[{{"kind":"reuse","text":"refill"}}],
               "carbon_note":"small","classes":[{classes}]}}"#
        )
    }

    #[test]
    fn bundled_knowledge_base_is_valid() {
        let kb = KnowledgeBase::bundled().expect("bundled knowledge base must validate");
        assert!(kb.class_count() >= 150, "only {} classes", kb.class_count());
        assert_eq!(kb.unaccounted(), Vec::<u32>::new());
    }

    #[test]
    fn a_document_that_leaves_classes_out_is_not_complete() {
        let json = document_with(
            &category("bottles", r#"{"index":440,"label":"beer bottle"}"#),
            &group("animals", r#"{"index":281,"label":"tabby cat"}"#),
        );
        let kb = KnowledgeBase::parse(&json).expect("valid, if partial");
        assert_eq!(kb.unaccounted().len(), 998);
        let err = KnowledgeBase::parse_complete(&json).expect_err("incomplete");
        let message = err.to_string();
        assert!(
            message.starts_with("998 of 1000 classes are in no category")
                && message.contains("0, 1, 2"),
            "{message}"
        );
    }

    #[test]
    fn not_product_groups_look_up_and_never_share_a_class() {
        let json = document_with(
            &category("bottles", r#"{"index":440,"label":"beer bottle"}"#),
            &group("animals", r#"{"index":281,"label":"tabby cat"}"#),
        );
        let kb = KnowledgeBase::parse(&json).expect("valid");
        assert!(matches!(kb.entry(281), Some(Entry::NotProduct(g)) if g.reason == "an animal"));
        assert!(matches!(kb.entry(440), Some(Entry::Category(c)) if c.id == "bottles"));
        assert!(kb.category_of(281).is_none() && kb.class(281).is_none());

        let shared = document_with(
            &category("bottles", r#"{"index":440,"label":"beer bottle"}"#),
            &group("animals", r#"{"index":440,"label":"beer bottle"}"#),
        );
        let err = KnowledgeBase::parse(&shared).expect_err("one class, two owners");
        assert!(
            matches!(err, KnowledgeError::DuplicateClass { index: 440, .. }),
            "{err}"
        );

        let same_id = document_with(
            &category("animals", r#"{"index":440,"label":"beer bottle"}"#),
            &group("animals", r#"{"index":281,"label":"tabby cat"}"#),
        );
        assert!(matches!(
            KnowledgeBase::parse(&same_id),
            Err(KnowledgeError::DuplicateCategory(_))
        ));
        let no_reason = group("animals", r#"{"index":281,"label":"tabby cat"}"#)
            .replace(r#""reason":"an animal""#, r#""reason":" ""#);
        assert!(
            KnowledgeBase::parse(&document_with(
                &category("b", r#"{"index":1,"label":"x"}"#),
                &no_reason
            ))
            .is_err()
        );
    }

    #[test]
    fn a_minimal_document_parses_and_looks_up() {
        let kb = KnowledgeBase::parse(&document(&category(
            "bottles",
            r#"{"index":440,"label":"beer bottle"}"#,
        )))
        .expect("valid");
        let (class, category) = kb.class(440).expect("mapped");
        assert_eq!(class.label, "beer bottle");
        assert_eq!(category.id, "bottles");
        assert!(kb.category_of(441).is_none());
    }

    #[test]
    fn a_class_in_two_categories_is_rejected() {
        let json = document(&format!(
            "{},{}",
            category("a", r#"{"index":1,"label":"x"}"#),
            category("b", r#"{"index":1,"label":"x"}"#)
        ));
        let err = KnowledgeBase::parse(&json).expect_err("duplicate class");
        assert!(
            matches!(err, KnowledgeError::DuplicateClass { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_index_past_the_last_class_is_rejected() {
        let json = document(&category("a", r#"{"index":1000,"label":"x"}"#));
        let err = KnowledgeBase::parse(&json).expect_err("out of range");
        assert!(matches!(
            err,
            KnowledgeError::IndexOutOfRange { index: 1000, .. }
        ));
    }

    #[test]
    fn duplicate_category_ids_unknown_fields_and_bad_versions_are_rejected() {
        let twice = document(&format!(
            "{},{}",
            category("a", r#"{"index":1,"label":"x"}"#),
            category("a", r#"{"index":2,"label":"y"}"#)
        ));
        assert!(matches!(
            KnowledgeBase::parse(&twice),
            Err(KnowledgeError::DuplicateCategory(_))
        ));
        let typo = category("a", r#"{"index":1,"label":"x"}"#).replace("recyclable", "recylable");
        assert!(matches!(
            KnowledgeBase::parse(&document(&typo)),
            Err(KnowledgeError::Parse(_))
        ));
        let v1 = r#"{"version":1,"categories":[],"not_products":[]}"#;
        assert!(matches!(
            KnowledgeBase::parse(v1),
            Err(KnowledgeError::UnsupportedVersion { found: 1 })
        ));
        assert!(matches!(
            KnowledgeBase::parse(&document("")),
            Err(KnowledgeError::Empty)
        ));
    }

    #[test]
    fn empty_guidance_is_rejected() {
        let no_tips = category("a", r#"{"index":1,"label":"x"}"#)
            .replace(r#"[{"kind":"reuse","text":"refill"}]"#, "[]");
        let err = KnowledgeBase::parse(&document(&no_tips)).expect_err("no tips");
        assert!(err.to_string().contains("tip"), "{err}");
        let bad_id = category("Bottles!", r#"{"index":1,"label":"x"}"#);
        assert!(KnowledgeBase::parse(&document(&bad_id)).is_err());
    }
}
