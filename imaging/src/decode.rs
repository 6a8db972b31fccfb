//! Format detection and decoding under the limits.
//!
//! Every image first goes through `cost.rs`, which refuses before any decoder runs what the
//! limits forbid (too many pixels in the image or any GIF frame, too many JPEG scans, too much
//! memory). JPEG goes to libjpeg-turbo when the build has it (`turbo.rs`). Otherwise, for CMYK,
//! and for a file libjpeg-turbo stops at with a warning, it takes one of two strict pure-Rust
//! decoders: `jpeg-decoder`
//! when the variants are at most half the original's size, because it can run the inverse DCT
//! at 1/2, 1/4 or 1/8 scale and so never builds the full-size image; `zune-jpeg` otherwise,
//! because it is the faster full-size decoder. All three are strict so a truncated file is an
//! error, not a half-grey picture. PNG, GIF and WebP go through `image`, under `image::Limits`
//! whose allocation cap is the byte limit. Every path reads the header and checks the pixel
//! limit again before it allocates the pixel buffer.

use std::io::Cursor;

use image::error::ImageError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use crate::decoded::{Decoded, SourceFormat, check_pixels, corrupt};
use crate::{DecodeLimits, ImagingError, JpegCodec, Layout, Raster, VariantSpec, fit_within};

pub(crate) fn decode(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
    codec: JpegCodec,
) -> Result<Decoded, ImagingError> {
    let format = crate::cost::decode_cost(bytes, specs, limits)?.format;
    if format != SourceFormat::Jpeg {
        return decode_with_image(bytes, format, limits);
    }
    if codec == JpegCodec::LibjpegTurbo {
        match crate::turbo::decode_jpeg(bytes, specs, limits) {
            Ok(Some(decoded)) => return Ok(decoded),
            Ok(None) => {}
            // libjpeg-turbo is asked to stop at its warnings, some of which are harmless
            // (stray bytes before a marker); the pure-Rust decoders get the last word, so a
            // file is refused only when they refuse it too. Its scan limit is not such a
            // warning: it comes back as `TooManyScans`, which is final.
            Err(ImagingError::Corrupt { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    match decode_jpeg_scaled(bytes, specs, limits)? {
        Some(decoded) => Ok(decoded),
        None => decode_jpeg_full(bytes, limits),
    }
}

/// Decodes at the smallest DCT scale that still covers the largest variant, or answers `None`
/// when no reduced scale applies (the variants are close to full size, or the colour model is
/// one this decoder would need converting).
///
/// Without its rayon feature, jpeg-decoder 0.3 still hands the IDCT of any image over 128 px
/// wide to one OS thread per colour component, and has no API to choose its single-threaded
/// worker. On one core that costs 11–15% (a 12 MP photo at 1/2 scale: 78 ms against 67–73 ms
/// with a copy patched to the single-threaded worker); only a patched decoder avoids it. Even
/// so this is the faster route for 12 MP: zune-jpeg has no reduced scales, and its full decode
/// alone (83 ms) is slower, before resampling from 12 MP.
fn decode_jpeg_scaled(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<Option<Decoded>, ImagingError> {
    let Some(largest_side) = specs.iter().map(|spec| spec.longest_side).max() else {
        return Ok(None);
    };
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder
        .read_info()
        .map_err(|err| corrupt(SourceFormat::Jpeg, err))?;
    let Some(info) = decoder.info() else {
        return Err(corrupt(SourceFormat::Jpeg, "no frame header"));
    };
    let (full_width, full_height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(SourceFormat::Jpeg, full_width, full_height, limits)?;
    let layout = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Layout::Gray,
        jpeg_decoder::PixelFormat::RGB24 => Layout::Rgb,
        _ => return Ok(None),
    };
    // Scale and orientation commute for the longest side, so the target in stored
    // orientation is known before the EXIF data is read.
    let (target_width, target_height) = fit_within(full_width, full_height, largest_side);
    if target_width * 2 > full_width && target_height * 2 > full_height {
        return Ok(None);
    }
    let requested = |side: u32| u16::try_from(side).unwrap_or(u16::MAX);
    let (width, height) = decoder
        .scale(requested(target_width), requested(target_height))
        .map_err(|err| corrupt(SourceFormat::Jpeg, err))?;
    let pixels = decoder
        .decode()
        .map_err(|err| corrupt(SourceFormat::Jpeg, err))?;
    let (width, height) = (u32::from(width), u32::from(height));
    if pixels.len() != width as usize * height as usize * layout.channels() {
        return Err(corrupt(
            SourceFormat::Jpeg,
            "the decoder returned fewer pixels than the header declares",
        ));
    }
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Some(Decoded {
        format: SourceFormat::Jpeg,
        raster: Raster {
            width,
            height,
            layout,
            pixels,
        },
        full_width,
        full_height,
        orientation,
    }))
}

fn decode_jpeg_full(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded, ImagingError> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|err| corrupt(SourceFormat::Jpeg, err))?;
    let Some((width, height)) = decoder.dimensions() else {
        return Err(corrupt(SourceFormat::Jpeg, "no frame header"));
    };
    // JPEG sizes are 16-bit, so these conversions cannot saturate.
    let (width, height) = (
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    );
    check_pixels(SourceFormat::Jpeg, width, height, limits)?;
    let layout = match decoder.input_colorspace() {
        Some(ColorSpace::Luma | ColorSpace::LumaA) => Layout::Gray,
        _ => Layout::Rgb,
    };
    let out_colorspace = match layout {
        Layout::Gray => ColorSpace::Luma,
        Layout::Rgb => ColorSpace::RGB,
    };
    let options = decoder.options().jpeg_set_out_colorspace(out_colorspace);
    decoder.set_options(options);
    let pixels = decoder
        .decode()
        .map_err(|err| corrupt(SourceFormat::Jpeg, err))?;
    if pixels.len() != width as usize * height as usize * layout.channels() {
        return Err(corrupt(
            SourceFormat::Jpeg,
            "the decoder returned fewer pixels than the header declares",
        ));
    }
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    Ok(Decoded {
        format: SourceFormat::Jpeg,
        raster: Raster {
            width,
            height,
            layout,
            pixels,
        },
        full_width: width,
        full_height: height,
        orientation,
    })
}

fn decode_with_image(
    bytes: &[u8],
    format: SourceFormat,
    limits: DecodeLimits,
) -> Result<Decoded, ImagingError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(crate::cost::image_limits(limits));
    let mut decoder = reader
        .into_decoder()
        .map_err(|err| image_error(format, err))?;
    let (width, height) = decoder.dimensions();
    check_pixels(format, width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|err| image_error(format, err))?;
    let raster = flatten(image);
    Ok(Decoded {
        format,
        raster,
        full_width: width,
        full_height: height,
        orientation,
    })
}

/// An `image` error as ours: its allocation limit is [`ImagingError::DecoderLimit`], anything
/// else is corrupt data.
pub(crate) fn image_error(format: SourceFormat, err: ImageError) -> ImagingError {
    match err {
        ImageError::Limits(limit) => ImagingError::DecoderLimit {
            format,
            reason: limit.to_string(),
        },
        other => corrupt(format, other),
    }
}

/// Brings any decoded image to 8-bit grey or RGB, compositing alpha onto white (a JPEG has no
/// alpha, and black behind transparent pixels is what a naive conversion would show).
fn flatten(image: DynamicImage) -> Raster {
    let (width, height) = (image.width(), image.height());
    let has_alpha = image.color().has_alpha();
    let gray = !image.color().has_color();
    match (gray, has_alpha) {
        (true, false) => Raster {
            width,
            height,
            layout: Layout::Gray,
            pixels: image.into_luma8().into_raw(),
        },
        (true, true) => {
            let pixels = image
                .into_luma_alpha8()
                .pixels()
                .map(|pixel| over_white(pixel.0[0], pixel.0[1]))
                .collect();
            Raster {
                width,
                height,
                layout: Layout::Gray,
                pixels,
            }
        }
        (false, false) => Raster {
            width,
            height,
            layout: Layout::Rgb,
            pixels: image.into_rgb8().into_raw(),
        },
        (false, true) => {
            let rgba = image.into_rgba8();
            let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
            for pixel in rgba.pixels() {
                let [r, g, b, a] = pixel.0;
                pixels.extend_from_slice(&[over_white(r, a), over_white(g, a), over_white(b, a)]);
            }
            Raster {
                width,
                height,
                layout: Layout::Rgb,
                pixels,
            }
        }
    }
}

/// One channel of a pixel with straight alpha `alpha`, composited over white.
fn over_white(value: u8, alpha: u8) -> u8 {
    let (value, alpha) = (u32::from(value), u32::from(alpha));
    // Rounded integer form of value*a + 255*(1-a); the result is at most 255.
    ((value * alpha + 255 * (255 - alpha) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_white_keeps_opaque_and_whitens_transparent() {
        assert_eq!(over_white(10, 255), 10);
        assert_eq!(over_white(10, 0), 255);
        assert_eq!(over_white(0, 128), 127);
    }

    #[test]
    fn detect_ignores_anything_but_the_signature() {
        assert_eq!(
            SourceFormat::detect(b"\x89PNG\r\n\x1a\n...."),
            Some(SourceFormat::Png)
        );
        assert_eq!(
            SourceFormat::detect(b"GIF89a......"),
            Some(SourceFormat::Gif)
        );
        assert_eq!(SourceFormat::detect(b"<html>not an image</html>"), None);
        assert_eq!(SourceFormat::detect(b""), None);
    }
}
