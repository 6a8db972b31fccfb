//! JPEG encoding with libjpeg-turbo when the build has it, else `jpeg-encoder` (AVX2 where the
//! CPU has it), 4:2:0 either way; PNG and lossless WebP with the `image` crate's encoders.

use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};
use jpeg_encoder::{ColorType, Encoder};

use crate::{ExtraFormat, ImagingError, JpegCodec, Layout, Raster};

pub(crate) fn encode_jpeg(
    raster: &Raster,
    quality: u8,
    codec: JpegCodec,
) -> Result<Vec<u8>, ImagingError> {
    if codec == JpegCodec::LibjpegTurbo {
        return crate::turbo::encode_jpeg(raster, quality);
    }
    let width = u16::try_from(raster.width)
        .map_err(|_| ImagingError::Encode(format!("width {} is over 65535", raster.width)))?;
    let height = u16::try_from(raster.height)
        .map_err(|_| ImagingError::Encode(format!("height {} is over 65535", raster.height)))?;
    let color = match raster.layout {
        Layout::Gray => ColorType::Luma,
        Layout::Rgb => ColorType::Rgb,
    };
    // A q85 JPEG of a photo is roughly a tenth of its raw size; reserving that avoids regrowth.
    let mut jpeg = Vec::with_capacity(raster.pixels.len() / 8 + 1024);
    Encoder::new(&mut jpeg, quality)
        .encode(&raster.pixels, width, height, color)
        .map_err(|err| ImagingError::Encode(err.to_string()))?;
    Ok(jpeg)
}

pub(crate) fn encode_extra(raster: &Raster, format: ExtraFormat) -> Result<Vec<u8>, ImagingError> {
    let color = match raster.layout {
        Layout::Gray => ExtendedColorType::L8,
        Layout::Rgb => ExtendedColorType::Rgb8,
    };
    let mut out = Vec::new();
    let encoded = match format {
        ExtraFormat::Png => PngEncoder::new(&mut out).write_image(
            &raster.pixels,
            raster.width,
            raster.height,
            color,
        ),
        ExtraFormat::WebP => WebPEncoder::new_lossless(&mut out).write_image(
            &raster.pixels,
            raster.width,
            raster.height,
            color,
        ),
    };
    encoded.map_err(|err| ImagingError::Encode(format!("{}: {err}", format.name())))?;
    Ok(out)
}
