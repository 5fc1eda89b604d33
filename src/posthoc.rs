//! Post-hoc averaging of one run's weight snapshots (Karras et al. 2024, "Analyzing and Improving
//! the Training Dynamics of Diffusion Models", §3, post-hoc EMA): the trainer stores its EMA every so many
//! images (`checkpoints/snapshots/`), and an average of the weights with another profile (a longer
//! window, a box instead of an exponential) is, after training, a linear combination of stored
//! averages. With the run's EMA E(t) of half-life h, for example, the mean of E at n evenly
//! spaced times is a window about n spacings long, and (E(t₂) − a·E(t₁)) / (1 − a) with
//! a = 2^(−(t₂ − t₁)/h) is the exponential average of the raw weights seen between t₁ and t₂ only
//! (exactly so only while h is constant: this project's trainer ramps h up with the images seen).
//!
//! The coefficients must sum to 1 (an average, so that a constant weight stays itself); every
//! snapshot must be the same network (tensor names and shapes).

use std::collections::BTreeMap;

use crate::error::{ConfigError, WeightsError};
use crate::store::Dtype;
use crate::store::safetensors::{self, Decoded};

/// How far the coefficients' sum may be from 1.
pub const SUM_TOLERANCE: f64 = 1e-6;

/// Σᵢ cᵢ·θᵢ over the snapshots' tensors (safetensors bytes in any dtype this crate reads), written
/// in `to` with the first snapshot's metadata. Refused, by name: no snapshot; a coefficient that
/// is not finite; coefficients that do not sum to 1; snapshots whose tensors differ in names or
/// shapes; a result beyond `to`'s range.
pub fn combine(snapshots: &[(&[u8], f64)], to: Dtype) -> Result<Vec<u8>, WeightsError> {
    let invalid = |reason: String| WeightsError::Card(ConfigError::invalid("coefficients", reason));
    if snapshots.is_empty() {
        return Err(invalid("need at least one snapshot".into()));
    }
    if let Some((i, c)) = snapshots.iter().map(|s| s.1).enumerate().find(|(_, c)| !c.is_finite()) {
        return Err(invalid(format!("coefficient {i} is {c}")));
    }
    let sum: f64 = snapshots.iter().map(|s| s.1).sum();
    if (sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(invalid(format!("sum to {sum}, not 1: an average keeps a constant weight constant")));
    }
    let first = safetensors::decode(snapshots[0].0)?;
    let mut total: Vec<Vec<f64>> = first.iter().map(|t| vec![0.0; t.values.len()]).collect();
    for (index, (bytes, c)) in snapshots.iter().enumerate() {
        let decoded;
        let tensors = if index == 0 {
            &first
        } else {
            decoded = safetensors::decode(bytes)?;
            &decoded
        };
        let by_name: BTreeMap<&str, &Decoded> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        if by_name.len() != first.len() {
            return Err(WeightsError::Corrupt(format!("snapshot {index} has {} tensors, snapshot 0 has {}", by_name.len(), first.len())));
        }
        for (sum, reference) in total.iter_mut().zip(&first) {
            let t = by_name.get(reference.name.as_str()).ok_or_else(|| WeightsError::Corrupt(format!("snapshot {index} lacks tensor `{}`, which snapshot 0 has", reference.name)))?;
            if t.shape != reference.shape {
                return Err(WeightsError::Corrupt(format!("tensor `{}` has shape {:?} in snapshot {index} but {:?} in snapshot 0", t.name, t.shape, reference.shape)));
            }
            for (s, v) in sum.iter_mut().zip(&t.values) {
                *s += c * *v as f64;
            }
        }
    }
    let combined: Vec<Decoded> = first
        .iter()
        .zip(total)
        .map(|(t, values)| Decoded { name: t.name.clone(), shape: t.shape.clone(), values: values.into_iter().map(|v| v as f32).collect(), dtype: t.dtype.clone() })
        .collect();
    safetensors::encode(&combined, safetensors::metadata(snapshots[0].0)?.as_ref(), to, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(values: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let tensors: Vec<Decoded> = values.iter().map(|(n, s, v)| Decoded { name: n.to_string(), shape: s.clone(), values: v.clone(), dtype: "F32".into() }).collect();
        safetensors::encode(&tensors, None, Dtype::F32, |_| true).unwrap()
    }

    /// Σ cᵢ θᵢ, tensor by tensor, with names matched (not positions): the second file lists its
    /// tensors in the other order.
    #[test]
    fn combines_tensors_by_name() {
        let a = file(&[("w", vec![2], vec![1.0, 2.0]), ("b", vec![1], vec![4.0])]);
        let b = file(&[("b", vec![1], vec![0.0]), ("w", vec![2], vec![3.0, -2.0])]);
        let out = safetensors::decode(&combine(&[(&a, 0.25), (&b, 0.75)], Dtype::F32).unwrap()).unwrap();
        let get = |n: &str| out.iter().find(|t| t.name == n).unwrap().values.clone();
        assert_eq!(get("w"), vec![0.25 * 1.0 + 0.75 * 3.0, 0.25 * 2.0 + 0.75 * -2.0]);
        assert_eq!(get("b"), vec![1.0]);
    }

    #[test]
    fn refuses_what_is_not_an_average_of_one_network() {
        let a = file(&[("w", vec![2], vec![1.0, 2.0])]);
        let other_shape = file(&[("w", vec![1, 2], vec![1.0, 2.0])]);
        let other_name = file(&[("v", vec![2], vec![1.0, 2.0])]);
        let message = |r: Result<Vec<u8>, WeightsError>| r.unwrap_err().to_string();
        assert!(message(combine(&[(&a, 0.5), (&a, 0.6)], Dtype::F32)).contains("sum to 1.1"));
        assert!(message(combine(&[(&a, f64::NAN), (&a, 1.0)], Dtype::F32)).contains("coefficient 0 is NaN"));
        assert!(message(combine(&[], Dtype::F32)).contains("at least one"));
        assert!(message(combine(&[(&a, 0.5), (&other_shape, 0.5)], Dtype::F32)).contains("shape [1, 2] in snapshot 1 but [2] in snapshot 0"));
        assert!(message(combine(&[(&a, 0.5), (&other_name, 0.5)], Dtype::F32)).contains("snapshot 1 lacks tensor `w`"));
    }
}
