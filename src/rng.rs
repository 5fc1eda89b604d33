//! The host's random numbers, in one place: SplitMix64 (Steele, Lea & Flood 2014, "Fast
//! splittable pseudorandom number generators"), a generator whose whole state is one u64, so that
//! a training run saves and resumes it exactly and every platform draws the same numbers. A
//! sampling run's noise comes from here too, one stream per image (`sampling::Noise::per_sample`);
//! the trainer's noise and dropout masks draw on the device (`sampling::Noise::new`, seeded per
//! draw with [`mix`]).

/// The golden-ratio increment of SplitMix64's state.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of a 64-bit word (also a good seed per draw of
/// a stream: `mix(seed ^ draw · GOLDEN_GAMMA)`).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream. Serialises as `{"state": u64}`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix {
    pub state: u64,
}

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in [0, n) (0 for n = 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1), on a grid of 2⁻⁵³.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in (0, 1): the midpoints of [`SplitMix::uniform`]'s grid, so that ln u is finite.
    pub fn open_uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in [0, 1) as f32, on a grid of 2⁻²⁴ (every value exact, none rounds up to 1).
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A standard normal number by Box–Muller from two open uniforms (the cosine branch; the sine
    /// is dropped so that one number costs two draws, whatever came before).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open_uniform(), self.open_uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64's reference outputs for seed 0 (the first three values of Vigna's splitmix64.c
    /// seeded with 0), so that the stream stays the published generator.
    #[test]
    fn matches_the_reference_stream() {
        let mut r = SplitMix::new(0);
        assert_eq!([r.next_u64(), r.next_u64(), r.next_u64()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]);
    }

    /// Mean 0 and variance 1 within 4 standard errors over 200,000 draws; uniforms stay in
    /// their intervals and `below` in range.
    #[test]
    fn normal_has_unit_moments_and_uniforms_their_ranges() {
        let mut r = SplitMix::new(42);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 4.0 / (n as f64).sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 4.0 * (2.0 / n as f64).sqrt(), "variance {var}");
        for _ in 0..10_000 {
            let (u, o) = (r.uniform(), r.open_uniform());
            assert!((0.0..1.0).contains(&u) && o > 0.0 && o < 1.0);
            assert!(r.below(7) < 7);
        }
        assert_eq!(r.below(0), 0);
    }
}
