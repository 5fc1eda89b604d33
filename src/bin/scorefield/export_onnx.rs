//! `scorefield export-onnx`: the model's score network as ONNX, for other runtimes (the benchmark
//! page checks ONNX Runtime Web against this one).

use anyhow::anyhow;
use std::path::PathBuf;

use clap::Args;
use scorefield::{Architecture, Device};

use super::load;

#[derive(Args)]
pub(crate) struct ExportOnnxArgs {
    /// Model card to export.
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(a: ExportOnnxArgs) -> anyhow::Result<()> {
    let (card, model) = load(&a.model, &Device::flex())?;
    let bytes = match (&model.net, &card.architecture) {
        (scorefield::Network::Ncsn(net), Architecture::Ncsn(config)) => scorefield::onnx::export(net, config, env!("CARGO_PKG_VERSION"))?,
        (scorefield::Network::Unet(net), Architecture::Unet(config)) => scorefield::onnx::export_unet(net, config, env!("CARGO_PKG_VERSION"))?,
        _ => return Err(anyhow!("{}: the card's architecture and the loaded network disagree", a.model.display())),
    };
    std::fs::write(&a.out, &bytes).map_err(|e| anyhow!("{}: {e}", a.out.display()))?;
    println!("{}: {} bytes, ONNX IR {} opset {}, {} parameters", a.out.display(), bytes.len(), scorefield::onnx::IR_VERSION, scorefield::onnx::OPSET, model.net.num_params());
    Ok(())
}
