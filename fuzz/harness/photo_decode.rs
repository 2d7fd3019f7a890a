// The body of the `photo_decode` fuzz target, shared with the regression test
// (`ml/photo/tests/fuzz_regressions.rs` includes this file), so both run the same code.
//
// Uploaded bytes → `ml_photo::decode`, exactly as the ml service's classification worker calls it:
// the service's default `DecodeLimits`, the short side Lite0's preprocessing asks for, and the
// smallest one (which takes JPEGs down the 1/8 DCT-scale path).

use ml_photo::{DecodeError, DecodeLimits, PhotoFormat, decode};

/// `Preprocessing::min_short_side` of EfficientNet-Lite0 (224 + 32) and the smallest request.
const SHORT_SIDES: [u32; 2] = [256, 1];

/// Decodes `data` and checks what holds for every outcome; answers the outcomes, one line each
/// (`ok WxH` or `error: <message>`). Panics when an invariant breaks.
pub fn exercise(data: &[u8]) -> String {
    let limits = DecodeLimits::default();
    let mut outcomes = Vec::new();
    for min_short_side in SHORT_SIDES {
        match decode(data, min_short_side, &limits) {
            Ok(photo) => {
                let (w, h) = photo.pixels.dimensions();
                assert!(w > 0 && h > 0, "a decoded photo has pixels");
                assert_eq!(
                    photo.pixels.as_raw().len() as u64,
                    u64::from(w) * u64::from(h) * 3
                );
                let stored = u64::from(photo.stored_width) * u64::from(photo.stored_height);
                assert!(stored <= limits.max_pixels, "the pixel limit held");
                assert_eq!(PhotoFormat::sniff(data), Some(photo.format));
                outcomes.push(format!("ok {w}x{h}"));
            }
            Err(DecodeError::UnknownFormat) => {
                assert_eq!(PhotoFormat::sniff(data), None);
                outcomes.push(format!("error: {}", DecodeError::UnknownFormat));
            }
            Err(error) => {
                let message = error.to_string();
                assert!(!message.is_empty());
                outcomes.push(format!("error: {message}"));
            }
        }
    }
    outcomes.join("\n")
}
