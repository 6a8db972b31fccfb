//! Resampling with `fast_image_resize` (SIMD convolution), then the EXIF orientation.
//!
//! Variants are made largest first, each from the previous one when it is at least as large,
//! so the 150 px thumbnail is resampled from the 600 px medium rather than from a 12 MP
//! original. The orientation is applied to each small result, not to the large source.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};

use crate::decoded::{Decoded, swaps_axes};
use crate::{ImagingError, Layout, Raster};

/// Makes one raster per target size (given as displayed, after orientation), in order.
///
/// Takes the decoded image by value: a target the size of the decoded raster (an image already
/// within the largest variant, the common case for 1 MP uploads) gets the decoded pixels moved
/// in rather than copied, which saves a full-size copy and its page faults.
pub(crate) fn resize_all(
    decoded: Decoded,
    targets: &[(u32, u32)],
) -> Result<Vec<Raster>, ImagingError> {
    let Decoded {
        raster: source,
        orientation,
        ..
    } = decoded;
    let swap = swaps_axes(orientation);
    let stored_targets: Vec<(u32, u32)> = targets
        .iter()
        .map(|&(width, height)| {
            if swap {
                (height, width)
            } else {
                (width, height)
            }
        })
        .collect();

    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&index| {
        let (width, height) = stored_targets[index];
        std::cmp::Reverse(u64::from(width) * u64::from(height))
    });

    let mut resizer = Resizer::new();
    let mut made: Vec<Option<Raster>> = vec![None; targets.len()];
    // Targets the size of the source; filled once nothing needs to read the source any more.
    let mut source_sized = Vec::new();
    let mut previous: Option<usize> = None;
    for index in order {
        let (width, height) = stored_targets[index];
        if width == source.width && height == source.height {
            source_sized.push(index);
            continue;
        }
        let from = match previous.and_then(|p| made[p].as_ref()) {
            Some(raster) if raster.width >= width && raster.height >= height => raster,
            _ => &source,
        };
        made[index] = Some(resize(&mut resizer, from, width, height)?);
        previous = Some(index);
    }
    if let Some((&last, others)) = source_sized.split_last() {
        for &index in others {
            made[index] = Some(source.clone());
        }
        made[last] = Some(source);
    }

    made.into_iter()
        .map(|raster| {
            let raster =
                raster.ok_or_else(|| ImagingError::Resize("a variant was not made".into()))?;
            Ok(orient(raster, orientation))
        })
        .collect()
}

fn pixel_type(layout: Layout) -> PixelType {
    match layout {
        Layout::Gray => PixelType::U8,
        Layout::Rgb => PixelType::U8x3,
    }
}

fn resize(
    resizer: &mut Resizer,
    source: &Raster,
    width: u32,
    height: u32,
) -> Result<Raster, ImagingError> {
    let pixel_type = pixel_type(source.layout);
    let source_view = ImageRef::new(source.width, source.height, &source.pixels, pixel_type)
        .map_err(|err| ImagingError::Resize(err.to_string()))?;
    let mut destination = Image::new(width, height, pixel_type);
    // Lanczos3 is what Pillow's LANCZOS filter is, so variants match the original lab's. The
    // cheaper filters were measured on one core (AVX2) and kept out: CatmullRom saves about
    // 0.7 ms on a 1 MP upload and 1.5 ms on a 12 MP one (of ~18 and ~95 ms, which decoding and
    // encoding dominate), for slightly softer variants; SuperSampling saves under 0.3 ms because
    // the reduced-scale JPEG decode and the cascade keep every step's ratio at 4 or below.
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&source_view, &mut destination, &options)
        .map_err(|err| ImagingError::Resize(err.to_string()))?;
    Ok(Raster {
        width,
        height,
        layout: source.layout,
        pixels: destination.into_vec(),
    })
}

/// Applies the EXIF orientation so the variant displays upright without EXIF data.
fn orient(raster: Raster, orientation: Orientation) -> Raster {
    if orientation == Orientation::NoTransforms {
        return raster;
    }
    let Raster {
        width,
        height,
        layout,
        pixels,
    } = raster;
    let image = match layout {
        Layout::Gray => GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        Layout::Rgb => RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
    };
    // from_raw only fails on a short buffer, which resize() never makes.
    let Some(mut image) = image else {
        return Raster {
            width,
            height,
            layout,
            pixels: Vec::new(),
        };
    };
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let pixels = match image {
        DynamicImage::ImageLuma8(buffer) => buffer.into_raw(),
        other => other.into_rgb8().into_raw(),
    };
    Raster {
        width,
        height,
        layout,
        pixels,
    }
}
