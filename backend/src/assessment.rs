//! Turning a classification (the model's top-k predictions) into 3R guidance.
//!
//! Two strategies exist, and the build decides which one answers (`SERVICE_VERSION`):
//! - **stable — `top1`**: trust the model's single best class. If that class is in the knowledge base
//!   and its probability reaches the minimum confidence, its category answers.
//! - **canary — `category-aggregate`**: add up the probabilities of the top-k classes per knowledge-base
//!   category and let the category with the largest sum answer, listing the classes that contributed.
//!   "beer bottle 0.30 + wine bottle 0.25 + soda bottle 0.20" becomes *drink bottles* at 0.75, where
//!   `top1` would have seen a 0.30 beer bottle and said "not sure".
//!
//! Either way an answer below the minimum confidence, or one that points at something that is not a
//! product (an animal, a landscape…), is an honest "not sure what this is", never a guess.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::knowledge::{Category, KnowledgeBase, Tip};

/// One of the model's top-k answers, as ml reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub class_index: u32,
    pub probability: f64,
}

/// How predictions become a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Trust the single most probable class.
    #[serde(rename = "top1")]
    Top1,
    /// Sum the top-k probabilities per knowledge-base category; the largest sum wins.
    #[serde(rename = "category-aggregate")]
    CategoryAggregate,
}

impl Strategy {
    /// Stable builds trust top-1; canary builds aggregate by category.
    pub fn for_version(version: mesh::Version) -> Self {
        match version {
            mesh::Version::Stable => Strategy::Top1,
            mesh::Version::Canary => Strategy::CategoryAggregate,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Top1 => "top1",
            Strategy::CategoryAggregate => "category-aggregate",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The probability below which an answer is "not sure" (`MIN_CONFIDENCE`), in `(0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinConfidence(f64);

impl MinConfidence {
    pub const DEFAULT: MinConfidence = MinConfidence(0.35);

    pub fn parse(value: f64) -> Result<Self, InvalidConfidence> {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(Self(value))
        } else {
            Err(InvalidConfidence)
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for MinConfidence {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, thiserror::Error)]
#[error("expected a probability greater than 0 and at most 1, e.g. 0.35")]
pub struct InvalidConfidence;

impl FromStr for MinConfidence {
    type Err = InvalidConfidence;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: f64 = s.trim().parse().map_err(|_| InvalidConfidence)?;
        Self::parse(value)
    }
}

/// Why an assessment is "not sure".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Uncertainty {
    /// The model gave no usable predictions.
    NoPredictions,
    /// The best answer is below the minimum confidence.
    LowConfidence,
    /// The model is confident, but what it sees is not a product or waste item we know.
    NotAProduct,
}

impl Uncertainty {
    pub fn as_str(self) -> &'static str {
        match self {
            Uncertainty::NoPredictions => "no_predictions",
            Uncertainty::LowConfidence => "low_confidence",
            Uncertainty::NotAProduct => "not_a_product",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryRef {
    pub id: String,
    pub name: String,
}

/// A class whose probability counted towards the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub label: String,
    pub class_index: u32,
    pub probability: f64,
}

/// The 3R verdict on one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// `false` means "not sure what this is": no category, no flags, no item-specific advice.
    pub known: bool,
    pub strategy: Strategy,
    /// The probability the decision rests on: the top class's for `top1`, the category sum for
    /// `category-aggregate`, the best available answer's when not sure.
    pub confidence: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Uncertainty>,
    /// One sentence a person can read.
    pub summary: String,
    pub category: Option<CategoryRef>,
    pub materials: Vec<String>,
    pub recyclable: Option<bool>,
    pub reusable: Option<bool>,
    pub resellable: Option<bool>,
    pub biodegradable: Option<bool>,
    pub functional_categories: Vec<String>,
    pub disposal: String,
    pub tips: Vec<Tip>,
    pub carbon_note: Option<String>,
    /// Most probable first.
    pub contributing: Vec<Contribution>,
}

impl Assessment {
    /// The class that best represents the decision: the most probable contributing class when known,
    /// otherwise nothing.
    pub fn representative(&self) -> Option<&Contribution> {
        self.contributing.first()
    }
}

const NOT_SURE_DISPOSAL: &str = "We can't tell what this is from the photo, so we won't guess how to \
     dispose of it. Try again with the item alone, filling the frame, on a plain background and in \
     good light. Until then, check your local council's guidance before binning it.";

/// Makes assessments from predictions against one knowledge base.
#[derive(Debug, Clone)]
pub struct Assessor {
    knowledge: std::sync::Arc<KnowledgeBase>,
    strategy: Strategy,
    min_confidence: MinConfidence,
}

impl Assessor {
    pub fn new(
        knowledge: std::sync::Arc<KnowledgeBase>,
        strategy: Strategy,
        min_confidence: MinConfidence,
    ) -> Self {
        Self {
            knowledge,
            strategy,
            min_confidence,
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.knowledge
    }

    pub fn assess(&self, predictions: &[Prediction]) -> Assessment {
        let ranked = rank(predictions);
        let Some(top) = ranked.first() else {
            return self.not_sure(Uncertainty::NoPredictions, 0.0, None);
        };
        match self.strategy {
            Strategy::Top1 => self.top1(top),
            Strategy::CategoryAggregate => self.aggregate(&ranked),
        }
    }

    fn top1(&self, top: &Prediction) -> Assessment {
        if top.probability < self.min_confidence.get() {
            return self.not_sure(Uncertainty::LowConfidence, top.probability, Some(top));
        }
        match self.knowledge.category_of(top.class_index) {
            Some(category) => known(
                self.strategy,
                category,
                top.probability,
                vec![contribution(top)],
            ),
            None => self.not_sure(Uncertainty::NotAProduct, top.probability, Some(top)),
        }
    }

    fn aggregate(&self, ranked: &[Prediction]) -> Assessment {
        // Category id → (category, summed probability, contributors in rank order). Ties go to the
        // category that contains the higher-ranked prediction, so the result is deterministic.
        let mut order: Vec<&str> = Vec::new();
        let mut sums: HashMap<&str, (&Category, f64, Vec<Contribution>)> = HashMap::new();
        let mut best_other: Option<&Prediction> = None;
        for prediction in ranked {
            match self.knowledge.category_of(prediction.class_index) {
                Some(category) => {
                    let entry = sums.entry(category.id.as_str()).or_insert_with(|| {
                        order.push(category.id.as_str());
                        (category, 0.0, Vec::new())
                    });
                    entry.1 += prediction.probability;
                    entry.2.push(contribution(prediction));
                }
                None => {
                    if best_other.is_none() {
                        best_other = Some(prediction);
                    }
                }
            }
        }
        let mut winner: Option<&(&Category, f64, Vec<Contribution>)> = None;
        for id in &order {
            let candidate = &sums[id];
            if winner.is_none_or(|w| candidate.1 > w.1) {
                winner = Some(candidate);
            }
        }
        let top = &ranked[0];
        let Some((category, sum, contributing)) = winner else {
            let uncertainty = if top.probability < self.min_confidence.get() {
                Uncertainty::LowConfidence
            } else {
                Uncertainty::NotAProduct
            };
            return self.not_sure(uncertainty, top.probability, Some(top));
        };
        let sum = sum.min(1.0);
        // A single non-product class that outweighs the whole best category wins: a confident
        // "tabby cat" with a little "carton" mass is a cat, not a carton.
        if let Some(other) = best_other.filter(|other| other.probability > sum) {
            let uncertainty = if other.probability < self.min_confidence.get() {
                Uncertainty::LowConfidence
            } else {
                Uncertainty::NotAProduct
            };
            return self.not_sure(uncertainty, other.probability, Some(other));
        }
        if sum < self.min_confidence.get() {
            return self.not_sure(Uncertainty::LowConfidence, sum, Some(top));
        }
        known(self.strategy, category, sum, contributing.clone())
    }

    fn not_sure(
        &self,
        uncertainty: Uncertainty,
        confidence: f64,
        best: Option<&Prediction>,
    ) -> Assessment {
        let summary = match (uncertainty, best) {
            (Uncertainty::NotAProduct, Some(best)) => format!(
                "This looks like \"{}\" ({}), which is not a product or waste item we have guidance for.",
                best.label,
                percent(best.probability)
            ),
            (Uncertainty::LowConfidence, Some(best)) => format!(
                "Not sure what this is: the best guess, \"{}\", is only {} likely, below the {} needed to give advice.",
                best.label,
                percent(confidence),
                percent(self.min_confidence.get())
            ),
            _ => "Not sure what this is: the classifier gave no usable answer.".to_owned(),
        };
        Assessment {
            known: false,
            strategy: self.strategy,
            confidence,
            uncertainty: Some(uncertainty),
            summary,
            category: None,
            materials: Vec::new(),
            recyclable: None,
            reusable: None,
            resellable: None,
            biodegradable: None,
            functional_categories: Vec::new(),
            disposal: NOT_SURE_DISPOSAL.to_owned(),
            tips: Vec::new(),
            carbon_note: None,
            contributing: Vec::new(),
        }
    }
}

fn known(
    strategy: Strategy,
    category: &Category,
    confidence: f64,
    contributing: Vec<Contribution>,
) -> Assessment {
    let summary = match contributing.as_slice() {
        [only] => format!(
            "Identified \"{}\" ({}); guidance for: {}.",
            only.label,
            percent(confidence),
            category.name
        ),
        many => format!(
            "Identified {} at {}, adding up {}.",
            category.name,
            percent(confidence),
            many.iter()
                .map(|c| format!("\"{}\" {}", c.label, percent(c.probability)))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    };
    Assessment {
        known: true,
        strategy,
        confidence,
        uncertainty: None,
        summary,
        category: Some(CategoryRef {
            id: category.id.clone(),
            name: category.name.clone(),
        }),
        materials: category.materials.clone(),
        recyclable: Some(category.recyclable),
        reusable: Some(category.reusable),
        resellable: Some(category.resellable),
        biodegradable: Some(category.biodegradable),
        functional_categories: category.functional_categories.clone(),
        disposal: category.disposal.clone(),
        tips: category.tips.clone(),
        carbon_note: Some(category.carbon_note.clone()),
        contributing,
    }
}

/// Drops unusable entries (non-finite probabilities, repeated classes), clamps probabilities to
/// `[0, 1]` and orders most probable first (stable for ties, so ml's order breaks them).
fn rank(predictions: &[Prediction]) -> Vec<Prediction> {
    let mut seen = std::collections::HashSet::new();
    let mut ranked: Vec<Prediction> = predictions
        .iter()
        .filter(|p| p.probability.is_finite() && seen.insert(p.class_index))
        .map(|p| Prediction {
            probability: p.probability.clamp(0.0, 1.0),
            ..p.clone()
        })
        .collect();
    ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    ranked
}

fn contribution(prediction: &Prediction) -> Contribution {
    Contribution {
        label: prediction.label.clone(),
        class_index: prediction.class_index,
        probability: prediction.probability,
    }
}

fn percent(probability: f64) -> String {
    format!("{:.0} %", probability * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_confidence_accepts_probabilities_only() {
        assert_eq!(
            "0.5".parse::<MinConfidence>().ok(),
            Some(MinConfidence(0.5))
        );
        assert_eq!("1".parse::<MinConfidence>().ok(), Some(MinConfidence(1.0)));
        for bad in ["0", "-0.1", "1.5", "NaN", "inf", "half", ""] {
            assert!(bad.parse::<MinConfidence>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn strategy_follows_the_build() {
        assert_eq!(Strategy::for_version(mesh::Version::Stable), Strategy::Top1);
        assert_eq!(
            Strategy::for_version(mesh::Version::Canary),
            Strategy::CategoryAggregate
        );
        assert_eq!(
            serde_json::to_value(Strategy::CategoryAggregate).ok(),
            Some(serde_json::json!("category-aggregate"))
        );
    }

    #[test]
    fn ranking_sorts_clamps_and_drops_junk() {
        let p = |i: u32, probability: f64| Prediction {
            label: format!("c{i}"),
            class_index: i,
            probability,
        };
        let ranked = rank(&[p(1, 0.2), p(2, f64::NAN), p(3, 1.7), p(1, 0.9), p(4, -1.0)]);
        let order: Vec<(u32, f64)> = ranked
            .iter()
            .map(|p| (p.class_index, p.probability))
            .collect();
        assert_eq!(order, vec![(3, 1.0), (1, 0.2), (4, 0.0)]);
    }
}
