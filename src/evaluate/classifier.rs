//! The evaluation's classifier: a small convolutional network trained on the training split,
//! whose class probabilities and penultimate features score the samples.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use serde::{Deserialize, Serialize};

use crate::data::Images;
use crate::train::classifier::Epochs;
use crate::rng::SplitMix;

/// The classifier's training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// The images it classifies, [C, H, W] (absent in the digit classifier's records: 1×28×28).
    #[serde(default = "digit_shape")]
    pub image: [usize; 3],
    /// Classes (absent in the digit classifier's records: 10).
    #[serde(default = "digit_classes")]
    pub classes: usize,
    /// Channels of the three 3×3 convolutions (the last two stride 2: 28 → 14 → 7, 32 → 16 → 8).
    pub channels: [usize; 3],
    /// Width of the penultimate layer: the features of the Fréchet distance.
    pub features: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's learning rate; divided by 10 for the last quarter of the epochs.
    pub learning_rate: f64,
    /// Training images are shifted by up to this many pixels in x and y.
    pub max_shift: usize,
    /// The value the shift fills in: the data's background (0, black, for digits; 1, white, for
    /// emoji on white).
    #[serde(default)]
    pub shift_fill: f32,
    pub seed: u64,
}

fn digit_shape() -> [usize; 3] {
    [1, crate::data::mnist::SIDE, crate::data::mnist::SIDE]
}

fn digit_classes() -> usize {
    crate::data::mnist::CLASSES
}

impl Default for ClassifierConfig {
    /// The digit classifier.
    fn default() -> Self {
        Self { image: digit_shape(), classes: digit_classes(), channels: [16, 32, 64], features: 128, epochs: 10, batch_size: 64, learning_rate: 1e-3, max_shift: 2, shift_fill: 0.0, seed: 7 }
    }
}

impl ClassifierConfig {
    /// The same network and training for another set of images: its shape and classes, and the
    /// shift filling with white when the images sit on white (their corner pixels are).
    pub fn for_images(data: &Images) -> Self {
        let white = !data.is_empty() && data.image(0)[0] == 255;
        Self { image: data.shape, classes: data.classes.len(), shift_fill: if white { 1.0 } else { 0.0 }, ..Self::default() }
    }
}

/// conv 3×3 → ReLU ×3 (strides 1, 2, 2), dense → ReLU (features), dense (logits).
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    dense: Linear,
    head: Linear,
}

impl ClassifierConfig {
    pub fn init(&self, device: &Device) -> Classifier {
        let [c1, c2, c3] = self.channels;
        let conv = |c_in: usize, c_out: usize, stride: usize| {
            Conv2dConfig::new([c_in, c_out], [3, 3]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
        };
        // A 3×3 convolution of stride 2 and padding 1 takes n to ⌈n/2⌉.
        let [c, h, w] = self.image;
        Classifier {
            conv1: conv(c, c1, 1),
            conv2: conv(c1, c2, 2),
            conv3: conv(c2, c3, 2),
            dense: LinearConfig::new(c3 * h.div_ceil(4) * w.div_ceil(4), self.features).init(device),
            head: LinearConfig::new(self.features, self.classes).init(device),
        }
    }
}

impl Classifier {
    /// - `x`: [B, C, H, W], pixel values in [0, 1]
    /// - returns (features [B, F], logits [B, K])
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let b = x.dims()[0];
        let h = relu(self.conv1.forward(x)); // [B, c1, H, W]
        let h = relu(self.conv2.forward(h)); // [B, c2, ⌈H/2⌉, ⌈W/2⌉]
        let h = relu(self.conv3.forward(h)); // [B, c3, ⌈H/4⌉, ⌈W/4⌉]
        let n = h.dims()[1..].iter().product::<usize>();
        let features = relu(self.dense.forward(h.reshape([b, n]))); // [B, F]
        let logits = self.head.forward(features.clone()); // [B, K]
        (features, logits)
    }
}

/// Trains the classifier with Adam on cross-entropy, in shuffled mini-batches; returns it and the
/// mean loss of its last epoch.
pub fn train_classifier(train: &Images, config: &ClassifierConfig, device: &Device) -> (Classifier, f64) {
    let ad = device.clone().autodiff();
    ad.seed(config.seed);
    let mut rng = SplitMix::new(config.seed);
    let schedule = Epochs { epochs: config.epochs, batch_size: config.batch_size, learning_rate: config.learning_rate };
    let [c, h, w] = train.shape;
    let (model, last_epoch_loss) = schedule.fit(config.init(&ad), &train.labels, &mut rng, |model, idx, rng| {
        let pixels: Vec<f32> = idx.iter().flat_map(|&i| shifted(train.image(i), train.shape, config.max_shift, config.shift_fill, rng)).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [idx.len(), c, h, w]), &ad);
        model.forward(x).1
    }, |model| model, |_, _| {});
    (model.valid(), last_epoch_loss)
}

/// The C×H×W image moved by a random (dx, dy) in −max..=max (every channel alike), as values in
/// [0, 1], the uncovered pixels set to `fill`.
pub(super) fn shifted(image: &[u8], [c, h, w]: [usize; 3], max: usize, fill: f32, rng: &mut SplitMix) -> Vec<f32> {
    let span = 2 * max + 1;
    let (dx, dy) = (rng.below(span) as isize - max as isize, rng.below(span) as isize - max as isize);
    let (h, w) = (h as isize, w as isize);
    (0..c as isize * h * w)
        .map(|p| {
            let (ch, y, x) = (p / (h * w), (p / w) % h - dy, p % w - dx);
            if (0..h).contains(&y) && (0..w).contains(&x) { image[(ch * h * w + y * w + x) as usize] as f32 / 255.0 } else { fill }
        })
        .collect()
}

/// The classifier's view of a set of images.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// [N][K] class probabilities.
    pub probs: Vec<Vec<f64>>,
    /// [N × F] penultimate features, row-major.
    pub features: Vec<f64>,
    pub feature_dim: usize,
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.probs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// Classes K.
    pub fn classes(&self) -> usize {
        self.probs.first().map_or(0, |p| p.len())
    }

    /// Predicted class of each image.
    pub fn labels(&self) -> Vec<usize> {
        self.probs.iter().map(|p| argmax(p)).collect()
    }

    /// The predictions of the given images only.
    pub fn select(&self, idx: &[usize]) -> Predictions {
        let f = self.feature_dim;
        Predictions {
            probs: idx.iter().map(|&i| self.probs[i].clone()).collect(),
            features: idx.iter().flat_map(|&i| self.features[i * f..(i + 1) * f].iter().copied()).collect(),
            feature_dim: f,
        }
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter().enumerate().fold(0, |best, (k, &v)| if v > p[best] { k } else { best })
}

/// Classifies images (pixel values, [N, C, H, W] row-major with [C, H, W] = `shape`; clamped to
/// [0, 1] first, as they would be displayed) in batches of `batch`.
pub fn predict(classifier: &Classifier, pixels: &[f32], shape: [usize; 3], batch: usize, device: &Device) -> Predictions {
    let per: usize = shape.iter().product();
    let mut out = Predictions { probs: Vec::new(), features: Vec::new(), feature_dim: 0 };
    for chunk in pixels.chunks(per * batch.max(1)) {
        let b = chunk.len() / per;
        let x = Tensor::<4>::from_data(TensorData::new(chunk.iter().map(|v| v.clamp(0.0, 1.0)).collect(), [b, shape[0], shape[1], shape[2]]), device);
        let (features, logits) = classifier.forward(x);
        out.feature_dim = features.dims()[1];
        let k = logits.dims()[1];
        let probs = softmax(logits, 1).into_data().try_to_vec::<f32>().expect("f32 probabilities");
        out.probs.extend(probs.chunks(k).map(|p| p.iter().map(|&v| v as f64).collect::<Vec<f64>>()));
        out.features.extend(features.into_data().try_to_vec::<f32>().expect("f32 features").into_iter().map(|v| v as f64));
    }
    out
}
