//! The libjpeg-turbo route for JPEG: decode at the smallest SIMD DCT scale that still covers the
//! largest variant, and encode the variants. The EXIF orientation is read here because the
//! TurboJPEG API does not parse APP segments.

use hybridlab_turbojpeg::{
    Colorspace, PixelFormat, SIMD_REDUCED_SCALES, ScalingFactor, TurboError,
};
use image::metadata::Orientation;

use crate::decoded::{Decoded, SourceFormat, check_pixels, corrupt};
use crate::{DecodeLimits, ImagingError, Layout, Raster, VariantSpec, fit_within};

/// Decodes a JPEG, or answers `None` for colour models the pure-Rust route converts better
/// (CMYK and YCCK, where libjpeg-turbo would hand back inverted Adobe CMYK).
pub(crate) fn decode_jpeg(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<Option<Decoded>, ImagingError> {
    let header = hybridlab_turbojpeg::read_header(bytes).map_err(jpeg_corrupt)?;
    let (full_width, full_height) = (header.width, header.height);
    check_pixels(SourceFormat::Jpeg, full_width, full_height, limits)?;
    let (layout, format) = match header.colorspace {
        Colorspace::Gray => (Layout::Gray, PixelFormat::Gray),
        Colorspace::Rgb | Colorspace::YCbCr => (Layout::Rgb, PixelFormat::Rgb),
        Colorspace::Cmyk | Colorspace::Ycck => return Ok(None),
    };
    // Scale and orientation commute for the longest side, so the target in stored orientation
    // is known before the EXIF data is read.
    let scale = match specs.iter().map(|spec| spec.longest_side).max() {
        Some(largest_side) => {
            let (width, height) = fit_within(full_width, full_height, largest_side);
            reduced_scale(full_width, full_height, width, height)
        }
        None => ScalingFactor::ONE,
    };
    let pixels = hybridlab_turbojpeg::decode(bytes, &header, scale, format).map_err(|err| {
        // The scan limit (TJFLAG_LIMITSCANS) is final: handing the file on to a pure-Rust
        // decoder, which has no such limit, would do the very work the limit refused.
        if err == TurboError::TooManyScans {
            ImagingError::TooManyScans {
                max_scans: hybridlab_turbojpeg::MAX_SCANS,
            }
        } else {
            jpeg_corrupt(err)
        }
    })?;
    let orientation = exif_segment(bytes)
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Some(Decoded {
        format: SourceFormat::Jpeg,
        raster: Raster {
            width: scale.scale(full_width),
            height: scale.scale(full_height),
            layout,
            pixels,
        },
        full_width,
        full_height,
        orientation,
    }))
}

/// The smallest SIMD scale whose output still covers `target` in both directions, so the
/// variants are resampled down, never up; full size when none does.
pub(crate) fn reduced_scale(
    width: u32,
    height: u32,
    target_width: u32,
    target_height: u32,
) -> ScalingFactor {
    SIMD_REDUCED_SCALES
        .iter()
        .rev()
        .copied()
        .find(|scale| scale.scale(width) >= target_width && scale.scale(height) >= target_height)
        .unwrap_or(ScalingFactor::ONE)
}

pub(crate) fn encode_jpeg(raster: &Raster, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let format = match raster.layout {
        Layout::Gray => PixelFormat::Gray,
        Layout::Rgb => PixelFormat::Rgb,
    };
    hybridlab_turbojpeg::encode(&raster.pixels, raster.width, raster.height, format, quality)
        .map_err(|err| ImagingError::Encode(err.to_string()))
}

fn jpeg_corrupt(err: TurboError) -> ImagingError {
    corrupt(SourceFormat::Jpeg, err)
}

/// The TIFF data of the first `APP1` segment that starts `Exif\0\0`, looked for among the
/// segments before the first scan.
fn exif_segment(jpeg: &[u8]) -> Option<&[u8]> {
    const SOI: u8 = 0xD8;
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    const APP1: u8 = 0xE1;
    if jpeg.get(..2)? != [0xFF, SOI] {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while *jpeg.get(at)? == 0xFF && *jpeg.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        if marker == SOS || marker == EOI {
            return None;
        }
        // Standalone markers (RSTn, TEM) carry no length.
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let body = jpeg.get(at + 4..at + 2 + length.max(2))?;
        if marker == APP1
            && let Some(tiff) = body.strip_prefix(b"Exif\0\0")
        {
            return Some(tiff);
        }
        at += 2 + length.max(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_smallest_that_covers_the_target() {
        let scale = |w, h, tw, th| {
            let s = reduced_scale(w, h, tw, th);
            (s.num, s.denom)
        };
        // 12 MP to 1200x900: 1/2 (2000x1500); 1/4 would be 1000x750, too small.
        assert_eq!(scale(4000, 3000, 1200, 900), (1, 2));
        assert_eq!(scale(4800, 3600, 1200, 900), (1, 4));
        assert_eq!(scale(9600, 7200, 1200, 900), (1, 8));
        // A 1 MP image is within the largest variant: full size.
        assert_eq!(scale(1155, 866, 1155, 866), (1, 1));
        // Under twice the target: 1/2 (1199x899) would fall short by a pixel.
        assert_eq!(scale(2397, 1798, 1200, 900), (1, 1));
        assert_eq!(scale(2399, 1799, 1200, 900), (1, 2));
    }

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len() + 2).expect("short body");
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn exif_is_found_after_other_segments_and_not_after_the_scan() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE0, b"JFIF\0\x01\x02"));
        jpeg.extend(segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>"));
        jpeg.extend([0xFF, 0xFF]); // fill byte
        jpeg.extend(segment(0xE1, b"Exif\0\0MM\0*tiff"));
        assert_eq!(exif_segment(&jpeg), Some(&b"MM\0*tiff"[..]));

        let mut late = vec![0xFF, 0xD8];
        late.extend(segment(0xDA, b"\x01\x01\0\0\x3f\0"));
        late.extend(segment(0xE1, b"Exif\0\0MM\0*tiff"));
        assert_eq!(exif_segment(&late), None);
    }

    #[test]
    fn exif_lookup_survives_truncation_and_garbage() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE1, b"Exif\0\0MM\0*tiff"));
        for end in 0..jpeg.len() {
            // Never panics; finds nothing until the segment is whole.
            assert_eq!(exif_segment(&jpeg[..end]), None);
        }
        assert_eq!(exif_segment(b"not a jpeg"), None);
        assert_eq!(exif_segment(&[0xFF, 0xD8, 0x00, 0x11]), None);
        assert_eq!(exif_segment(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x00]), None);
    }
}
