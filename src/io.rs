//! Native file formats for the CLI: PNG grids and images, NumPy `.npy` arrays.

use std::io::Read;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum IoError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> IoError {
    IoError::File { path: path.display().to_string(), reason: e.to_string() }
}

fn format_err(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::Format { path: path.display().to_string(), reason: reason.into() }
}

/// A batch of images as f32 values, [N, C, H, W] row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub shape: [usize; 4],
    pub data: Vec<f32>,
}

/// Maps a value of the data range to a byte, clamping.
fn to_byte(v: f32, range: [f32; 2]) -> u8 {
    let u = (v - range[0]) / (range[1] - range[0]);
    if u.is_nan() { 0 } else { (u.clamp(0.0, 1.0) * 255.0).round() as u8 }
}

/// Writes the batch as a near-square grid with a 2-pixel border, upscaled by `scale`.
pub fn write_grid_png(path: &Path, batch: &Batch, range: [f32; 2], scale: usize) -> Result<(), IoError> {
    let [n, c, h, w] = batch.shape;
    if !(c == 1 || c == 3) {
        return Err(format_err(path, format!("can only write 1- or 3-channel images as PNG, not {c}")));
    }
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let pad = 2;
    let (gw, gh) = (cols * (w * scale + pad) + pad, rows * (h * scale + pad) + pad);
    let mut pixels = vec![64u8; gw * gh * c];
    for i in 0..n {
        let (r, col) = (i / cols, i % cols);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let (gy, gx) = (pad + r * (h * scale + pad) + y, pad + col * (w * scale + pad) + x);
                for ch in 0..c {
                    let v = batch.data[((i * c + ch) * h + y / scale) * w + x / scale];
                    pixels[(gy * gw + gx) * c + ch] = to_byte(v, range);
                }
            }
        }
    }
    write_png(path, gw, gh, c, &pixels)
}

fn write_png(path: &Path, width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<(), IoError> {
    let file = std::fs::File::create(path).map_err(|e| file_err(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(if channels == 1 { png::ColorType::Grayscale } else { png::ColorType::Rgb });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| file_err(path, e))?;
    writer.write_image_data(pixels).map_err(|e| file_err(path, e))
}

/// Reads an 8-bit PNG as `channels` channels (gray ↔ RGB converted, alpha dropped), returning
/// (height, width, bytes in C×H×W order).
pub fn read_png(path: &Path, channels: usize) -> Result<(usize, usize, Vec<u8>), IoError> {
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format_err(path, format!("not a PNG image: {e}")))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| format_err(path, format!("corrupt PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src_c = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(format_err(path, format!("unsupported PNG colour type {other:?}"))),
    };
    let mut out = vec![0u8; channels * h * w];
    for y in 0..h {
        for x in 0..w {
            let px = &buf[(y * w + x) * src_c..(y * w + x + 1) * src_c];
            let gray = if src_c >= 3 { ((px[0] as u32 * 299 + px[1] as u32 * 587 + px[2] as u32 * 114) / 1000) as u8 } else { px[0] };
            for ch in 0..channels {
                out[(ch * h + y) * w + x] = if channels == 1 || src_c < 3 { gray } else { px[ch.min(2)] };
            }
        }
    }
    Ok((h, w, out))
}

/// Writes float32 data as an N×C×H×W `.npy` array (C order), through the `npyz` crate.
pub fn write_npy(path: &Path, batch: &Batch) -> Result<(), IoError> {
    use npyz::WriterBuilder;
    let shape: Vec<u64> = batch.shape.iter().map(|&d| d as u64).collect();
    let file = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| file_err(path, e))?);
    let mut writer = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(file).begin_nd().map_err(|e| file_err(path, e))?;
    writer.extend(batch.data.iter().copied()).map_err(|e| file_err(path, e))?;
    writer.finish().map_err(|e| file_err(path, e))
}

/// Values of a `.npy` array: float32 (`<f4`) or 8-bit pixels (`|u1`).
pub enum NpyData {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

/// Reads a C-order `.npy` array of float32 or uint8 with 2 to 4 dimensions (the format parsed by
/// the `npyz` crate); returns its shape as [N, C, H, W] (a 3-D array is N×H×W with C = 1, a 2-D
/// array one H×W image). The data must fill the shape exactly.
pub fn read_npy(path: &Path) -> Result<([usize; 4], NpyData), IoError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| file_err(path, e))?;
    // The header read from a slice leaves the slice at the data, whose length is checked below.
    let mut body: &[u8] = &bytes;
    let header = npyz::NpyHeader::from_reader(&mut body).map_err(|e| format_err(path, format!("not a readable .npy file: {e}")))?;
    let body_len = body.len();
    let npy = npyz::NpyFile::with_header(header, body);
    if npy.order() == npyz::Order::Fortran {
        return Err(format_err(path, "Fortran-ordered arrays are not supported; save with C order"));
    }
    let dims: Vec<usize> = npy.shape().iter().map(|&d| usize::try_from(d).map_err(|_| format_err(path, "shape overflows"))).collect::<Result<_, _>>()?;
    let shape = match dims[..] {
        [h, w] => [1, 1, h, w],
        [n, h, w] => [n, 1, h, w],
        [n, c, h, w] => [n, c, h, w],
        _ => return Err(format_err(path, format!("expected 2 to 4 dimensions, got shape {dims:?}"))),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format_err(path, "shape overflows"))?;
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => other.descr(),
    };
    let width = match descr.as_str() {
        "<f4" => 4,
        "|u1" => 1,
        other => return Err(format_err(path, format!("dtype `{other}` is not supported; use float32 or uint8"))),
    };
    if body_len != count * width {
        return Err(format_err(path, format!("shape {dims:?} needs {} bytes of data, file has {body_len}", count * width)));
    }
    let data = if width == 4 { NpyData::F32(npy.into_vec::<f32>().map_err(|e| format_err(path, e.to_string()))?) } else { NpyData::U8(npy.into_vec::<u8>().map_err(|e| format_err(path, e.to_string()))?) };
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_png_round_trip() {
        let dir = std::env::temp_dir().join(format!("scorefield-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let batch = Batch { shape: [2, 1, 3, 4], data: (0..24).map(|i| i as f32 / 23.0).collect() };
        let npy = dir.join("x.npy");
        write_npy(&npy, &batch).unwrap();
        let (shape, data) = read_npy(&npy).unwrap();
        assert_eq!(shape, batch.shape);
        assert!(matches!(data, NpyData::F32(v) if v == batch.data));

        let one = Batch { shape: [1, 1, 3, 4], data: batch.data[..12].to_vec() };
        let png_path = dir.join("x.png");
        write_grid_png(&png_path, &one, [0.0, 1.0], 1).unwrap();
        let (h, w, bytes) = read_png(&png_path, 1).unwrap();
        assert_eq!((h, w), (3 + 4, 4 + 4)); // the 2-pixel border
        assert_eq!(bytes[2 * w + 2], 0); // first pixel of the image: value 0
        assert_eq!(bytes[4 * w + 5], to_byte(one.data[2 * 4 + 3], [0.0, 1.0]));
        std::fs::write(dir.join("bad.npy"), b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}").unwrap();
        assert!(read_npy(&dir.join("bad.npy")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
