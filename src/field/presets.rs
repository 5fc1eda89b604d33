//! The explainer's distributions: the presets a reader picks, as exact mixtures.

use std::str::FromStr;

use serde::Serialize;

use crate::error::ConfigError;
use crate::mixture::Mixture;

/// The distributions a reader can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// (1/5) N((−5, −5), I) + (4/5) N((5, 5), I): Song & Ermon 2019's example of Langevin
    /// dynamics getting the weights wrong (§3.2.2, figure 3).
    TwoModes,
    /// Eight modes on a circle of radius 5, std 0.5, with weights alternating 2 : 1.
    Ring,
    /// Two interleaving half circles (256 points, smoothed).
    Moons,
    /// A two-turn spiral (256 points, smoothed).
    Spiral,
}

/// A preset as the page and the widget describe it.
#[derive(Clone, Debug, Serialize)]
pub struct PresetInfo {
    pub name: &'static str,
    pub label: &'static str,
    /// Whether the preset has a few modes whose shares the readout compares with their weights.
    pub modes: bool,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::TwoModes, Preset::Ring, Preset::Moons, Preset::Spiral];

    pub fn name(self) -> &'static str {
        match self {
            Preset::TwoModes => "two-modes",
            Preset::Ring => "ring",
            Preset::Moons => "moons",
            Preset::Spiral => "spiral",
        }
    }

    pub fn info(self) -> PresetInfo {
        let label = match self {
            Preset::TwoModes => "Two modes, weights 1/5 and 4/5",
            Preset::Ring => "A ring of eight modes",
            Preset::Moons => "Two moons",
            Preset::Spiral => "A spiral",
        };
        PresetInfo { name: self.name(), label, modes: matches!(self, Preset::TwoModes | Preset::Ring) }
    }

    pub fn mixture(self) -> Mixture {
        let built = match self {
            Preset::TwoModes => Mixture::new(vec![0.2, 0.8], vec![vec![-5.0, -5.0], vec![5.0, 5.0]], vec![1.0, 1.0]),
            Preset::Ring => {
                let angle = |k: usize| std::f64::consts::TAU * k as f64 / 8.0;
                let means = (0..8).map(|k| vec![5.0 * angle(k).cos(), 5.0 * angle(k).sin()]).collect();
                let weights = (0..8).map(|k| if k % 2 == 0 { 2.0 } else { 1.0 }).collect();
                Mixture::new(weights, means, vec![0.5; 8])
            }
            Preset::Moons => {
                let n = 128;
                let theta = |i: usize| std::f64::consts::PI * i as f64 / (n - 1) as f64;
                // The unit moons (cos θ, sin θ) and (1 − cos θ, ½ − sin θ), centred and scaled by 3.5.
                let upper = (0..n).map(|i| vec![3.5 * (theta(i).cos() - 0.5), 3.5 * (theta(i).sin() - 0.25)]);
                let lower = (0..n).map(|i| vec![3.5 * (0.5 - theta(i).cos()), 3.5 * (0.25 - theta(i).sin())]);
                Mixture::from_points(upper.chain(lower).collect(), 0.25)
            }
            Preset::Spiral => {
                let n = 256;
                // r = 7 θ / θ_max over two turns, starting half a turn out.
                let points = (0..n)
                    .map(|i| {
                        let theta = std::f64::consts::PI * (1.0 + 4.0 * i as f64 / (n - 1) as f64);
                        let r = 7.0 * theta / (5.0 * std::f64::consts::PI);
                        vec![r * theta.cos(), r * theta.sin()]
                    })
                    .collect();
                Mixture::from_points(points, 0.25)
            }
        };
        built.expect("the presets are valid mixtures")
    }
}

impl FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Preset::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<_> = Preset::ALL.iter().map(|p| p.name()).collect();
            ConfigError::invalid("distribution", format!("is `{s}`; expected one of {}", names.join(", ")))
        })
    }
}
