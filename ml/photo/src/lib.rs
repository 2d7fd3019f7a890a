//! Uploaded bytes → upright RGB pixels.
//!
//! The format is judged from the bytes (magic numbers), never from a file name or a header the
//! client chose. The pixel count is judged from the image header before any pixel is decoded, so
//! a decompression bomb costs a few hundred bytes of parsing. JPEGs are decoded at the smallest
//! DCT scale (1/8, 1/4, 1/2 or 1) whose short side still covers what preprocessing needs, so a
//! 12 MP phone photo is never decoded at full size. EXIF orientation is honoured for JPEG, PNG
//! and WebP.
#![forbid(unsafe_code)]

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// The image formats the service takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    WebP,
}

impl PhotoFormat {
    /// Recognises the format from the first bytes of the upload (`mesh::upload` knows the magic
    /// numbers, for every tier).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        mesh::upload::ImageFormat::sniff(bytes).map(|format| match format {
            mesh::upload::ImageFormat::Jpeg => Self::Jpeg,
            mesh::upload::ImageFormat::Png => Self::Png,
            mesh::upload::ImageFormat::WebP => Self::WebP,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::WebP => ImageFormat::WebP,
        }
    }
}

impl std::fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a single upload may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width × height accepted, judged from the header before decoding.
    pub max_pixels: u64,
    /// Largest allocation a decoder may make for one image.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_alloc_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the body is not a JPEG, PNG or WebP image")]
    UnknownFormat,
    #[error(
        "the {format} image is {width}×{height} pixels ({pixels} in all), over the limit of {limit}"
    )]
    TooManyPixels {
        format: PhotoFormat,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("the {format} image could not be decoded: {reason}")]
    Undecodable { format: PhotoFormat, reason: String },
}

/// A decoded, upright photo and how it was obtained.
#[derive(Debug, Clone)]
pub struct DecodedPhoto {
    pub format: PhotoFormat,
    /// Size stored in the file, before orientation and DCT scaling.
    pub stored_width: u32,
    pub stored_height: u32,
    /// JPEG DCT scale denominator used (1, 2, 4 or 8); 1 for other formats.
    pub scale_denominator: u32,
    pub pixels: RgbImage,
}

/// Decodes `bytes` into upright RGB pixels whose short side is at least `min_short_side` when the
/// stored image is that large (JPEGs are scaled down while decoding only as far as that allows).
pub fn decode(
    bytes: &[u8],
    min_short_side: u32,
    limits: &DecodeLimits,
) -> Result<DecodedPhoto, DecodeError> {
    let format = PhotoFormat::sniff(bytes).ok_or(DecodeError::UnknownFormat)?;
    // The decoders are well fuzzed, but a panic on hostile input must still become a clean error
    // and leave the worker thread alive.
    let outcome = catch_unwind(AssertUnwindSafe(|| match format {
        PhotoFormat::Jpeg => decode_jpeg(bytes, min_short_side, limits),
        PhotoFormat::Png | PhotoFormat::WebP => decode_with_image(bytes, format, limits),
    }));
    outcome.unwrap_or_else(|_| {
        Err(DecodeError::Undecodable {
            format,
            reason: "the decoder failed on this input".into(),
        })
    })
}

fn check_pixels(
    format: PhotoFormat,
    width: u32,
    height: u32,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            format,
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(DecodeError::Undecodable {
            format,
            reason: "the image has no pixels".into(),
        });
    }
    Ok(())
}

fn decode_jpeg(
    bytes: &[u8],
    min_short_side: u32,
    limits: &DecodeLimits,
) -> Result<DecodedPhoto, DecodeError> {
    let format = PhotoFormat::Jpeg;
    let undecodable = |e: jpeg_decoder::Error| DecodeError::Undecodable {
        format,
        reason: e.to_string(),
    };
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX),
    );
    decoder.read_info().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| DecodeError::Undecodable {
        format,
        reason: "the header has no frame".into(),
    })?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(format, width, height, limits)?;

    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8 => {}
        // CMYK and 16-bit lossless JPEGs are rare in photos; the image crate's decoder converts
        // them properly (at full size — the pixel limit above still applies).
        _ => return decode_with_image(bytes, format, limits),
    }

    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);

    let (image, w) = scaled_pixels(decoder, bytes, width, height, min_short_side)?;
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    Ok(DecodedPhoto {
        format,
        stored_width: width,
        stored_height: height,
        scale_denominator: width.div_ceil(w.max(1)),
        pixels: image.into_rgb8(),
    })
}

/// The pixels at the smallest DCT scale whose short side still reaches `min_short_side`, with
/// jpeg-decoder (whose header `decoder` has read), and the decoded width.
#[cfg(not(feature = "turbojpeg"))]
fn scaled_pixels(
    mut decoder: jpeg_decoder::Decoder<Cursor<&[u8]>>,
    _bytes: &[u8],
    width: u32,
    height: u32,
    min_short_side: u32,
) -> Result<(RgbImage, u32), DecodeError> {
    let format = PhotoFormat::Jpeg;
    let undecodable = |e: jpeg_decoder::Error| DecodeError::Undecodable {
        format,
        reason: e.to_string(),
    };
    // Ask for the short side only: the decoder picks the smallest scale whose output reaches the
    // request on at least one axis, and the long side's request can never be met first.
    let wanted = u16::try_from(min_short_side.max(1)).unwrap_or(u16::MAX);
    let (scaled_w, scaled_h) = if width <= height {
        decoder.scale(wanted, u16::MAX)
    } else {
        decoder.scale(u16::MAX, wanted)
    }
    .map_err(undecodable)?;
    let data = decoder.decode().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| DecodeError::Undecodable {
        format,
        reason: "the header has no frame".into(),
    })?;
    let (w, h) = (u32::from(scaled_w), u32::from(scaled_h));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(w, h, data),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(w, h, data)
            .map(|gray| DynamicImage::ImageLuma8(gray).into_rgb8()),
        _ => None,
    }
    .ok_or_else(|| DecodeError::Undecodable {
        format,
        reason: "the decoded pixel data is shorter than the image".into(),
    })?;
    Ok((image, w))
}

/// The pixels at the smallest DCT scale whose short side still reaches `min_short_side`, with
/// libjpeg-turbo (the header was read by jpeg-decoder, for the EXIF orientation), and the
/// decoded width.
#[cfg(feature = "turbojpeg")]
fn scaled_pixels(
    _decoder: jpeg_decoder::Decoder<Cursor<&[u8]>>,
    bytes: &[u8],
    width: u32,
    height: u32,
    min_short_side: u32,
) -> Result<(RgbImage, u32), DecodeError> {
    let undecodable = |e: turbojpeg::Error| DecodeError::Undecodable {
        format: PhotoFormat::Jpeg,
        reason: e.to_string(),
    };
    let short = width.min(height);
    let d = [8, 4, 2]
        .into_iter()
        .find(|d| short.div_ceil(*d) >= min_short_side.max(1))
        .unwrap_or(1);
    let (w, h) = (width.div_ceil(d), height.div_ceil(d));
    let mut decompressor = turbojpeg::Decompressor::new().map_err(undecodable)?;
    let mut image = RgbImage::new(w, h);
    let output = turbojpeg::Image {
        pixels: &mut *image,
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor
        .decompress(bytes, output)
        .map_err(undecodable)?;
    Ok((image, w))
}

fn decode_with_image(
    bytes: &[u8],
    format: PhotoFormat,
    limits: &DecodeLimits,
) -> Result<DecodedPhoto, DecodeError> {
    let undecodable = |e: image::ImageError| DecodeError::Undecodable {
        format,
        reason: e.to_string(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    check_pixels(format, width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(DecodedPhoto {
        format,
        stored_width: width,
        stored_height: height,
        scale_denominator: 1,
        pixels: image.into_rgb8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode test image");
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
    }

    #[test]
    fn sniffs_formats_from_magic_bytes() {
        assert_eq!(
            PhotoFormat::sniff(&encode(&gradient(8, 8), ImageFormat::Png)),
            Some(PhotoFormat::Png)
        );
        assert_eq!(
            PhotoFormat::sniff(&encode(&gradient(8, 8), ImageFormat::Jpeg)),
            Some(PhotoFormat::Jpeg)
        );
        assert_eq!(
            PhotoFormat::sniff(&encode(&gradient(8, 8), ImageFormat::WebP)),
            Some(PhotoFormat::WebP)
        );
        assert_eq!(PhotoFormat::sniff(b"GIF89a......"), None);
        assert_eq!(PhotoFormat::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(PhotoFormat::sniff(b""), None);
    }

    #[test]
    fn large_jpeg_is_decoded_at_reduced_scale_but_still_covers_the_crop() {
        let jpeg = encode(&gradient(2048, 1536), ImageFormat::Jpeg);
        let photo = decode(&jpeg, 256, &DecodeLimits::default()).expect("decodes");
        assert_eq!(photo.scale_denominator, 4);
        assert_eq!((photo.pixels.width(), photo.pixels.height()), (512, 384));
        assert!(photo.pixels.height() >= 256);
        // One step further would have been too small.
        let photo = decode(&jpeg, 400, &DecodeLimits::default()).expect("decodes");
        assert_eq!(photo.scale_denominator, 2);
    }

    #[test]
    fn small_jpeg_is_decoded_at_full_size() {
        let jpeg = encode(&gradient(300, 200), ImageFormat::Jpeg);
        let photo = decode(&jpeg, 256, &DecodeLimits::default()).expect("decodes");
        assert_eq!(photo.scale_denominator, 1);
        assert_eq!((photo.pixels.width(), photo.pixels.height()), (300, 200));
    }

    #[test]
    fn pixel_limit_is_enforced_from_the_header() {
        let png = encode(&gradient(100, 100), ImageFormat::Png);
        let limits = DecodeLimits {
            max_pixels: 9_999,
            ..DecodeLimits::default()
        };
        let err = decode(&png, 256, &limits).expect_err("over the limit");
        assert!(
            matches!(err, DecodeError::TooManyPixels { pixels: 10_000, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors_not_panics() {
        let jpeg = encode(&gradient(640, 480), ImageFormat::Jpeg);
        let err =
            decode(&jpeg[..jpeg.len() / 3], 256, &DecodeLimits::default()).expect_err("truncated");
        assert!(
            matches!(
                err,
                DecodeError::Undecodable {
                    format: PhotoFormat::Jpeg,
                    ..
                }
            ),
            "{err:?}"
        );
        let png = encode(&gradient(64, 64), ImageFormat::Png);
        let err =
            decode(&png[..png.len() / 2], 256, &DecodeLimits::default()).expect_err("truncated");
        assert!(
            matches!(
                err,
                DecodeError::Undecodable {
                    format: PhotoFormat::Png,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            decode(b"hello, world", 256, &DecodeLimits::default()).expect_err("not an image"),
            DecodeError::UnknownFormat
        );
    }

    #[test]
    fn png_orientation_chunk_is_applied() {
        // A 4×2 image with a red left half; EXIF orientation 6 (rotate 90° clockwise) must turn it
        // into 2×4 with red on top.
        let img = RgbImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut exif = Vec::new();
        exif.extend_from_slice(b"II*\0");
        exif.extend_from_slice(&8u32.to_le_bytes());
        exif.extend_from_slice(&1u16.to_le_bytes());
        exif.extend_from_slice(&0x112u16.to_le_bytes());
        exif.extend_from_slice(&3u16.to_le_bytes());
        exif.extend_from_slice(&1u32.to_le_bytes());
        exif.extend_from_slice(&6u16.to_le_bytes());
        exif.extend_from_slice(&[0, 0]);
        exif.extend_from_slice(&0u32.to_le_bytes());
        let mut out = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
        encoder.set_exif_metadata(exif).expect("png takes exif");
        encoder
            .write_image(img.as_raw(), 4, 2, image::ExtendedColorType::Rgb8)
            .expect("encode");
        let photo = decode(&out, 1, &DecodeLimits::default()).expect("decodes");
        assert_eq!((photo.pixels.width(), photo.pixels.height()), (2, 4));
        assert_eq!(photo.pixels.get_pixel(0, 0), &Rgb([255, 0, 0]));
        assert_eq!(photo.pixels.get_pixel(0, 3), &Rgb([0, 0, 255]));
    }

    /// The service's libjpeg-turbo decode picks the same DCT scale as jpeg-decoder (the lab's
    /// decoder) and gives nearly the same pixels: the two IDCTs and chroma upsamplers differ only
    /// in rounding (measured on these photos: at most 3.3 per channel on average, at 1/8 scale),
    /// while a channel swap gives 26–72 and pixels one row off 4.7–18 (at least one photo each).
    #[cfg(feature = "turbojpeg")]
    #[test]
    fn libjpeg_turbo_agrees_with_jpeg_decoder_on_the_fixture_photos() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos");
        for name in ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
            let bytes = std::fs::read(dir.join(name)).expect("read fixture");
            for min_short_side in [1, 64, 256] {
                let photo = decode(&bytes, min_short_side, &DecodeLimits::default()).expect(name);
                let mut reference = jpeg_decoder::Decoder::new(Cursor::new(&bytes));
                reference.read_info().expect("header");
                let (w, h) = (photo.stored_width, photo.stored_height);
                let wanted = u16::try_from(min_short_side).expect("small");
                let (rw, rh) = if w <= h {
                    reference.scale(wanted, u16::MAX)
                } else {
                    reference.scale(u16::MAX, wanted)
                }
                .expect("scale");
                let expected = reference.decode().expect("reference decode");
                let got = photo.pixels.as_raw();
                assert_eq!(
                    (photo.pixels.width(), photo.pixels.height()),
                    (u32::from(rw), u32::from(rh)),
                    "{name} at short side {min_short_side}: the scales differ"
                );
                assert_eq!(got.len(), expected.len(), "{name}: RGB lengths");
                let total: u64 = got
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .sum();
                let mean = total as f64 / got.len() as f64;
                assert!(
                    mean < 4.0,
                    "{name} at short side {min_short_side} (1/{}): mean difference {mean:.3} per channel",
                    photo.scale_denominator
                );
            }
        }
    }
}
