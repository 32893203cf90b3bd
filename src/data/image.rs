//! Images in: PNG and JPEG (the `image` crate), any colour type converted to 8-bit RGB the way Hugging Face
//! processors do (grey replicated, alpha composited over white), and resized with Pillow's bicubic filter —
//! bit for bit, since BLIP's processor resizes with Pillow and the model was trained on its output.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};

/// Larger sides are refused from the header, before any pixel is decoded (decompression bombs).
pub const MAX_SIDE: u32 = 16_384;
/// At most this many pixels (a 8192×8192 photo).
pub const MAX_PIXELS: u64 = 1 << 26;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct ImageError {
    pub path: PathBuf,
    pub what: String,
}

fn err(path: &Path, what: impl Into<String>) -> ImageError {
    ImageError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Decodes `path` into 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    decode_rgb(&bytes).map_err(|what| err(path, what))
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => Ok(reader),
        Some(f) => Err(format!(
            "{f:?} images are not supported (PNG or JPEG expected)"
        )),
        None => Err("not an image (PNG or JPEG expected)".into()),
    }
}

/// Decodes PNG or JPEG bytes into 8-bit RGB; the error says what is wrong.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    let (w, h) = reader(bytes)?
        .into_dimensions()
        .map_err(|e| format!("corrupt or truncated image header: {e}"))?;
    if w == 0 || h == 0 {
        return Err(format!("the image is {w}×{h}: nothing to look at"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!(
            "{w}×{h} is over the limit ({MAX_SIDE} a side, {MAX_PIXELS} pixels); refused before decoding"
        ));
    }
    let mut reader = reader(bytes)?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        return decode_jpeg(bytes).map(to_rgb);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("corrupt or truncated image: {e}"))?;
    Ok(to_rgb(image))
}

/// A JPEG through zune-jpeg (the decoder `image` itself uses, with the same output colour spaces) in strict
/// mode: by default it fills a cut-off scan with grey, where Pillow refuses the file ("image file is
/// truncated"), so a truncated or corrupt scan is the decoder's error here, whatever bytes follow it.
fn decode_jpeg(bytes: &[u8]) -> Result<DynamicImage, String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let corrupt = |e: zune_jpeg::errors::DecodeErrors| format!("corrupt or truncated JPEG: {e}");
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(corrupt)?;
    let (w, h) = decoder
        .dimensions()
        .ok_or("corrupt JPEG: no frame header")?;
    let colour = match decoder.input_colorspace() {
        Some(c @ (ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA)) => c,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(options.jpeg_set_out_colorspace(colour));
    let pixels = decoder.decode().map_err(corrupt)?;
    let (w, h) = (w as u32, h as u32);
    let wrong = || "corrupt JPEG: the decoded data does not match its dimensions".to_string();
    Ok(match colour {
        ColorSpace::Luma => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(wrong)?)
        }
        ColorSpace::LumaA => DynamicImage::ImageLumaA8(
            image::GrayAlphaImage::from_raw(w, h, pixels).ok_or_else(wrong)?,
        ),
        ColorSpace::RGBA => {
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, pixels).ok_or_else(wrong)?)
        }
        _ => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(wrong)?),
    })
}

/// Alpha is composited over white (transformers' `convert_to_rgb`); grey is replicated.
fn to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            o[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Pillow's fixed-point precision for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (a = −0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: the first input pixel and the fixed-point weights (Pillow's `precompute_coeffs` and
/// `normalize_coeffs_8bpc`). Downscaling widens the kernel by the scale (antialiasing).
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i32>)> {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (f64::from(xx) + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * (1.0 / filter_scale)))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let k = w * f64::from(1u32 << PRECISION_BITS);
                    (if k < 0.0 { k - 0.5 } else { k + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One resampling pass along x (`horizontal`) or y, as Pillow's `ImagingResampleHorizontal/Vertical_8bpc`.
fn pass(src: &RgbImage, out_w: u32, out_h: u32, horizontal: bool) -> RgbImage {
    let coeffs = if horizontal {
        coefficients(src.width(), out_w)
    } else {
        coefficients(src.height(), out_h)
    };
    let mut out = RgbImage::new(out_w, out_h);
    let half = 1i64 << (PRECISION_BITS - 1);
    for y in 0..out_h {
        for x in 0..out_w {
            let (start, k) = &coeffs[if horizontal { x } else { y } as usize];
            let mut acc = [half; 3];
            for (i, w) in k.iter().enumerate() {
                let p = if horizontal {
                    src.get_pixel((start + i) as u32, y)
                } else {
                    src.get_pixel(x, (start + i) as u32)
                };
                for c in 0..3 {
                    acc[c] += i64::from(p[c]) * i64::from(*w);
                }
            }
            out.put_pixel(x, y, image::Rgb(acc.map(clip8)));
        }
    }
    out
}

/// `Image.resize((width, height), Image.BICUBIC)` of Pillow: horizontal pass, then vertical, each only when
/// that side changes.
pub fn resize_bicubic(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut img = if width != src.width() {
        pass(src, width, src.height(), true)
    } else {
        src.clone()
    };
    if height != img.height() {
        img = pass(&img, width, height, false);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn kernel_and_weights_match_pillows_definition() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(2.0), 0.0);
        assert!((bicubic(0.5) - 0.5625).abs() < 1e-12);
        assert!((bicubic(1.5) + 0.0625).abs() < 1e-12);
        let one = 1i64 << PRECISION_BITS;
        for (_, k) in coefficients(64, 384).iter().chain(&coefficients(500, 384)) {
            let sum: i64 = k.iter().map(|&w| i64::from(w)).sum();
            assert!((sum - one).abs() <= k.len() as i64, "weights sum to one");
        }
        // Same size: the identity (the window starts one pixel left; its other weights are zero).
        let c = coefficients(5, 5);
        assert_eq!(c[2], (1, vec![0, one as i32, 0, 0]));
    }

    #[test]
    fn alpha_is_composited_over_white_and_grey_replicated() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([100, 0, 200, 128]));
        let rgb = decode_rgb(&png(&DynamicImage::ImageRgba8(rgba))).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        // 100·128/255 + 255·127/255 = 177.2; 0 + 127 = 127; 200·128/255 + 127 = 227.4
        assert_eq!(rgb.get_pixel(1, 0).0, [177, 127, 227]);
        let grey = image::GrayImage::from_pixel(1, 1, image::Luma([42]));
        let rgb = decode_rgb(&png(&DynamicImage::ImageLuma8(grey))).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [42, 42, 42]);
    }

    fn jpeg(img: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        bytes
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn strict_jpeg_decoding_gives_the_image_crates_pixels() {
        // The reference: `image`'s own (lenient) JPEG path, on a photo and on encoded colour and grey.
        let photo =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/images/rocket.jpg"))
                .unwrap();
        let colour = jpeg(&DynamicImage::ImageRgb8(gradient(67, 45)));
        let grey = jpeg(&DynamicImage::ImageLuma8(image::GrayImage::from_fn(
            33,
            17,
            |x, y| image::Luma([(x * y % 256) as u8]),
        )));
        for bytes in [photo, colour, grey] {
            let ours = decode_rgb(&bytes).unwrap();
            let reference = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(ours.dimensions(), reference.dimensions());
            assert!(ours.as_raw() == reference.as_raw(), "pixels differ");
        }
    }

    #[test]
    fn a_cut_jpeg_is_refused_even_when_an_end_marker_comes_before_the_cut() {
        let encoded = jpeg(&DynamicImage::ImageRgb8(gradient(256, 256)));
        // A comment segment right after SOI holding an end-of-image marker, as an EXIF thumbnail does.
        let comment = [0xFF, 0xFE, 0x00, 0x06, b'x', 0xFF, 0xD9, b'y'];
        let full = [&encoded[..2], &comment[..], &encoded[2..]].concat();
        assert!(decode_rgb(&full).is_ok());
        let sos = full.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        for share in [0.1, 0.5, 0.99] {
            let cut = sos + ((full.len() - sos) as f64 * share) as usize;
            match decode_rgb(&full[..cut]) {
                Err(e) => assert!(e.contains("corrupt or truncated JPEG"), "{e}"),
                Ok(_) => panic!("a JPEG cut at {share} of its scan was decoded"),
            }
        }
        // Headers with no scan data at all.
        match decode_rgb(&full[..sos]) {
            Err(e) => assert!(e.contains("corrupt or truncated"), "{e}"),
            Ok(_) => panic!("a JPEG without a scan was decoded"),
        }
    }

    #[test]
    fn bad_bytes_get_a_reason() {
        let e = decode_rgb(b"hello, not an image").unwrap_err();
        assert!(e.contains("not an image"), "{e}");
        let full = png(&DynamicImage::ImageRgb8(RgbImage::new(32, 32)));
        let e = decode_rgb(&full[..full.len() / 2]).unwrap_err();
        assert!(e.contains("corrupt or truncated"), "{e}");
        // A PNG whose header (with a valid CRC) claims 100000×100000 pixels.
        let mut bomb = full.clone();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode_rgb(&bomb).unwrap_err();
        assert!(e.contains("refused before decoding"), "{e}");
    }
}
