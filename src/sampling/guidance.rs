//! Classifier guidance: a score function for samples of chosen classes from an unconditional
//! model, by Bayes' rule for scores (Song et al. 2021, §5, eq. 14):
//!
//! ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p_t(y | x),
//!
//! with the second term scaled by w (Dhariwal & Nichol 2021, §4: w > 1 trades diversity for
//! samples that are more clearly of their class; w = 1 is the exact conditional score). The
//! classifier p_σ(y | x̂) is trained on x̂ = x(0) + σ̂·z ([`crate::classifier`]); a VP state is
//! x(t) = m(t)·x̂ with σ̂ = σ(t)/m(t), so ∇ₓ log p_t(y | x) = (1/m)·∇ₓ̂ log p_σ̂(y | x̂) at x̂ = x/m.
//!
//! Guidance acts only at noise levels σ̂ in (`min_sigma`, `max_sigma`] (Kynkäänniemi et al. 2024,
//! "Applying guidance in a limited interval improves sample and distribution quality in diffusion
//! models"). Measured here (docs/EVALUATION.md, "Guided generation"): a digit's class is settled
//! above σ ≈ 2, so guidance bounded to σ ≤ 2 hardly moves it (18 % of samples of the requested
//! class at w = 1), while below σ ≈ 0.5 the small classifier's gradient only adds speckle to strokes
//! that are already drawn; so the default interval is (0.5, ∞).
//!
//! `Guided` is a [`ScoreFn`] like any other: every sampler, inpainting among them, runs guided
//! without knowing it.

use burn::prelude::*;

use super::ScoreFn;
use crate::error::SampleError;
use crate::sde::Sde;

/// The guidance scale w the page and the CLI start with (measured: docs/EVALUATION.md,
/// "Guided generation": with the shipped classifier, w = 2 gives 96 % of the requested class at
/// 93 % confident; w = 4, 99 % but stereotyped digits, 4.9 × the Fréchet floor).
pub const DEFAULT_GUIDANCE: f64 = 2.0;
/// Guidance acts at noise levels in (min, max] σ̂ (measured: docs/EVALUATION.md, "Guided generation").
pub const DEFAULT_GUIDANCE_MIN_SIGMA: f64 = 0.5;
pub const DEFAULT_GUIDANCE_MAX_SIGMA: f64 = f64::INFINITY;
/// The largest scale accepted: far beyond it the classifier's gradient swamps the score and the
/// samples leave the data.
pub const MAX_GUIDANCE: f64 = 100.0;

/// Which classes to draw and how strongly.
#[derive(Clone, Debug, PartialEq)]
pub struct Guidance {
    /// Image b of a batch is drawn from class `classes[b % classes.len()]`: one class for the
    /// whole batch, or a cycle (0, 1, …, 9, 0, …) for a grid of every digit.
    pub classes: Vec<usize>,
    /// w: 0 is unguided, 1 the conditional score by Bayes' rule, more sharpens.
    pub scale: f64,
    /// Guidance acts at noise levels min_sigma < σ̂ ≤ max_sigma (0 and ∞: at every level).
    pub min_sigma: f64,
    pub max_sigma: f64,
}

impl Guidance {
    /// Guidance to `classes` at scale w, over the default interval.
    pub fn new(classes: Vec<usize>, scale: f64) -> Self {
        Self { classes, scale, min_sigma: DEFAULT_GUIDANCE_MIN_SIGMA, max_sigma: DEFAULT_GUIDANCE_MAX_SIGMA }
    }

    /// Checks the classes against the classifier's K and the scale against its limits.
    pub fn validate(&self, classes: usize) -> Result<(), SampleError> {
        if self.classes.is_empty() {
            return Err(SampleError::invalid("class", "names no class"));
        }
        if let Some(&c) = self.classes.iter().find(|&&c| c >= classes) {
            return Err(SampleError::invalid("class", format!("must be one of the classifier's {classes} classes, 0..{classes}, got {c}")));
        }
        if !(self.scale.is_finite() && (0.0..=MAX_GUIDANCE).contains(&self.scale)) {
            return Err(SampleError::invalid("guidance", format!("must be in [0, {MAX_GUIDANCE}], got {}", self.scale)));
        }
        super::check_sigma_interval(self.min_sigma, self.max_sigma, "guidanceMinSigma", "guidanceMaxSigma")
    }

    /// The same guidance for a run whose image 0 is image `first` of the whole run: the class
    /// cycle starts where that image's class is.
    pub fn from_sample(mut self, first: u64) -> Self {
        if !self.classes.is_empty() {
            let shift = (first % self.classes.len() as u64) as usize;
            self.classes.rotate_left(shift);
        }
        self
    }

    fn labels(&self, batch: usize) -> Vec<usize> {
        (0..batch).map(|b| self.classes[b % self.classes.len()]).collect()
    }
}

/// A noise-conditional classifier as guidance needs it: its number of classes, and
/// ∇ₓ̂ Σ_b log p_σ̂(y_b | x̂_b) for a batch x̂ [B, C, H, W] at noise level σ̂ (the VE-form state
/// x(0) + σ̂·z), one label per image.
pub trait ClassGradient {
    fn classes(&self) -> usize;
    fn grad_log_prob(&self, x: Tensor<4>, sigma: f64, labels: &[usize]) -> Tensor<4>;
}

/// The guided score s(x, t) + w·∇ₓ log p_t(y | x), or, without a guide, s itself: the one score
/// function every caller samples with, guided or not.
pub struct Guided<'a, S, C> {
    score: S,
    sde: Sde,
    guide: Option<(&'a C, Guidance)>,
}

impl<'a, S: ScoreFn, C: ClassGradient> Guided<'a, S, C> {
    /// Checks the guidance against its classifier (its number of classes).
    pub fn new(score: S, sde: Sde, guide: Option<(&'a C, Guidance)>) -> Result<Self, SampleError> {
        if let Some((classifier, guidance)) = &guide {
            guidance.validate(classifier.classes())?;
        }
        Ok(Self { score, sde, guide })
    }

    /// The score it guides.
    pub fn inner(&self) -> &S {
        &self.score
    }
}

/// With x(t) = m·x̂: ∇ₓ log p_t(y | x) = (1/m)·∇ₓ̂ log p_σ̂(y | x̂) at x̂ = x/m, σ̂ = σ(t)/m(t).
impl<S: ScoreFn, C: ClassGradient> ScoreFn for Guided<'_, S, C> {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let base = self.score.score(x.clone(), t);
        let Some((classifier, guidance)) = &self.guide else { return base };
        let (m, s) = self.sde.marginal(t);
        if guidance.scale == 0.0 || !super::in_sigma_interval(s / m, guidance.min_sigma, guidance.max_sigma) {
            return base;
        }
        let labels = guidance.labels(x.dims()[0]);
        let grad = classifier.grad_log_prob(x / m, s / m, &labels);
        base + grad * (guidance.scale / m)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::log_softmax;

    use super::*;
    use crate::mixture::Mixture;

    /// A run split at image `first` keeps every image's class: image b of the part is image
    /// first + b of the whole run, of class classes[(first + b) mod len].
    #[test]
    fn a_part_of_a_run_keeps_each_images_class() {
        let all = Guidance::new((0..10).collect(), 1.0);
        let whole = all.labels(25);
        for first in [0usize, 3, 10, 17] {
            assert_eq!(all.clone().from_sample(first as u64).labels(25 - first), whole[first..], "split at {first}");
        }
        assert_eq!(Guidance::new(vec![7], 1.0).from_sample(5).labels(3), [7, 7, 7]);
    }

    /// The exact p_σ̂(k | x̂) of a Gaussian mixture's components, x̂ = x(0) + σ̂·z: components
    /// N(μ_k, (s_k² + σ̂²) I), differentiated by autodiff like the network.
    struct ExactPosterior(Mixture);

    impl ClassGradient for ExactPosterior {
        fn classes(&self) -> usize {
            self.0.components()
        }

        fn grad_log_prob(&self, x: Tensor<4>, sigma: f64, labels: &[usize]) -> Tensor<4> {
            let [b, c, h, w] = x.dims();
            let d = c * h * w;
            let x = x.without_autodiff().autodiff().require_grad();
            let device = x.device();
            let flat = x.clone().reshape([b, d]);
            let logits: Vec<Tensor<2>> = (0..self.0.components())
                .map(|k| {
                    let v = self.0.stds[k].powi(2) + sigma * sigma;
                    let mu = Tensor::<2>::from_data(TensorData::new(self.0.means[k].iter().map(|&m| m as f32).collect(), [1, d]), &device);
                    (flat.clone() - mu).powi_scalar(2).sum_dim(1) * (-0.5 / v) + (self.0.weights[k].ln() - 0.5 * d as f64 * v.ln())
                })
                .collect();
            let one_hot: Vec<f32> = labels.iter().flat_map(|&y| (0..self.0.components()).map(move |k| if k == y { 1.0 } else { 0.0 })).collect();
            let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b, self.0.components()]), &device);
            let log_p = (log_softmax(Tensor::cat(logits, 1), 1) * one_hot).sum();
            x.grad(&log_p.backward()).expect("x requires grad")
        }
    }

    /// Bayes' rule for scores: with the exact classifier and w = 1, the guided score of a mixture
    /// is the score of the chosen component alone, ∇ₓ log N(x; m μ_y, (m² s_y² + σ²) I) =
    /// (m μ_y − x)/(m² s_y² + σ²), on VE and VP (where the classifier sees x/m at σ/m).
    #[test]
    fn guidance_at_scale_one_gives_the_chosen_components_score() {
        let device = Device::flex();
        let mixture = Mixture::new(vec![0.3, 0.7], vec![vec![-1.0, 0.5], vec![1.5, -0.5]], vec![0.3, 0.5]).unwrap();
        let points = [[0.2f32, 0.1], [-0.8, 0.4], [2.0, -1.0], [0.0, 0.0]];
        let x = Tensor::<4>::from_data(TensorData::new(points.iter().flatten().copied().collect::<Vec<_>>(), [4, 2, 1, 1]), &device);
        let posterior = ExactPosterior(mixture.clone());
        for sde in [Sde::ve(10.0), Sde::vp()] {
            for t in [0.1, 0.4, 0.8] {
                let (m, sigma) = sde.marginal(t);
                let score = mixture.score_fn(&sde);
                let guidance = Guidance { classes: vec![1, 0], scale: 1.0, min_sigma: 0.0, max_sigma: f64::INFINITY };
                let guided: Vec<f32> = Guided::new(score, sde, Some((&posterior, guidance))).unwrap().score(x.clone(), t).into_data().try_to_vec::<f32>().unwrap();
                for (b, p) in points.iter().enumerate() {
                    let y = [1, 0][b % 2];
                    let v = m * m * mixture.stds[y].powi(2) + sigma * sigma;
                    for i in 0..2 {
                        let exact = (m * mixture.means[y][i] - p[i] as f64) / v;
                        let got = guided[b * 2 + i] as f64;
                        assert!((got - exact).abs() <= 1e-3 * (1.0 + exact.abs()), "{} t = {t}, point {b}, coordinate {i}: guided {got} vs component score {exact}", sde.name());
                    }
                }
            }
        }
    }

    /// Bad classes and scales are named; the cycle assigns classes by position.
    #[test]
    fn guidance_is_checked_and_cycles_its_classes() {
        let ok = Guidance::new(vec![0, 1, 2], 1.0);
        ok.validate(10).unwrap();
        assert_eq!(ok.labels(7), vec![0, 1, 2, 0, 1, 2, 0]);
        let field = |g: Guidance| match g.validate(10).unwrap_err() {
            SampleError::InvalidOption { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field(Guidance::new(vec![10], 1.0)), "class");
        assert_eq!(field(Guidance::new(vec![], 1.0)), "class");
        assert_eq!(field(Guidance::new(vec![3], f64::NAN)), "guidance");
        assert_eq!(field(Guidance::new(vec![3], -1.0)), "guidance");
        assert_eq!(field(Guidance::new(vec![3], 1e9)), "guidance");
        assert_eq!(field(Guidance { max_sigma: f64::NAN, ..Guidance::new(vec![3], 1.0) }), "guidanceMaxSigma");
    }
}
