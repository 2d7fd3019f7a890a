//! The backend's answer to `POST /api/v1/analyze`, as the result page reads it.
//!
//! Reading is lenient: every field is optional, and a field that is missing, `null` or of an
//! unexpected shape falls back to its default, so a newer or older backend still gets a result
//! page with the parts it did send. (The JSON answer for `Accept: application/json` is passed on
//! untouched, apart from `served_by`.)

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// Deserializes a field, or its default when the value does not fit.
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Analysis {
    /// `None` when the backend identified nothing at all.
    #[serde(default, deserialize_with = "lenient")]
    pub item: Option<Item>,
    #[serde(default, deserialize_with = "lenient")]
    pub classification: Classification,
    #[serde(default, deserialize_with = "lenient")]
    pub assessment: Assessment,
    #[serde(default, deserialize_with = "lenient")]
    pub timings_ms: serde_json::Map<String, Value>,
    #[serde(default, deserialize_with = "lenient")]
    pub served_by: Vec<String>,
}

/// What the photo most likely shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Item {
    #[serde(default, deserialize_with = "lenient")]
    pub label: String,
    #[serde(default, deserialize_with = "lenient")]
    pub class_index: Option<u64>,
    /// Between 0 and 1.
    #[serde(default, deserialize_with = "lenient")]
    pub confidence: Option<f64>,
    /// The knowledge-base category id.
    #[serde(default, deserialize_with = "lenient")]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Classification {
    #[serde(default, deserialize_with = "lenient")]
    pub model: ModelInfo,
    #[serde(default, deserialize_with = "lenient")]
    pub predictions: Vec<Prediction>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelInfo {
    #[serde(default, deserialize_with = "lenient")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient")]
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Prediction {
    #[serde(default, deserialize_with = "lenient")]
    pub label: String,
    #[serde(default, alias = "class_index", deserialize_with = "lenient")]
    pub index: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub probability: Option<f64>,
}

/// A knowledge-base category: `{"id","name"}` from the backend, or a bare id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CategoryRef {
    Named {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
    },
    Id(String),
}

impl CategoryRef {
    /// What a person calls it (the id when no name was given).
    pub fn display_name(&self) -> &str {
        match self {
            Self::Named { name, .. } if !name.trim().is_empty() => name,
            Self::Named { id, .. } | Self::Id(id) => id,
        }
    }
}

/// One piece of advice: `{"kind":"reuse","text":"…"}` from the backend, or plain text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Tip {
    Kinded {
        #[serde(default)]
        kind: Option<String>,
        text: String,
    },
    Text(String),
}

impl Tip {
    /// "Reuse: Refill it" or just the text.
    pub fn display(&self) -> String {
        match self {
            Self::Kinded {
                kind: Some(kind),
                text,
            } if !kind.trim().is_empty() => format!("{}: {text}", capitalized(kind)),
            Self::Kinded { text, .. } | Self::Text(text) => text.clone(),
        }
    }
}

/// The reduce / reuse / recycle / resell guidance for the item.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Assessment {
    /// `false` when the backend is not sure what the photo shows.
    #[serde(default, deserialize_with = "lenient")]
    pub known: Option<bool>,
    /// How predictions became the decision (`top1`, `category-aggregate`).
    #[serde(default, deserialize_with = "lenient")]
    pub strategy: Option<String>,
    /// The probability the decision rests on.
    #[serde(default, deserialize_with = "lenient")]
    pub confidence: Option<f64>,
    /// Why the backend is not sure (`low_confidence`, `not_a_product`, `no_predictions`).
    #[serde(default, deserialize_with = "lenient")]
    pub uncertainty: Option<String>,
    /// One sentence a person can read.
    #[serde(default, deserialize_with = "lenient")]
    pub summary: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub category: Option<CategoryRef>,
    #[serde(default, deserialize_with = "lenient")]
    pub materials: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub recyclable: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub reusable: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub resellable: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub biodegradable: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub functional_categories: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub disposal: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub tips: Vec<Tip>,
    #[serde(default, deserialize_with = "lenient")]
    pub carbon_note: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub contributing: Vec<Value>,
}

impl Analysis {
    /// The backend says it does not know what the photo shows (or named nothing).
    pub fn is_unknown(&self) -> bool {
        self.assessment.known == Some(false)
            || self
                .item
                .as_ref()
                .is_none_or(|item| item.label.trim().is_empty())
    }

    /// The category to show: the assessment's name, else the item's category id.
    pub fn category_name(&self) -> Option<String> {
        self.assessment
            .category
            .as_ref()
            .map(|c| c.display_name().to_owned())
            .or_else(|| self.item.as_ref().and_then(|i| i.category.clone()))
            .filter(|c| !c.trim().is_empty())
    }

    /// Why the backend is not sure, in words.
    pub fn uncertainty_reason(&self) -> Option<&'static str> {
        match self.assessment.uncertainty.as_deref()? {
            "low_confidence" => Some("the model's best guess is not confident enough"),
            "not_a_product" => {
                Some("what the model sees is not a product or piece of waste we know")
            }
            "no_predictions" => Some("the model gave no usable answer"),
            _ => None,
        }
    }

    /// The timings the backend reported, in milliseconds; one level of nesting is flattened
    /// (`{"ml":{"inference":14.2}}` → `ml.inference`).
    pub fn timings(&self) -> Vec<(String, f64)> {
        let mut timings = Vec::new();
        for (name, value) in &self.timings_ms {
            match value {
                Value::Object(inner) => timings.extend(
                    inner
                        .iter()
                        .filter_map(|(k, v)| v.as_f64().map(|ms| (format!("{name}.{k}"), ms))),
                ),
                other => timings.extend(other.as_f64().map(|ms| (name.clone(), ms))),
            }
        }
        timings
    }

    /// Labels of the classes that counted towards the decision, whatever shape each takes
    /// (a plain string or an object with a `label`).
    pub fn contributing_labels(&self) -> Vec<String> {
        self.assessment
            .contributing
            .iter()
            .filter_map(|entry| match entry {
                Value::String(label) => Some(label.clone()),
                Value::Object(fields) => fields
                    .get("label")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            })
            .collect()
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `0.8734` → `"87.3%"`; values outside 0..=1 are clamped.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", (fraction.clamp(0.0, 1.0)) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Analysis {
        serde_json::from_value(value).expect("an analysis is always readable")
    }

    #[test]
    fn reads_the_backend_answer() {
        let analysis = parse(serde_json::json!({
            "item": {"label": "beer bottle", "class_index": 440, "confidence": 0.91, "category": "drink-bottles"},
            "classification": {"model": {"name": "efficientnet-lite0", "version": "1", "input_size": 224},
                               "predictions": [{"label": "beer bottle", "class_index": 440, "probability": 0.91}]},
            "assessment": {"known": true, "strategy": "top1", "confidence": 0.91,
                           "summary": "Looks like a drink bottle.",
                           "category": {"id": "drink-bottles", "name": "Drink bottles"},
                           "materials": ["glass"], "recyclable": true, "reusable": true, "resellable": false,
                           "biodegradable": false, "functional_categories": ["container"],
                           "disposal": "Rinse and recycle.",
                           "tips": [{"kind": "reuse", "text": "Refill it"}],
                           "carbon_note": "About 80 g CO2e.",
                           "contributing": [{"label": "beer bottle", "class_index": 440, "probability": 0.91}]},
            "timings_ms": {"ml_total": 31.5, "ml": {"inference": 14.2, "decode": 3.0}},
            "served_by": ["backend/stable", "ml/stable"]
        }));
        assert_eq!(
            analysis.item.as_ref().map(|i| i.label.as_str()),
            Some("beer bottle")
        );
        assert_eq!(analysis.classification.predictions[0].index, Some(440));
        assert_eq!(analysis.category_name().as_deref(), Some("Drink bottles"));
        assert_eq!(analysis.assessment.tips[0].display(), "Reuse: Refill it");
        assert_eq!(analysis.assessment.recyclable, Some(true));
        assert!(!analysis.is_unknown());
        assert_eq!(
            analysis.timings(),
            vec![
                ("ml.decode".to_owned(), 3.0),
                ("ml.inference".to_owned(), 14.2),
                ("ml_total".to_owned(), 31.5)
            ]
        );
        assert_eq!(
            analysis.contributing_labels(),
            vec!["beer bottle".to_owned()]
        );
        assert_eq!(analysis.served_by, vec!["backend/stable", "ml/stable"]);
    }

    #[test]
    fn reads_the_simpler_shapes_too() {
        let analysis = parse(serde_json::json!({
            "item": {"label": "mug", "category": "cups"},
            "classification": {"predictions": [{"label": "mug", "index": 504, "probability": 0.5}]},
            "assessment": {"category": "cups", "tips": ["Keep it"], "contributing": ["mug"]},
            "extra": {"x": 1}
        }));
        assert_eq!(analysis.classification.predictions[0].index, Some(504));
        assert_eq!(analysis.category_name().as_deref(), Some("cups"));
        assert_eq!(analysis.assessment.tips[0].display(), "Keep it");
        assert_eq!(analysis.contributing_labels(), vec!["mug".to_owned()]);
    }

    #[test]
    fn a_field_of_the_wrong_shape_falls_back_to_its_default() {
        let analysis = parse(serde_json::json!({
            "item": {"label": "mug", "confidence": "high"},
            "assessment": {"recyclable": "yes", "tips": 3, "materials": null},
            "served_by": "backend/stable"
        }));
        let item = analysis.item.expect("item kept");
        assert_eq!(item.label, "mug");
        assert_eq!(item.confidence, None);
        assert_eq!(analysis.assessment.recyclable, None);
        assert!(analysis.assessment.tips.is_empty());
        assert!(analysis.assessment.materials.is_empty());
        assert!(analysis.served_by.is_empty());
    }

    #[test]
    fn unknown_when_the_backend_says_so_or_names_nothing() {
        let analysis = parse(serde_json::json!({
            "item": {"label": "tabby cat"},
            "assessment": {"known": false, "uncertainty": "not_a_product"}
        }));
        assert!(analysis.is_unknown());
        assert!(analysis.uncertainty_reason().is_some());
        assert!(parse(serde_json::json!({"item": null})).is_unknown());
        assert!(!parse(serde_json::json!({"item": {"label": "mug"}})).is_unknown());
    }

    #[test]
    fn percent_rounds_and_clamps() {
        assert_eq!(percent(0.8734), "87.3%");
        assert_eq!(percent(1.2), "100.0%");
        assert_eq!(percent(-0.1), "0.0%");
    }
}
