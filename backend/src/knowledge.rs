//! The 3R knowledge base: which ImageNet-1k classes are products or waste, grouped into
//! categories that carry materials, reduce/reuse/recycle/resell flags, disposal guidance, tips and a
//! rough carbon note.
//!
//! The data is authored in `backend/data/knowledge.json`, embedded in the binary and validated when the
//! service starts: a broken knowledge base stops the service instead of producing wrong advice.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// The knowledge base shipped with the service.
const BUNDLED_JSON: &str = include_str!("../data/knowledge.json");

/// The only document format this code understands.
const FORMAT_VERSION: u32 = 1;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    categories: Vec<Category>,
}

/// A validated knowledge base with a class-index lookup.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    categories: Vec<Category>,
    /// class index → (category position, class position within it)
    by_class: HashMap<u32, (usize, usize)>,
}

impl KnowledgeBase {
    /// The knowledge base embedded in the binary.
    pub fn bundled() -> Result<Self, KnowledgeError> {
        Self::parse(BUNDLED_JSON)
    }

    /// Parses and validates a knowledge-base document.
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
        let mut ids = HashSet::new();
        let mut by_class = HashMap::new();
        for (position, category) in document.categories.iter().enumerate() {
            validate_category(category)?;
            if !ids.insert(category.id.as_str()) {
                return Err(KnowledgeError::DuplicateCategory(category.id.clone()));
            }
            for (class_position, class) in category.classes.iter().enumerate() {
                if class.index >= CLASS_COUNT {
                    return Err(KnowledgeError::IndexOutOfRange {
                        category: category.id.clone(),
                        index: class.index,
                    });
                }
                if let Some((first, _)) = by_class.insert(class.index, (position, class_position)) {
                    return Err(KnowledgeError::DuplicateClass {
                        index: class.index,
                        first: document.categories[first].id.clone(),
                        second: category.id.clone(),
                    });
                }
            }
        }
        Ok(Self {
            categories: document.categories,
            by_class,
        })
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category a class belongs to, if the class is a product or waste item we know about.
    pub fn category_of(&self, class_index: u32) -> Option<&Category> {
        self.by_class
            .get(&class_index)
            .map(|&(category, _)| &self.categories[category])
    }

    /// The class entry and its category.
    pub fn class(&self, class_index: u32) -> Option<(&KnownClass, &Category)> {
        self.by_class.get(&class_index).map(|&(category, class)| {
            let category = &self.categories[category];
            (&category.classes[class], category)
        })
    }

    /// How many class indices are mapped.
    pub fn class_count(&self) -> usize {
        self.by_class.len()
    }
}

fn validate_category(category: &Category) -> Result<(), KnowledgeError> {
    let problem = |problem: &str| KnowledgeError::InvalidCategory {
        category: category.id.clone(),
        problem: problem.to_owned(),
    };
    let id_ok = !category.id.is_empty()
        && category
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
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
        format!(r#"{{"version":1,"categories":[{categories}]}}"#)
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
        let v2 = r#"{"version":2,"categories":[]}"#;
        assert!(matches!(
            KnowledgeBase::parse(v2),
            Err(KnowledgeError::UnsupportedVersion { found: 2 })
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
