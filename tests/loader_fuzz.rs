//! A property test of the model loader against untrusted files (in place of cargo-fuzz, which needs
//! a nightly toolchain this machine cannot fetch): thousands of seeded mutations of a valid model
//! card and safetensors file — bit flips, truncations, insertions, edited header lengths, shapes,
//! offsets and dtypes (of F32 and of 8-bit files), card fields set to absurd values — must each load or fail with a
//! non-empty error, never panic, and never allocate what a header merely claims.

use std::panic::{AssertUnwindSafe, catch_unwind};

use scorefield::store::{self, ModelCard};
use scorefield::{Architecture, Device, Parameterisation, Sde, UNetConfig};

/// The project's SplitMix64, so the corpus is the same on every run.
type Rng = scorefield::rng::SplitMix;

/// Numbers a hostile header would use.
const NASTY: [&str; 9] = ["0", "-1", "18446744073709551615", "100000000000", "1e308", "null", "\"x\"", "[]", "4294967296"];

fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// One mutation of the safetensors bytes.
fn mutate_weights(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let n = header_len(bytes);
    match rng.below(8) {
        // Flip bits anywhere.
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
        }
        // Flip bits in the JSON header.
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = 8 + rng.below(n);
                out[i] ^= 1 << rng.below(8);
            }
        }
        // Truncate.
        2 => out.truncate(rng.below(bytes.len())),
        // Claim another header length (including absurd ones).
        3 => {
            let claim = match rng.below(3) {
                0 => rng.next_u64(),
                1 => n as u64 + rng.below(64) as u64 - 32,
                _ => u64::MAX - rng.below(8) as u64,
            };
            out[..8].copy_from_slice(&claim.to_le_bytes());
        }
        // Replace a number in the header with a nasty value (shapes, offsets).
        4 | 5 => {
            let header = String::from_utf8_lossy(&bytes[8..8 + n]).to_string();
            let digits: Vec<usize> = header.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
            if let Some(&at) = digits.get(rng.below(digits.len())) {
                let end = header[at..].find(|c: char| !c.is_ascii_digit()).map_or(header.len(), |e| at + e);
                let edited = format!("{}{}{}", &header[..at], NASTY[rng.below(NASTY.len())], &header[end..]);
                out = (edited.len() as u64).to_le_bytes().to_vec();
                out.extend_from_slice(edited.as_bytes());
                out.extend_from_slice(&bytes[8 + n..]);
            }
        }
        // Another dtype for one to three tensors (an 8-bit file's scales among them).
        6 => {
            let mut header = String::from_utf8_lossy(&bytes[8..8 + n]).to_string();
            for _ in 0..1 + rng.below(3) {
                let at: Vec<usize> = header.match_indices("\"dtype\":\"").map(|(i, m)| i + m.len()).collect();
                let Some(&start) = at.get(rng.below(at.len().max(1))) else { break };
                let end = start + header[start..].find('"').unwrap_or(0);
                let dtype = ["F32", "F16", "BF16", "I8", "F64", "I64", "U8", "", "F32\u{0}"][rng.below(9)];
                header.replace_range(start..end, dtype);
            }
            let edited = header;
            out = (edited.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(edited.as_bytes());
            out.extend_from_slice(&bytes[8 + n..]);
        }
        // Insert random bytes.
        _ => {
            let at = rng.below(out.len());
            let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
            out.splice(at..at, junk);
        }
    }
    out
}

/// One mutation of the model card's JSON.
fn mutate_card(card: &ModelCard, rng: &mut Rng) -> String {
    let mut value = serde_json::to_value(card).unwrap();
    let paths: [&[&str]; 13] = [
        &["architecture", "type"],
        &["architecture", "dropout"],
        &["parameterisation", "sigma_data"],
        &["architecture", "height"],
        &["architecture", "width"],
        &["architecture", "channels"],
        &["architecture", "embed_dim"],
        &["architecture", "fourier_scale"],
        &["architecture", "widths"],
        &["sde", "sigma_max"],
        &["sde", "type"],
        &["image", "range"],
        &["version"],
    ];
    let path = paths[rng.below(paths.len())];
    let replacement: serde_json::Value = serde_json::from_str(NASTY[rng.below(NASTY.len())]).unwrap_or(serde_json::Value::Null);
    let mut slot = &mut value;
    for key in &path[..path.len() - 1] {
        slot = slot.get_mut(*key).unwrap();
    }
    slot[path[path.len() - 1]] = replacement;
    let text = value.to_string();
    if rng.below(4) == 0 {
        // And sometimes cut the text short.
        let cut = rng.below(text.len());
        return text.chars().take(cut).collect();
    }
    text
}

#[test]
fn thousands_of_mutated_model_files_fail_cleanly_and_never_panic() {
    let device = Device::flex();
    let arch = UNetConfig { height: 8, width: 8, widths: vec![4, 8], embed_dim: 8, ..Default::default() };
    let card = ModelCard::new("fuzz", Architecture::Unet(arch), Parameterisation::Edm { sigma_data: 0.3 }, Sde::ve(10.0));
    device.seed(1);
    let model = store::init(&card, &device).unwrap();
    let bytes = store::save(&model).unwrap();
    assert!(store::load(&card, &bytes, &device).is_ok(), "the unmutated file loads");
    // A third of the weight mutations start from the 8-bit file (I8 tensors with F32 scales, F16 rest).
    let int8 = store::safetensors::convert_safetensors(&bytes, store::Dtype::Int8).unwrap();
    assert!(store::load(&card, &int8, &device).is_ok(), "the unmutated 8-bit file loads");

    let mut rng = Rng::new(2026);
    let (mut loaded, mut refused) = (0, 0);
    let executions = 20_000;
    for i in 0..executions {
        let (card_text, weights_bytes) = if i % 4 == 3 { (mutate_card(&card, &mut rng), bytes.clone()) } else { (card.to_json(), mutate_weights(if i % 2 == 0 { &bytes } else { &int8 }, &mut rng)) };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let card = ModelCard::from_json(&card_text).map_err(|e| e.to_string())?;
            store::load(&card, &weights_bytes, &device).map(|_| ()).map_err(|e| e.to_string())
        }));
        match outcome {
            Err(_) => panic!("mutation {i} panicked the loader (card {card_text:.200}, {} weight bytes)", weights_bytes.len()),
            Ok(Ok(())) => loaded += 1,
            Ok(Err(message)) => {
                assert!(message.trim().len() > 10, "mutation {i}: unhelpful error {message:?}");
                refused += 1;
            }
        }
    }
    eprintln!("loader fuzz: {executions} mutated files, {refused} refused with an error, {loaded} still valid (e.g. a flipped mantissa bit)");
    assert!(refused > executions / 2, "most mutations must be caught ({refused} of {executions})");
}

/// A header that claims a 100 GB tensor is refused from the header alone, before any allocation.
#[test]
fn a_header_claiming_a_huge_tensor_is_refused_before_allocating() {
    let header = r#"{"conv_in.weight":{"dtype":"F32","shape":[100000,100000,10],"data_offsets":[0,400000000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    let err = store::safetensors::parse_safetensors(&bytes).unwrap_err().to_string();
    assert!(err.contains("outside") || err.contains("truncated"), "{err}");
}
