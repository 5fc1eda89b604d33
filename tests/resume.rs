//! Training resumes exactly: its own test binary, because the dropout masks are drawn from the
//! device generator (seeded from the run's stream just before each forward pass), which other
//! tests running in parallel in the same process would also draw from.

use scorefield::data::{DataSpec, Images};
use scorefield::train::{TrainConfig, Trainer, flat_params};
use scorefield::{Device, Sde, UNetConfig};

/// From the same starting checkpoint: train 4 steps, writing a checkpoint after step 2 as a run
/// does every `checkpoint_every` steps; or train 2, checkpoint, resume in a new trainer, train 2
/// more: the losses, weights and EMA are bit-identical (σ draws, noise, batch order, left–right
/// flips, dropout masks with p = 0.2, Adam's moments as the checkpoint stores them and the EMA
/// schedule all carry over), on 3×8×8 colour images; the run's data source is kept in the
/// checkpoint.
#[test]
fn resume_from_checkpoint_is_bit_identical() {
    let arch = UNetConfig { channels: 3, height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.2, ..Default::default() };
    let config = TrainConfig { batch_size: 8, learning_rate: 1e-3, warmup: 0, flip: true, ..Default::default() };
    let mut digits = Images::empty([3, 8, 8], vec!["a".into(), "b".into()]);
    for i in 0..16u8 {
        let image: Vec<u8> = (0..192).map(|p| ((p as u32 * 7 + i as u32 * 31) % 256) as u8).collect();
        digits.push(&image, (i % 2) as u16, i as u32);
    }
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("scorefield-ckpt-{}", std::process::id()));
    let start = dir.with_extension("start");
    let mut fresh = Trainer::new(arch, Sde::ve(25.0), 0.3, config, &device).unwrap();
    fresh.data = DataSpec::Emoji { side: 8 };
    fresh.save_checkpoint(&start).unwrap();
    let mut straight = Trainer::load_checkpoint(&start, &device, None).unwrap();
    let mut losses = Vec::new();
    let along = dir.with_extension("along");
    for step in 1..=4 {
        let b = straight.next_batch(&digits);
        losses.push(straight.train_step(b).unwrap());
        if step == 2 {
            straight.save_checkpoint(&along).unwrap();
        }
    }
    let mut first = Trainer::load_checkpoint(&start, &device, None).unwrap();
    let mut resumed_losses = Vec::new();
    for _ in 0..2 {
        let b = first.next_batch(&digits);
        resumed_losses.push(first.train_step(b).unwrap());
    }
    first.save_checkpoint(&dir).unwrap();
    drop(first);
    let mut resumed = Trainer::load_checkpoint(&dir, &device, None).unwrap();
    assert_eq!(resumed.step, 2);
    assert_eq!(resumed.data, DataSpec::Emoji { side: 8 });
    for _ in 0..2 {
        let b = resumed.next_batch(&digits);
        resumed_losses.push(resumed.train_step(b).unwrap());
    }
    assert_eq!(losses, resumed_losses);
    assert_eq!(flat_params(&straight.net), flat_params(&resumed.net));
    assert_eq!(flat_params(&straight.ema), flat_params(&resumed.ema));
    // The learning curve went along: the resumed checkpoint's curve holds the first session's rows.
    assert!(std::fs::read_to_string(dir.join("curve.tsv")).unwrap().starts_with("step\t"));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&start).ok();
    std::fs::remove_dir_all(&along).ok();
}

/// A checkpoint write interrupted between its two renames leaves the previous checkpoint in
/// `DIR.old`: loading `DIR` then says so, naming both folders, instead of "not found".
#[test]
fn an_interrupted_checkpoint_write_names_the_previous_checkpoint() {
    let device = Device::flex();
    let arch = UNetConfig { widths: vec![4], embed_dim: 4, ..Default::default() };
    let dir = std::env::temp_dir().join(format!("scorefield-interrupted-{}", std::process::id()));
    Trainer::new(arch, Sde::ve(25.0), 0.3, TrainConfig::default(), &device).unwrap().save_checkpoint(&dir).unwrap();
    let old = dir.with_extension("old");
    std::fs::rename(&dir, &old).unwrap();
    let err = Trainer::load_checkpoint(&dir, &device, None).err().expect("no checkpoint at dir").to_string();
    assert!(err.contains(&old.display().to_string()) && err.contains("interrupted"), "{err}");
    std::fs::remove_dir_all(&old).ok();
}
