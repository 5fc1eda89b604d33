//! A run's randomness: per-sample host streams for sampling, reseeded device draws for training.

use burn::prelude::*;
use burn::tensor::Distribution;

/// A run's source of randomness (habit: randomness is passed in, seeded, never global).
///
/// Two kinds of stream:
/// - **per sample** ([`Noise::per_sample`], every sampling run): row b of a draw is the sample
///   with index `first + b` in the seed's sequence, and its numbers come from a host SplitMix64
///   stream keyed by (seed, index, draw), uploaded as a tensor. A sample's noise therefore does
///   not depend on the batch it is drawn in: a batch split across workers (each part given its
///   `first_sample`) gives the same samples as the whole batch, and the CPU and WebGPU draw the
///   same numbers.
/// - **on the device** ([`Noise::new`], training and the 2-D explainer): Burn's device generators
///   are shared by everything on the device (and, on some backends, the process); a run that
///   seeded once and then drew would replay or skip noise whenever another run drew in between. So
///   every draw reseeds the device with a hash of (run seed, draw index), synchronously just before
///   drawing: a run's noise depends on its seed alone (and the checkpointed training run keeps the
///   stream it was trained with).
pub struct Noise {
    seed: u64,
    draws: u64,
    /// Per-sample streams: the index of row 0.
    first: Option<u64>,
}

impl Noise {
    /// A stream drawn on the device.
    pub fn new(seed: u64) -> Self {
        Self { seed, draws: 0, first: None }
    }

    /// Per-sample streams on the host; row b of every draw belongs to sample `first + b`.
    pub fn per_sample(seed: u64, first: u64) -> Self {
        Self { seed, draws: 0, first: Some(first) }
    }

    /// Continues a device stream after `draws` draws (to resume a saved run).
    pub fn resume(seed: u64, draws: u64) -> Self {
        Self { seed, draws, first: None }
    }

    /// Draws so far.
    pub fn draws(&self) -> u64 {
        self.draws
    }

    /// The seed of this draw, different for every (run seed, draw).
    fn next_draw(&mut self) -> u64 {
        // SplitMix64's output function of (seed, draw): distinct, well-mixed seeds per draw.
        let key = crate::rng::mix(self.seed ^ self.draws.wrapping_mul(crate::rng::GOLDEN_GAMMA));
        self.draws += 1;
        key
    }

    fn reseed(&mut self, device: &Device) {
        device.seed(self.next_draw());
    }

    /// Seeds the device generator from this stream (one draw), for random ops that draw from the
    /// device themselves (dropout inside a training forward pass).
    pub fn seed_device(&mut self, device: &Device) {
        self.reseed(device);
    }

    /// A per-sample draw: row b from the SplitMix64 stream of (seed, image first + b, draw)
    /// ([`crate::rng::stream_key`]).
    fn host_rows(&mut self, first: u64, shape: [usize; 4], device: &Device, value: impl Fn(&mut crate::rng::SplitMix) -> f32) -> Tensor<4> {
        let draw = self.draws;
        self.draws += 1;
        let per_row: usize = shape[1..].iter().product();
        let mut values = Vec::with_capacity(shape[0] * per_row);
        for b in 0..shape[0] as u64 {
            let mut rng = crate::rng::SplitMix::new(crate::rng::stream_key(self.seed, first.wrapping_add(b), draw));
            values.extend((0..per_row).map(|_| value(&mut rng)));
        }
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// N(0, std²) noise of the given shape.
    pub fn normal(&mut self, shape: [usize; 4], std: f64, device: &Device) -> Tensor<4> {
        if let Some(first) = self.first {
            return self.host_rows(first, shape, device, |r| (r.normal() * std) as f32);
        }
        self.reseed(device);
        Tensor::random(shape, Distribution::Normal(0.0, std), device)
    }

    /// Standard normal noise shaped like `x`.
    pub fn normal_like(&mut self, x: &Tensor<4>) -> Tensor<4> {
        self.normal(x.dims(), 1.0, &x.device())
    }

    /// Uniform noise on [lo, hi) of the given shape.
    pub fn uniform(&mut self, shape: [usize; 4], lo: f64, hi: f64, device: &Device) -> Tensor<4> {
        if let Some(first) = self.first {
            return self.host_rows(first, shape, device, |r| (lo + (hi - lo) * r.uniform()) as f32);
        }
        self.reseed(device);
        Tensor::random(shape, Distribution::Uniform(lo, hi), device)
    }
}
