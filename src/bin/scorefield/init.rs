//! `scorefield init`: a randomly initialised model (card + safetensors).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use scorefield::store::{self, ModelCard, files};
use scorefield::{Architecture, Parameterisation, ScoreNetConfig, Sde, UNetConfig};

use super::{DeviceArg, device};

#[derive(Clone, Copy, ValueEnum)]
enum SdeChoice {
    Ve,
    Vp,
    SubVp,
}

impl SdeChoice {
    /// The SDE with the paper's parameters (σ_min and σ_max given for VE).
    fn with(self, sigma_min: f64, sigma_max: f64) -> Sde {
        match self {
            SdeChoice::Ve => Sde::Ve { sigma_min, sigma_max },
            SdeChoice::Vp => Sde::vp(),
            SdeChoice::SubVp => Sde::sub_vp(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ArchChoice {
    /// The residual U-Net with EDM preconditioning.
    Unet,
    /// The first score network (net/σ), as in version-1 model cards.
    Ncsn,
}

#[derive(Args)]
pub(crate) struct InitArgs {
    /// Path of the model card to write (NAME.json); the weights go beside it as NAME.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// The network: the residual U-Net with EDM preconditioning, or the first network (net/σ).
    #[arg(long, value_enum, default_value = "unet")]
    arch: ArchChoice,
    /// The SDE (VP and sub-VP with β_min = 0.1, β_max = 20).
    #[arg(long, value_enum, default_value = "ve")]
    sde: SdeChoice,
    /// σ_max of the VE SDE.
    #[arg(long, default_value_t = scorefield::precond::EDM_MNIST_SIGMA_MAX)]
    sigma_max: f64,
    /// σ_min of the VE SDE.
    #[arg(long, default_value_t = scorefield::precond::EDM_SIGMA_MIN)]
    sigma_min: f64,
    /// σ_data of the EDM preconditioning (`unet` only).
    #[arg(long, default_value_t = scorefield::precond::EDM_SIGMA_DATA)]
    sigma_data: f64,
    /// Image channels.
    #[arg(long, default_value_t = UNetConfig::default().channels)]
    channels: usize,
    /// Image height in pixels.
    #[arg(long, default_value_t = UNetConfig::default().height)]
    height: usize,
    /// Image width in pixels.
    #[arg(long, default_value_t = UNetConfig::default().width)]
    width: usize,
    /// Feature widths per U-Net level, comma-separated (default: the architecture's).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Width of the noise embedding (default: the architecture's).
    #[arg(long)]
    embed_dim: Option<usize>,
    /// Seed of the random initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn run(a: InitArgs) -> anyhow::Result<()> {
    let device = device(a.device.device)?;
    let sde = a.sde.with(a.sigma_min, a.sigma_max);
    let (arch, param) = match a.arch {
        ArchChoice::Unet => {
            let d = UNetConfig::default();
            let arch = UNetConfig { channels: a.channels, height: a.height, width: a.width, widths: a.widths.unwrap_or(d.widths), embed_dim: a.embed_dim.unwrap_or(d.embed_dim), ..d };
            (Architecture::Unet(arch), Parameterisation::Edm { sigma_data: a.sigma_data })
        }
        ArchChoice::Ncsn => {
            let d = ScoreNetConfig::default();
            let arch = ScoreNetConfig { channels: a.channels, height: a.height, width: a.width, widths: a.widths.unwrap_or(d.widths), embed_dim: a.embed_dim.unwrap_or(d.embed_dim), ..d };
            (Architecture::Ncsn(arch), Parameterisation::Noise)
        }
    };
    let name = a.out.file_stem().and_then(|s| s.to_str()).ok_or_else(|| anyhow::anyhow!("--out needs a file name like model.json"))?;
    let card = ModelCard::new(name, arch, param, sde);
    device.seed(a.seed);
    let model = store::init(&card, &device)?;
    files::save(&a.out, &card, &model)?;
    println!("wrote {} and {} ({} parameters, untrained)", a.out.display(), files::weights_path(&a.out, &card).display(), model.net.num_params());
    Ok(())
}
