//! Training resumes exactly: its own test binary, because the dropout masks are drawn from the
//! device generator (seeded from the run's stream just before each forward pass), which other
//! tests running in parallel in the same process would also draw from.

use scorefield::data::{DataSpec, Images};
use scorefield::train::{TrainConfig, Trainer, flat_params};
use scorefield::{Device, Sde, UNetConfig};

/// The tests that draw from the device generator take turns (a test running beside them would
/// reseed it between their reseeding and their drawing).
static DEVICE_GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// From the same starting checkpoint: train 4 steps, writing a checkpoint after step 2 as a run
/// does every `checkpoint_every` steps; or train 2, checkpoint, resume in a new trainer, train 2
/// more: the losses, weights and EMA are bit-identical (σ draws, noise, batch order, left–right
/// flips, dropout masks with p = 0.2, Adam's moments as the checkpoint stores them and the EMA
/// schedule all carry over), on 3×8×8 colour images; the run's data source is kept in the
/// checkpoint.
#[test]
fn resume_from_checkpoint_is_bit_identical() {
    let _turn = DEVICE_GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
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

/// Distillation resumes exactly too, from an autoguided teacher: 4 steps with a checkpoint after
/// step 2, or 2 steps, a checkpoint, a new distiller from it (and the teacher and its guide), 2
/// more: the losses and the student's weights are bit-identical (interval draws, noise, batch
/// order, Adam's stored moments and the guidance carry over). Without the guide it is refused.
#[test]
fn distillation_resumes_bit_identically() {
    let _turn = DEVICE_GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    use scorefield::model::{Network, ScoreModel};
    use scorefield::precond::Parameterisation;
    use scorefield::train::distill::{DistillConfig, Distiller, GuideRecord};
    let device = Device::flex();
    let arch = UNetConfig { channels: 1, height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.0, ..Default::default() };
    let teacher = ScoreModel { net: Network::Unet(arch.init(&device).unwrap()), param: Parameterisation::Edm { sigma_data: 0.3 }, sde: Sde::ve(40.0) };
    // A smaller guide with another σ_data: an untrained U-Net's denoiser is c_skip·x, so the
    // guided teacher's ODE differs from the teacher's alone.
    let guide_arch = UNetConfig { widths: vec![4, 8], ..arch.clone() };
    let guide = ScoreModel { net: Network::Unet(guide_arch.init(&device).unwrap()), param: Parameterisation::Edm { sigma_data: 0.25 }, sde: Sde::ve(40.0) };
    let record = GuideRecord { card: "guide.json".into(), weight: 2.0, min_sigma: 1.0 };
    let mut images = Images::empty([1, 8, 8], vec!["a".into()]);
    for i in 0..16u8 {
        images.push(&(0..64).map(|p| ((p as u32 * 5 + i as u32 * 37) % 256) as u8).collect::<Vec<u8>>(), 0, i as u32);
    }
    let config = DistillConfig { batch_size: 4, learning_rate: 1e-3, intervals_start: 2, intervals_end: 8, steps: 4, ..Default::default() };
    let fresh = || Distiller::new(&teacher, &arch, "teacher.json", DataSpec::Mnist, &device, config.clone()).unwrap().with_guide(&guide, record.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("scorefield-distill-{}", std::process::id()));
    let along = dir.with_extension("along");
    let mut straight = fresh();
    let mut losses = Vec::new();
    for step in 1..=4 {
        let b = straight.next_batch(&images);
        losses.push(straight.train_step(b).unwrap());
        if step == 2 {
            straight.save_checkpoint(&along).unwrap();
        }
    }
    let mut first = fresh();
    let mut resumed_losses = Vec::new();
    for _ in 0..2 {
        let b = first.next_batch(&images);
        resumed_losses.push(first.train_step(b).unwrap());
    }
    first.save_checkpoint(&dir).unwrap();
    drop(first);
    assert_eq!(Distiller::checkpoint_teacher(&dir).unwrap(), "teacher.json");
    assert_eq!(Distiller::checkpoint_guide(&dir).unwrap(), Some(record.clone()));
    let err = Distiller::load_checkpoint(&dir, &teacher, None, &device, None).err().expect("the guide is missing").to_string();
    assert!(err.contains("guide.json"), "{err}");
    let mut resumed = Distiller::load_checkpoint(&dir, &teacher, Some(&guide), &device, None).unwrap();
    assert_eq!(resumed.step, 2);
    for _ in 0..2 {
        let b = resumed.next_batch(&images);
        resumed_losses.push(resumed.train_step(b).unwrap());
    }
    assert_eq!(losses, resumed_losses);
    assert_eq!(flat_params(&straight.student), flat_params(&resumed.student));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&along).ok();
}
