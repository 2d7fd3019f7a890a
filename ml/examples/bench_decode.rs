//! Times JPEG decoding of the benchmark photos with the decoders the ml tier could use, each at
//! the DCT scale the service needs (the smallest whose short side still covers preprocessing) or
//! at full size where the decoder has no scaled decode. Prints one JSON object per line.
//!
//!   ml::photo::decode  what the service runs (header, EXIF, scaled decode, orientation)
//!   jpeg-decoder       jpeg-decoder alone at the same scale (the lab's decoder, built without
//!                      the `turbojpeg` feature)
//!   turbojpeg          libjpeg-turbo's TurboJPEG API (Debian's libturbojpeg), same scale (the
//!                      service's decoder: the default `turbojpeg` feature)
//!   zune-jpeg          full-size decode (zune-jpeg has no scaled decode)
//!
//! Usage: cargo run --release -p ml [--no-default-features] --example bench_decode -- [--runs 100]
//!        [--warmup 10]
//!        [--min-short-side 256]

use std::path::Path;
use std::time::Instant;

use ml::photo::{DecodeLimits, decode};

#[path = "support/timing.rs"]
mod timing;
use timing::summary;

fn time(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// The largest DCT scale denominator (8, 4, 2, 1) whose output short side still reaches `want`.
#[cfg(feature = "turbojpeg")]
fn denominator(width: usize, height: usize, want: usize) -> usize {
    let short = width.min(height);
    [8, 4, 2]
        .into_iter()
        .find(|d| short.div_ceil(*d) >= want)
        .unwrap_or(1)
}

#[cfg(feature = "turbojpeg")]
fn turbojpeg_decode(bytes: &[u8], want: usize) -> anyhow::Result<(usize, usize)> {
    let mut decompressor = turbojpeg::Decompressor::new()?;
    let header = decompressor.read_header(bytes)?;
    let d = denominator(header.width, header.height, want);
    let (w, h) = (header.width.div_ceil(d), header.height.div_ceil(d));
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; w * h * 3],
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(bytes, image.as_deref_mut())?;
    Ok((w, d))
}

/// jpeg-decoder at the scale the service picks (what `ml::photo` runs without `turbojpeg`).
fn jpeg_decoder_decode(bytes: &[u8], want: u16) -> anyhow::Result<usize> {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    decoder.read_info()?;
    let info = decoder.info().ok_or_else(|| anyhow::anyhow!("no frame"))?;
    let (w, _) = if info.width <= info.height {
        decoder.scale(want, u16::MAX)?
    } else {
        decoder.scale(u16::MAX, want)?
    };
    decoder.decode()?;
    Ok(usize::from(info.width.div_ceil(w.max(1))))
}

fn zune_decode(bytes: &[u8]) -> anyhow::Result<usize> {
    let options = zune_jpeg::zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_jpeg::zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    let pixels = decoder.decode()?;
    Ok(pixels.len())
}

fn main() -> anyhow::Result<()> {
    let (mut runs, mut warmup, mut want) = (100usize, 10usize, 256u32);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--runs" => runs = value()?.parse()?,
            "--warmup" => warmup = value()?.parse()?,
            "--min-short-side" => want = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(runs >= 10, "--runs must be at least 10");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/images");
    for image in ["espresso-640x480.jpg", "espresso-4000x3000.jpg"] {
        let bytes = std::fs::read(images.join(image))?;
        let base = serde_json::json!({"engine": "decode", "image": format!("benches/images/{image}"),
            "min_short_side": want});
        let line = |decoder: &str, scale: String, times: Vec<f64>| {
            let mut v = base.clone();
            if let (Some(o), serde_json::Value::Object(s)) = (v.as_object_mut(), summary(times)) {
                o.insert("decoder".into(), decoder.into());
                o.insert("dct_scale".into(), scale.into());
                o.extend(s);
            }
            println!("{v}");
        };

        let limits = DecodeLimits::default();
        let scale = decode(&bytes, want, &limits)?.scale_denominator;
        let times = time(warmup, runs, || {
            decode(&bytes, want, &limits)?;
            Ok(())
        })?;
        let service = if cfg!(feature = "turbojpeg") {
            "ml::photo::decode (turbojpeg)"
        } else {
            "ml::photo::decode (jpeg-decoder)"
        };
        line(service, format!("1/{scale}"), times);

        let want16 = u16::try_from(want).unwrap_or(u16::MAX);
        let d = jpeg_decoder_decode(&bytes, want16)?;
        let times = time(warmup, runs, || {
            jpeg_decoder_decode(&bytes, want16)?;
            Ok(())
        })?;
        line("jpeg-decoder (no rayon)", format!("1/{d}"), times);

        #[cfg(feature = "turbojpeg")]
        {
            let (_, d) = turbojpeg_decode(&bytes, want as usize)?;
            let times = time(warmup, runs, || {
                turbojpeg_decode(&bytes, want as usize)?;
                Ok(())
            })?;
            line("turbojpeg (libjpeg-turbo)", format!("1/{d}"), times);
        }

        let times = time(warmup, runs, || {
            zune_decode(&bytes)?;
            Ok(())
        })?;
        line("zune-jpeg", "1/1".into(), times);
    }
    Ok(())
}
