//! The trainer's unit tests: batches, loss, schedule, snapshot cards.

use super::*;

fn tiny() -> (UNetConfig, TrainConfig, Images) {
    let arch = UNetConfig { widths: vec![8, 16], embed_dim: 16, dropout: 0.2, ..Default::default() };
    let config = TrainConfig { batch_size: 8, learning_rate: 1e-3, warmup: 0, ..Default::default() };
    let mut digits = crate::data::mnist::empty();
    for i in 0..16u8 {
        let image: Vec<u8> = (0..crate::data::mnist::PIXELS).map(|p| ((p as u32 * 7 + i as u32 * 31) % 256) as u8).collect();
        digits.push(&image, (i % 10) as u16, i as u32);
    }
    (arch, config, digits)
}

/// Batches take the data's shape (here 3×4×6 colour images), and with flips on each image of
/// a batch is its source or the source mirrored left–right, both seen over 64 draws; with
/// flips off always the source.
#[test]
fn batches_have_the_datas_shape_and_flip_left_right() {
    let arch = UNetConfig { channels: 3, height: 4, width: 6, widths: vec![4], embed_dim: 8, ..Default::default() };
    let mut set = Images::empty([3, 4, 6], vec!["only".into()]);
    let image: Vec<u8> = (0..72).map(|v| v as u8).collect();
    set.push(&image, 0, 0);
    let source: Vec<f32> = image.iter().map(|&b| b as f32 / 255.0).collect();
    let mirrored: Vec<f32> = source.chunks(6).flat_map(|row| row.iter().rev().copied()).collect();
    for flip in [false, true] {
        let config = TrainConfig { batch_size: 64, flip, ..Default::default() };
        let mut trainer = Trainer::new(arch.clone(), Sde::ve(25.0), 0.3, config, &Device::flex()).unwrap();
        let batch = trainer.next_batch(&set);
        assert_eq!(batch.dims(), [64, 3, 4, 6]);
        let values = batch.into_data().try_to_vec::<f32>().unwrap();
        let flipped = values.chunks(72).filter(|x| *x == mirrored.as_slice()).count();
        assert!(values.chunks(72).all(|x| x == source.as_slice() || x == mirrored.as_slice()));
        if flip {
            assert!(flipped > 10 && flipped < 54, "{flipped} of 64 mirrored");
        } else {
            assert_eq!(flipped, 0);
        }
    }
}

/// A few Adam steps on one fixed batch lower the EDM loss on that batch (same σ, noise and
/// dropout draws).
#[test]
fn training_steps_lower_the_loss_on_a_fixed_batch() {
    let (arch, config, digits) = tiny();
    let device = Device::flex();
    let mut trainer = Trainer::new(arch, Sde::ve(25.0), 0.3, config, &device).unwrap();
    let batch = trainer.next_batch(&digits);
    let eval = |trainer: &mut Trainer| {
        trainer.noise = Noise::new(123);
        trainer.host_rng = SplitMix::new(7);
        trainer.loss(batch.clone()).into_scalar::<f32>()
    };
    let before = eval(&mut trainer);
    for _ in 0..10 {
        trainer.noise = Noise::new(123);
        trainer.host_rng = SplitMix::new(7);
        trainer.train_step(batch.clone()).unwrap();
    }
    let after = eval(&mut trainer);
    assert!(after < 0.9 * before, "loss {before} → {after}");
}

/// The schedule: warm-up ramps linearly, the cool-down follows 1 − √p (p the share of the
/// cool-down done: ½ at p = ¼, 0 at its end and after), and a checkpoint written before the
/// cool-down existed (no such fields) resumes with none.
#[test]
fn the_learning_rate_warms_up_and_cools_down() {
    let (arch, _, _) = tiny();
    let config = TrainConfig { batch_size: 10, learning_rate: 1e-3, warmup: 4, cooldown_start_images: 100, cooldown_images: 400, ..Default::default() };
    let mut trainer = Trainer::new(arch, Sde::ve(25.0), 0.3, config, &Device::flex()).unwrap();
    let mut at = |step: u64| {
        trainer.step = step;
        trainer.learning_rate()
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(at(0), 0.25e-3) && close(at(1), 0.5e-3) && close(at(3), 1e-3));
    assert!(close(at(10), 1e-3), "the cool-down starts at 100 images");
    assert!(close(at(20), 0.5e-3), "a quarter of the way: 1 − √¼ = ½, got {}", at(20));
    assert!(close(at(50), 0.0) && close(at(70), 0.0));
    let mut old = serde_json::to_value(TrainConfig::default()).unwrap();
    old.as_object_mut().unwrap().retain(|k, _| !k.starts_with("cooldown"));
    let old: TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(cooldown_factor(&old, 10_000_000), 1.0);
}

/// A snapshot's card carries the whole training record, so that it can ship as it is.
#[test]
fn snapshot_cards_record_the_training() {
    let (arch, config, digits) = tiny();
    let device = Device::flex();
    let mut trainer = Trainer::new(arch, Sde::ve(25.0), 0.3, config.clone(), &device).unwrap();
    trainer.begin_session("test machine".into());
    let batch = trainer.next_batch(&digits);
    trainer.train_step(batch).unwrap();
    let t = trainer.card("snap").training;
    assert_eq!(t.steps, Some(1));
    assert_eq!(t.images_seen, Some(config.batch_size as u64));
    assert_eq!((t.batch_size, t.learning_rate, t.seed), (Some(config.batch_size), Some(config.learning_rate), Some(config.seed)));
    assert_eq!(t.hardware.as_deref(), Some("test machine"));
    assert_eq!(t.sessions.len(), 1);
    assert_eq!(t.sessions[0]["to_step"], 1);
    assert!(t.final_loss.is_some_and(f64::is_finite));
}
