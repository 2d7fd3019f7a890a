//! Writes the seed corpora of every fuzz target from the repository's own fixtures into
//! `<out>/<target>/` (the checked-in corpora under `fuzz/corpus/` are these seeds after fuzzing and
//! `cargo fuzz cmin`). Usage, from `fuzz/`: `cargo run --example seeds -- <out>`.
//!
//! - photo_decode: every fixture photo as it is, and small copies of some of them re-encoded as
//!   baseline JPEG (RGB, gray, EXIF orientations), PNG (8/16-bit, gray, alpha) and lossless WebP.
//! - upload_multipart: browser-shaped forms carrying small photos, plus the odd forms the tiers'
//!   tests use (no image field, empty field, over the limit, unquoted boundary, truncated).
//! - propagation_headers: header sets in the shapes Envoy and OpenTelemetry SDKs send.
//! - mesh_routes: every rendered overlay, every broken fixture, and each document on its own.

use std::fs;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds <out-dir>")?);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let photos = photo_seeds(&repo, &out.join("photo_decode"))?;
    upload_seeds(&photos, &out.join("upload_multipart"))?;
    propagation_seeds(&out.join("propagation_headers"))?;
    mesh_seeds(&repo, &out.join("mesh_routes"))?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn files_with_extension(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A TIFF-in-EXIF block with one Orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"MM\0*".to_vec();
    exif.extend_from_slice(&8u32.to_be_bytes());
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&0x0112u16.to_be_bytes());
    exif.extend_from_slice(&3u16.to_be_bytes());
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    exif
}

fn jpeg(image: &DynamicImage, quality: u8, exif: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif)?;
    }
    encoder.write_image(
        image.as_bytes(),
        image.width(),
        image.height(),
        image.color().into(),
    )?;
    Ok(out)
}

fn png(image: &DynamicImage, exif: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif)?;
    }
    let color: ExtendedColorType = image.color().into();
    encoder.write_image(image.as_bytes(), image.width(), image.height(), color)?;
    Ok(out)
}

fn webp(image: &DynamicImage, exif: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif)?;
    }
    let color: ExtendedColorType = image.color().into();
    encoder.write_image(image.as_bytes(), image.width(), image.height(), color)?;
    Ok(out)
}

/// Writes the photo seeds; answers the small ones (for the upload forms).
fn photo_seeds(repo: &Path, dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut fixtures =
        files_with_extension(&repo.join("ml/tests/fixtures/photos"), &["jpg", "webp"])?;
    fixtures.extend(files_with_extension(
        &repo.join("backend/tests/fixtures/household"),
        &["jpg"],
    )?);
    let mut small = Vec::new();
    for (n, path) in fixtures.iter().enumerate() {
        let bytes = fs::read(path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("bin");
        write(dir, &format!("fixture-{stem}.{ext}"), &bytes)?;
        let decoded = image::load_from_memory(&bytes)?;
        let tiny = decoded.resize_exact(17 + n as u32, 11 + (n as u32 % 5), FilterType::Triangle);
        let rgb = DynamicImage::ImageRgb8(tiny.to_rgb8());
        let name = |kind: &str| format!("{stem}-{kind}");
        let baseline = jpeg(&rgb, 60, None)?;
        write(dir, &name("rgb.jpg"), &baseline)?;
        small.push((name("rgb.jpg"), baseline));
        if n % 3 != 0 {
            continue;
        }
        // The other formats and shapes for every third fixture keep the corpus small.
        let gray = DynamicImage::ImageLuma8(tiny.to_luma8());
        write(dir, &name("gray.jpg"), &jpeg(&gray, 80, None)?)?;
        for orientation in [3, 6, 8] {
            write(
                dir,
                &name(&format!("exif{orientation}.jpg")),
                &jpeg(&rgb, 50, Some(exif_orientation(orientation)))?,
            )?;
        }
        let png_rgb = png(&rgb, Some(exif_orientation(6)))?;
        write(dir, &name("rgb-exif6.png"), &png_rgb)?;
        small.push((name("rgb-exif6.png"), png_rgb));
        write(dir, &name("gray.png"), &png(&gray, None)?)?;
        let rgba = DynamicImage::ImageRgba8(tiny.to_rgba8());
        write(dir, &name("rgba.png"), &png(&rgba, None)?)?;
        let rgb16 = DynamicImage::ImageRgb16(tiny.to_rgb16());
        write(dir, &name("rgb16.png"), &png(&rgb16, None)?)?;
        let webp_rgb = webp(&rgb, Some(exif_orientation(8)))?;
        write(dir, &name("rgb-exif8.webp"), &webp_rgb)?;
        small.push((name("rgb-exif8.webp"), webp_rgb));
        write(dir, &name("rgba.webp"), &webp(&rgba, None)?)?;
    }
    // A bigger one, so the DCT-scaled paths (short side over 256) are seeded too.
    let first = image::load_from_memory(&fs::read(&fixtures[0])?)?;
    let mid = DynamicImage::ImageRgb8(first.resize_exact(300, 260, FilterType::Triangle).to_rgb8());
    write(dir, "mid-300x260.jpg", &jpeg(&mid, 20, None)?)?;
    Ok(small)
}

/// One form part: name, file name, content type, bytes.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A fuzz input of upload_multipart: the `Content-Type` value, a newline, then the body.
fn form(boundary: &str, content_type: &str, parts: &[Part<'_>], close: bool) -> Vec<u8> {
    let mut input = content_type.as_bytes().to_vec();
    input.push(b'\n');
    for (name, file_name, part_type, bytes) in parts {
        input.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(file_name) = file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        input.extend_from_slice(disposition.as_bytes());
        input.extend_from_slice(b"\r\n");
        if let Some(part_type) = part_type {
            input.extend_from_slice(format!("Content-Type: {part_type}\r\n").as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(bytes);
        input.extend_from_slice(b"\r\n");
    }
    if close {
        input.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    }
    input
}

fn upload_seeds(photos: &[(String, Vec<u8>)], dir: &Path) -> Result<()> {
    // What Chromium and Firefox send.
    let chromium = "----WebKitFormBoundaryq2XbZbT1Gx3yJ6Wk";
    let firefox = "---------------------------38792178302839123813431871";
    for (i, (name, bytes)) in photos
        .iter()
        .filter(|(_, b)| b.len() < 2000)
        .take(6)
        .enumerate()
    {
        let kind = if name.ends_with("png") {
            "image/png"
        } else if name.ends_with("webp") {
            "image/webp"
        } else {
            "image/jpeg"
        };
        let boundary = if i % 2 == 0 { chromium } else { firefox };
        let header = format!("multipart/form-data; boundary={boundary}");
        write(
            dir,
            &format!("form-{name}"),
            &form(
                boundary,
                &header,
                &[("image", Some(name), Some(kind), bytes)],
                true,
            ),
        )?;
    }
    let (_, jpeg) = photos.first().ok_or("no photos")?;
    let plain = "multipart/form-data; boundary=XyZ";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "other-fields-first",
            form(
                "XyZ",
                plain,
                &[
                    ("note", None, None, b"hello"),
                    ("image", Some("cup.jpg"), Some("Image/JPEG; q=1"), jpeg),
                ],
                true,
            ),
        ),
        (
            "no-image-field",
            form("XyZ", plain, &[("photo", None, None, jpeg)], true),
        ),
        (
            "empty-field",
            form(
                "XyZ",
                plain,
                &[("image", Some(""), Some("image/png"), b"")],
                true,
            ),
        ),
        (
            "octet-stream-blank-name",
            form(
                "XyZ",
                plain,
                &[("image", Some("  "), Some("application/octet-stream"), jpeg)],
                true,
            ),
        ),
        (
            "over-the-limit",
            form("XyZ", plain, &[("image", None, None, &[7u8; 2100])], true),
        ),
        (
            "quoted-boundary",
            form(
                "a b",
                "multipart/form-data; charset=utf-8; boundary=\"a b\"",
                &[("image", Some("é.jpg"), Some("image/jpeg"), jpeg)],
                true,
            ),
        ),
        (
            "truncated",
            form("XyZ", plain, &[("image", None, None, b"no end")], false),
        ),
    ];
    for (name, bytes) in cases {
        write(dir, name, &bytes)?;
    }
    Ok(())
}

fn propagation_seeds(dir: &Path) -> Result<()> {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let cases: Vec<(&str, String)> = vec![
        (
            "w3c",
            format!(
                "traceparent: 00-{trace}-00f067aa0ba902b7-01\ntracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\nbaggage: userId=alice,serverNode=DF%2028,isProduction=false;p=1\nx-request-id: 7b1f0c0e-3f7e-4c5e-9d0f-5a3b2c1d0e9f\nx-canary: true\n"
            ),
        ),
        (
            "b3-multi-envoy",
            format!(
                "x-request-id: 5f1d\nx-b3-traceid: {trace}\nx-b3-spanid: 00f067aa0ba902b7\nx-b3-parentspanid: 05e3ac9a4f6e3b90\nx-b3-sampled: 1\nx-b3-flags: 1\nx-ot-span-context: {trace};00f067aa0ba902b7;0000000000000000;cs\n"
            ),
        ),
        (
            "b3-single",
            format!("b3: {trace}-00f067aa0ba902b7-1-05e3ac9a4f6e3b90\nx-canary: TRUE\n"),
        ),
        ("b3-single-64bit-deny", "b3: a3ce929d0e0e4736-00f067aa0ba902b7-0\n".into()),
        ("b3-debug-only", "b3: d\nx-b3-sampled: true\n".into()),
        (
            "both-w3c-and-b3",
            format!(
                "traceparent: 00-{trace}-00f067aa0ba902b7-00\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d\nbaggage: a=b\n"
            ),
        ),
        (
            "malformed",
            "traceparent: 00-not-a-trace-01\nb3: garbage\nx-canary: false\ntracestate: ,,=\nbaggage: =;;%zz\n".into(),
        ),
        (
            "future-version",
            format!("traceparent: cc-{trace}-00f067aa0ba902b7-09-extra\n"),
        ),
    ];
    for (name, text) in cases {
        write(dir, name, text.as_bytes())?;
    }
    Ok(())
}

fn mesh_seeds(repo: &Path, dir: &Path) -> Result<()> {
    let mut files = files_with_extension(&repo.join("mesh/deploy/rendered"), &["yaml"])?;
    let broken = repo.join("tests/mesh/fixtures/broken");
    files.extend(files_with_extension(&broken, &["yaml"])?);
    files.extend(files_with_extension(
        &broken.join("overlay-route-order"),
        &["yaml"],
    )?);
    for path in files {
        let text = fs::read_to_string(&path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("mesh");
        write(dir, &format!("{stem}.yaml"), text.as_bytes())?;
        for (i, doc) in text
            .split("\n---")
            .enumerate()
            .filter(|(_, d)| d.contains("kind: VirtualService") || d.contains("kind: Gateway"))
        {
            write(dir, &format!("{stem}-doc{i}.yaml"), doc.as_bytes())?;
        }
    }
    Ok(())
}
