//! Upright RGB pixels → the model's input tensor, exactly as the model manifest describes:
//! centre square crop of `size / (size + padding)` of the short side (integer arithmetic, offsets
//! rounded up), bicubic (Catmull-Rom, antialiased when shrinking — Pillow's `BICUBIC`) resize to
//! `size × size`, `(x − mean) / std`, NCHW f32 RGB.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use tract_onnx::prelude::Tensor;

/// The preprocessing constants of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Side of the square input (224 for Lite0, 240 for Lite1).
    pub input_size: u32,
    /// The crop keeps `input_size / (input_size + crop_padding)` of the short side.
    pub crop_padding: u32,
    pub mean: f32,
    pub std: f32,
}

/// A square region of the source image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub left: u32,
    pub top: u32,
    pub side: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("the image has no pixels")]
    Empty,
    #[error("resizing failed: {0}")]
    Resize(#[from] fast_image_resize::ResizeError),
    #[error("the pixel buffer does not match the image size: {0}")]
    Buffer(#[from] fast_image_resize::ImageBufferError),
    #[error("building the input tensor failed: {0}")]
    Tensor(String),
}

impl Preprocessing {
    /// The short side a decoded image needs so that the crop is at least `input_size` pixels.
    pub fn min_short_side(&self) -> u32 {
        self.input_size + self.crop_padding
    }

    /// The centre crop for a `width × height` image.
    pub fn crop_box(&self, width: u32, height: u32) -> CropBox {
        let short = u64::from(width.min(height));
        let side = short * u64::from(self.input_size) / u64::from(self.min_short_side());
        // Tiny images still give a one-pixel crop rather than nothing.
        let side = u32::try_from(side)
            .unwrap_or(u32::MAX)
            .clamp(1, width.min(height).max(1));
        CropBox {
            left: width.saturating_sub(side).div_ceil(2),
            top: height.saturating_sub(side).div_ceil(2),
            side,
        }
    }

    /// Crops, resizes and normalises `image` into a `1 × 3 × S × S` f32 tensor.
    pub fn tensor(&self, image: &RgbImage) -> Result<Tensor, PreprocessError> {
        let data = self.planes(image)?;
        let s = self.input_size as usize;
        Tensor::from_shape(&[1, 3, s, s], &data).map_err(|e| PreprocessError::Tensor(e.to_string()))
    }

    /// The normalised NCHW values, without the tensor wrapper.
    pub fn planes(&self, image: &RgbImage) -> Result<Vec<f32>, PreprocessError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Err(PreprocessError::Empty);
        }
        let crop = self.crop_box(width, height);
        let src = ImageRef::new(width, height, image.as_raw(), PixelType::U8x3)?;
        let size = self.input_size;
        let mut dst = Image::new(size, size, PixelType::U8x3);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
            .crop(
                f64::from(crop.left),
                f64::from(crop.top),
                f64::from(crop.side),
                f64::from(crop.side),
            );
        Resizer::new().resize(&src, &mut dst, &options)?;

        let plane = (size * size) as usize;
        let mut out = vec![0f32; 3 * plane];
        let inv_std = 1.0 / self.std;
        for (i, px) in dst.buffer().chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                out[c * plane + i] = (f32::from(v) - self.mean) * inv_std;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const LITE0: Preprocessing = Preprocessing {
        input_size: 224,
        crop_padding: 32,
        mean: 127.0,
        std: 128.0,
    };

    #[test]
    fn crop_follows_the_manifest_formula() {
        // min(h, w) * size // (size + 32), offsets ((h - crop) + 1) // 2
        assert_eq!(
            LITE0.crop_box(640, 480),
            CropBox {
                left: 110,
                top: 30,
                side: 420
            }
        );
        assert_eq!(
            LITE0.crop_box(256, 256),
            CropBox {
                left: 16,
                top: 16,
                side: 224
            }
        );
        assert_eq!(
            LITE0.crop_box(300, 301),
            CropBox {
                left: 19,
                top: 20,
                side: 262
            }
        );
        let lite1 = Preprocessing {
            input_size: 240,
            ..LITE0
        };
        // 3000 * 240 // 272 = 2647; offsets (4000 - 2647 + 1) // 2 and (3000 - 2647 + 1) // 2
        assert_eq!(
            lite1.crop_box(4000, 3000),
            CropBox {
                left: 677,
                top: 177,
                side: 2647
            }
        );
        assert_eq!(
            LITE0.crop_box(1, 1),
            CropBox {
                left: 0,
                top: 0,
                side: 1
            }
        );
    }

    #[test]
    fn tensor_is_nchw_and_normalised() {
        let img = RgbImage::from_pixel(300, 300, Rgb([255, 127, 0]));
        let t = LITE0.tensor(&img).expect("tensor");
        assert_eq!(t.shape(), &[1, 3, 224, 224]);
        let v = LITE0.planes(&img).expect("planes");
        let plane = 224 * 224;
        assert!((v[0] - 1.0).abs() < 1e-6, "red plane: {}", v[0]);
        assert!(v[plane].abs() < 1e-6, "green plane: {}", v[plane]);
        assert!(
            (v[2 * plane] + 127.0 / 128.0).abs() < 1e-6,
            "blue plane: {}",
            v[2 * plane]
        );
    }

    #[test]
    fn centre_crop_drops_the_borders() {
        // Red borders outside the centre crop must not reach the tensor.
        let img = RgbImage::from_fn(512, 256, |x, _| {
            if (144..368).contains(&x) {
                Rgb([0, 255, 0])
            } else {
                Rgb([255, 0, 0])
            }
        });
        let v = LITE0.planes(&img).expect("planes");
        let plane = 224 * 224;
        let max_red = v[..plane].iter().fold(f32::MIN, |a, &b| a.max(b));
        assert!(max_red < -0.9, "red leaked into the crop: {max_red}");
    }
}
