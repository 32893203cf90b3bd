//! BlipImageProcessor's steps: convert to RGB, resize to S×S with Pillow's bicubic filter, rescale by
//! 1/255, normalise with CLIP's mean and standard deviation, lay out as [1, 3, S, S].

use image::RgbImage;
use ndarray::Array4;

use crate::data::image::resize_bicubic;

/// What a BLIP model expects of its pixels (its `blip.json`; these defaults are blip-vqa-base's).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    pub image_size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ImageConfig {
    // CLIP's published constants as written; f32 rounds them as numpy's float32 does.
    #[allow(clippy::excessive_precision)]
    fn default() -> Self {
        ImageConfig {
            image_size: 384,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
        }
    }
}

/// `pixel_values` for one image.
pub fn pixel_values(image: &RgbImage, config: &ImageConfig) -> Array4<f32> {
    let s = config.image_size;
    let resized = resize_bicubic(image, s, s);
    let mut out = Array4::<f32>::zeros((1, 3, s as usize, s as usize));
    for (x, y, p) in resized.enumerate_pixels() {
        for c in 0..3 {
            // transformers rescales in float64, then casts to float32 before normalising.
            let v = (f64::from(p[c]) * (1.0 / 255.0)) as f32;
            out[[0, c, y as usize, x as usize]] = (v - config.mean[c]) / config.std[c];
        }
    }
    out
}
