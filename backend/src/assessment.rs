//! Turning a classification (the model's top-k predictions) into 3R guidance.
//!
//! Every class belongs to a knowledge-base *entry*: a product category or a not-a-product group
//! (animals, people, vehicles…). Both strategies add the top-k probabilities up per entry, so the
//! model's near-synonyms ("beer bottle", "wine bottle", "soda bottle") count together. They differ in
//! how much they trust the single best class, and the build decides which one answers
//! (`SERVICE_VERSION`, visible as `assessment.strategy`):
//! - **stable — `top1`**: a top class that reaches the minimum confidence decides on its own. Only
//!   when it does not, a category that holds a *majority* (more than half) of the top-k probability
//!   and reaches the minimum confidence answers instead.
//! - **canary — `category-aggregate`**: the entry with the *largest* sum answers whenever that sum
//!   reaches the minimum confidence, even over a confident top class of another entry.
//!
//! "desk 0.40, desktop computer 0.30, computer keyboard 0.20" is *furniture* for stable (the desk is
//! confident) and *computers* (0.50) for canary; "beer bottle 0.20 + wine bottle 0.20 + six others"
//! is *drink bottles* for canary (0.40, the plurality) and "not sure" for stable (no majority).
//!
//! When the deciding entry is a not-a-product group, the answer says what the photo shows and why
//! there is no disposal advice. Below the minimum confidence the answer is an honest "not sure what
//! this is", never a guess. The default threshold was calibrated on the fixture photos (see
//! `MinConfidence::DEFAULT`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::knowledge::{Category, Entry, KnowledgeBase, NotProduct, Tip};

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
    /// Trust the single most probable class; fall back to a category holding the majority.
    #[serde(rename = "top1")]
    Top1,
    /// Sum the top-k probabilities per knowledge-base entry; the largest sum wins.
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
    /// Calibrated on the fixture photos' recorded top-5 for both models (backend/tests/api/photos.rs
    /// sweeps it): every photo gets its expected answer from both strategies for thresholds 0.27 to
    /// 0.41; 0.35 sits inside that range with margin on both sides.
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

/// The not-a-product group that explains a "not a product" answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotProductRef {
    pub id: String,
    pub name: String,
    /// `an animal`, `a vehicle too large to be household waste`…
    pub reason: String,
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
    /// Set when the photo shows something the knowledge base deliberately gives no advice for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_a_product: Option<NotProductRef>,
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
        let tally = Tally::new(&self.knowledge, &ranked);
        let min = self.min_confidence.get();
        let largest = tally.largest();
        match self.strategy {
            Strategy::Top1 if top.probability >= min => {
                // Buckets are in order of first appearance, so the top class opened the first one.
                let owner = tally.buckets[0].owner;
                self.decide(owner, top.probability, top, vec![contribution(top)])
            }
            Strategy::Top1 => match largest {
                Some(b) if b.sum >= min && b.sum > MAJORITY * tally.total => {
                    self.decide(b.owner, b.sum, b.best, b.contributing.clone())
                }
                _ => self.not_sure(Uncertainty::LowConfidence, top.probability, Some(top)),
            },
            Strategy::CategoryAggregate => match largest {
                Some(b) if b.sum >= min => {
                    self.decide(b.owner, b.sum, b.best, b.contributing.clone())
                }
                Some(b) => self.not_sure(Uncertainty::LowConfidence, b.sum, Some(top)),
                None => self.not_sure(Uncertainty::LowConfidence, top.probability, Some(top)),
            },
        }
    }

    /// The answer once an owner has been chosen with enough confidence.
    fn decide(
        &self,
        owner: Owner<'_>,
        confidence: f64,
        best: &Prediction,
        contributing: Vec<Contribution>,
    ) -> Assessment {
        let confidence = confidence.min(1.0);
        match owner {
            Owner::Entry(Entry::Category(category)) => {
                known(self.strategy, category, confidence, contributing)
            }
            Owner::Entry(Entry::NotProduct(group)) => self.not_a_product(group, confidence, best),
            Owner::Unlisted(_) => self.not_sure(Uncertainty::NotAProduct, confidence, Some(best)),
        }
    }

    fn not_a_product(&self, group: &NotProduct, confidence: f64, best: &Prediction) -> Assessment {
        Assessment {
            summary: format!(
                "This looks like \"{}\" ({}), {}: not a product or waste item, so there is no disposal advice.",
                best.label,
                percent(confidence),
                group.reason
            ),
            not_a_product: Some(NotProductRef {
                id: group.id.clone(),
                name: group.name.clone(),
                reason: group.reason.clone(),
            }),
            disposal: group.explanation.clone(),
            ..self.not_sure(Uncertainty::NotAProduct, confidence, Some(best))
        }
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
            not_a_product: None,
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
        not_a_product: None,
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

/// The share of the top-k probability a category must hold for stable's fallback: a majority.
const MAJORITY: f64 = 0.5;

/// Who a class belongs to: a knowledge-base entry, or nobody (only in a partial knowledge base).
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    Entry(Entry<'a>),
    Unlisted(u32),
}

impl Owner<'_> {
    fn key(&self) -> (&str, u32) {
        match self {
            Owner::Entry(entry) => (entry.id(), 0),
            Owner::Unlisted(index) => ("", *index),
        }
    }
}

/// The summed probability of one owner's classes among the predictions.
struct Bucket<'a> {
    owner: Owner<'a>,
    sum: f64,
    /// Its most probable class.
    best: &'a Prediction,
    contributing: Vec<Contribution>,
}

/// The ranked predictions added up per owner, in the order owners first appear.
struct Tally<'a> {
    buckets: Vec<Bucket<'a>>,
    total: f64,
}

impl<'a> Tally<'a> {
    fn new(knowledge: &'a KnowledgeBase, ranked: &'a [Prediction]) -> Self {
        let mut buckets: Vec<Bucket<'a>> = Vec::new();
        for prediction in ranked {
            let owner = match knowledge.entry(prediction.class_index) {
                Some(entry) => Owner::Entry(entry),
                None => Owner::Unlisted(prediction.class_index),
            };
            match buckets.iter_mut().find(|b| b.owner.key() == owner.key()) {
                Some(bucket) => {
                    bucket.sum += prediction.probability;
                    bucket.contributing.push(contribution(prediction));
                }
                None => buckets.push(Bucket {
                    owner,
                    sum: prediction.probability,
                    best: prediction,
                    contributing: vec![contribution(prediction)],
                }),
            }
        }
        let total = ranked.iter().map(|p| p.probability).sum();
        Self { buckets, total }
    }

    /// The bucket with the largest sum; ties go to the one holding the higher-ranked prediction.
    fn largest(&self) -> Option<&Bucket<'a>> {
        self.buckets
            .iter()
            .fold(None, |best: Option<&Bucket<'a>>, b| match best {
                Some(best) if best.sum >= b.sum => Some(best),
                _ => Some(b),
            })
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
