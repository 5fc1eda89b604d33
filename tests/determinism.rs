//! Same seed, same samples (its own test binary, so nothing else draws from the device meanwhile).

mod common;

use burn::prelude::*;
use pollster::block_on;
use scorefield::sampling::{self, SampleOptions, Sampler, no_observer};

#[test]
fn same_seed_gives_same_samples_on_the_same_device() {
    let device = Device::flex();
    let (card, bytes) = common::tiny_unet(&device);
    let model = scorefield::weights::load(&card, &bytes, &device).unwrap();
    for sampler in [Sampler::EulerMaruyama, Sampler::PredictorCorrector, Sampler::OdeRk45, Sampler::EdmHeun, Sampler::DpmSolver2M] {
        let run = |seed| {
            // edm-heun with churn, so that the seed matters to it too.
            let opts = SampleOptions { sampler, steps: 5, seed, rtol: 1e-3, atol: 1e-3, churn: 10.0, ..Default::default() };
            let out = block_on(sampling::sample(&model, &model.sde, [3, 1, 8, 8], &opts, &device, &mut no_observer())).unwrap();
            out.x.into_data().try_to_vec::<f32>().unwrap()
        };
        let (a, b, c) = (run(42), run(42), run(43));
        assert_eq!(a, b, "{}: same seed, different samples", sampler.name());
        assert_ne!(a, c, "{}: different seeds, same samples", sampler.name());
        assert!(a.iter().all(|v| v.is_finite()));
    }
}
