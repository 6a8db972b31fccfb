//! What a decode will cost, found before any decoder runs: the structure walks that count a
//! JPEG's scans and check every GIF frame's size (the decoders check neither), and the peak
//! memory of the whole pipeline estimated from the header, so a caller can refuse or queue an
//! image before it allocates anything.
//!
//! The estimate counts what is alive at once in each stage, from the codecs' own allocation
//! patterns: the native pixels as decoded (16-bit PNG keeps 16 bits), the conversion to 8-bit
//! that runs while they are still alive, a progressive JPEG's coefficient buffer (all of it, at
//! full size, even when the output is scaled down), the resampler's intermediate image and the
//! variants. It rounds up everywhere; a decode never needs more than it says.

use image::{ColorType, ImageDecoder, ImageReader, Limits};

use crate::decoded::{SourceFormat, check_pixels, corrupt};
use crate::{DecodeLimits, ImagingError, VariantSpec, fit_within};

/// What [`crate::decode_cost`] finds: the image's stored size and the most memory the
/// pipeline will hold at once while it makes the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCost {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
    /// Peak bytes of the decode, the resize and the variants, including the encoded input.
    pub peak_bytes: u64,
}

/// Allocator and codec overhead not proportional to the pixels: row buffers, Huffman and
/// LZW tables, the zlib window, the resampler's coefficients.
const FIXED_OVERHEAD: u64 = 4 * 1024 * 1024;

/// Checks everything the header and the structure can tell before decoding, and estimates
/// the peak memory. Refuses with a typed error what the limits forbid.
pub(crate) fn decode_cost(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<DecodeCost, ImagingError> {
    let format = SourceFormat::detect(bytes).ok_or(ImagingError::NotAnImage)?;
    let (width, height, working) = match format {
        SourceFormat::Jpeg => jpeg_cost(bytes, specs, limits)?,
        SourceFormat::Gif
        | SourceFormat::Png
        | SourceFormat::WebP
        | SourceFormat::Tiff
        | SourceFormat::Bmp => image_crate_cost(bytes, format, limits)?,
    };
    let peak_bytes = (bytes.len() as u64)
        .saturating_add(working)
        .saturating_add(variants_bytes(width, height, specs))
        .saturating_add(FIXED_OVERHEAD);
    if peak_bytes > limits.max_bytes {
        return Err(ImagingError::TooMuchMemory {
            width,
            height,
            needed_bytes: peak_bytes,
            max_bytes: limits.max_bytes,
        });
    }
    Ok(DecodeCost {
        format,
        width,
        height,
        peak_bytes,
    })
}

/// The variants as resized, plus one oriented copy of each (orientation makes a new buffer).
fn variants_bytes(width: u32, height: u32, specs: &[VariantSpec]) -> u64 {
    specs
        .iter()
        .map(|spec| {
            let (w, h) = fit_within(width, height, spec.longest_side);
            u64::from(w) * u64::from(h) * 3 * 2
        })
        .sum()
}

/// The `image::Limits` every `image` decoder runs under: its allocations may not exceed the
/// byte cap (the PNG decoder passes it on to `png`, the GIF decoder checks its frame buffer).
pub(crate) fn image_limits(limits: DecodeLimits) -> Limits {
    let mut image_limits = Limits::no_limits();
    image_limits.max_alloc = Some(limits.max_bytes);
    image_limits
}

/// PNG, GIF, WebP, TIFF and BMP through the `image` crate: the native pixels, then `flatten`'s
/// conversion to 8-bit (new buffers made while the old is alive), then the resampler.
fn image_crate_cost(
    bytes: &[u8],
    format: SourceFormat,
    limits: DecodeLimits,
) -> Result<(u32, u32, u64), ImagingError> {
    // GIF frames are checked first: the decoder allocates the first frame's own size, which
    // nothing ties to the logical screen's.
    let first_frame = match format {
        SourceFormat::Gif => gif_first_frame(bytes, limits)?,
        _ => None,
    };
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format.image_format());
    reader.limits(image_limits(limits));
    let decoder = reader
        .into_decoder()
        .map_err(|err| crate::decode::image_error(format, err))?;
    let (width, height) = decoder.dimensions();
    check_pixels(format, width, height, limits)?;
    let pixels = u64::from(width) * u64::from(height);
    let color = decoder.color_type();
    let native = pixels * u64::from(color.bytes_per_pixel());
    // flatten(): without alpha one conversion to 8-bit grey/RGB (a move when already so);
    // with alpha a conversion to 8-bit grey+alpha/RGBA, then the composite onto white.
    let out_channels: u64 = if color.has_color() { 3 } else { 1 };
    let with_alpha_channels = out_channels + 1;
    let flatten = if color.has_alpha() {
        let eight_bit = pixels * with_alpha_channels;
        let converted = if is_eight_bit(color) { 0 } else { eight_bit };
        (native + converted).max(eight_bit + pixels * out_channels)
    } else {
        let converted = if is_eight_bit(color) {
            0
        } else {
            pixels * out_channels
        };
        native + converted
    };
    let decoding = match format {
        // The GIF decoder reads a frame that does not fill the screen into a buffer of its
        // own before compositing it.
        SourceFormat::Gif => {
            native + first_frame.map_or(0, |(w, h)| u64::from(w) * u64::from(h) * 4)
        }
        // Lossy WebP decodes to YUV planes (1.5 bytes a pixel) first, lossless to 4-byte
        // ARGB; an animation decodes each frame beside the canvas it is composited onto.
        SourceFormat::WebP => {
            let frame = pixels * 4;
            native + frame + if webp_animated(bytes) { frame } else { 0 }
        }
        // A TIFF's strips or tiles are decompressed into a buffer of their own before they are
        // copied into the image; a single strip is the whole image.
        SourceFormat::Tiff => native * 2,
        // PNG: two rows of the native width, for unfiltering; BMP: one row. Both in the fixed
        // overhead.
        _ => native,
    };
    let resize = resize_bytes(pixels, out_channels);
    Ok((width, height, decoding.max(flatten).max(resize)))
}

fn is_eight_bit(color: ColorType) -> bool {
    matches!(
        color,
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8
    )
}

/// The decoded raster and the resampler's intermediate image, which is at most as large.
fn resize_bytes(pixels: u64, channels: u64) -> u64 {
    pixels * channels * 2
}

/// Whether a WebP is an animation (its `VP8X` header's animation flag).
fn webp_animated(bytes: &[u8]) -> bool {
    bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// The structure of a JPEG as far as the decoders' costs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JpegStructure {
    pub width: u32,
    pub height: u32,
    /// `(horizontal, vertical)` sampling factors of each component.
    pub sampling: Vec<(u8, u8)>,
    pub progressive: bool,
    pub scans: u32,
}

/// Walks a JPEG's marker segments to its end, counting the scans (`SOS`), and refuses it as
/// soon as there are more than `max_scans`: a progressive file may have any number of scans,
/// each a pass over every block, so a few megabytes of tiny scans cost minutes of a core in
/// a decoder with no limit of its own (`jpeg-decoder`, `zune-jpeg`).
///
/// Entropy-coded data is skipped by looking for the next marker as the decoders do (`FF 00`
/// is a stuffed byte, `FF D0`–`FF D7` are restart markers, `FF FF` is fill); segments with a
/// length are skipped whole, so an EXIF thumbnail's own markers are not counted.
pub(crate) fn jpeg_structure(bytes: &[u8], max_scans: u32) -> Result<JpegStructure, ImagingError> {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    if bytes.get(..2) != Some(&[0xFF, SOI]) {
        return Err(ImagingError::NotAnImage);
    }
    let mut frame: Option<JpegStructure> = None;
    let mut scans: u32 = 0;
    let mut at = 2;
    // memchr: most of a JPEG is entropy-coded data, scanned here for its next 0xFF.
    while let Some(offset) = bytes.get(at..).and_then(|rest| memchr::memchr(0xFF, rest)) {
        at += offset;
        // Any number of fill bytes may precede a marker.
        while bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = bytes.get(at + 1) else {
            break;
        };
        match marker {
            // A stuffed zero or a restart marker inside entropy-coded data; TEM.
            0x00 | 0xD0..=0xD7 | 0x01 => {
                at += 2;
                continue;
            }
            EOI => break,
            _ => {}
        }
        let Some(length) = bytes
            .get(at + 2..at + 4)
            .map(|len| usize::from(u16::from_be_bytes([len[0], len[1]])))
        else {
            break;
        };
        let body = bytes
            .get(at + 4..(at + 2 + length).min(bytes.len()))
            .unwrap_or(&[]);
        if marker == SOS {
            scans += 1;
            if scans > max_scans {
                return Err(ImagingError::TooManyScans { max_scans });
            }
        } else if is_start_of_frame(marker) && frame.is_none() && body.len() >= 6 {
            let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
            let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
            let components = usize::from(body[5]);
            let sampling = body
                .get(6..6 + components * 3)
                .unwrap_or(&[])
                .chunks_exact(3)
                .map(|component| ((component[1] >> 4).max(1), (component[1] & 0x0F).max(1)))
                .collect();
            frame = Some(JpegStructure {
                width,
                height,
                sampling,
                progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
                scans: 0,
            });
        }
        at += 2 + length.max(2);
    }
    let frame = frame.ok_or_else(|| corrupt(SourceFormat::Jpeg, "no frame header"))?;
    Ok(JpegStructure { scans, ..frame })
}

/// `SOF0`–`SOF15` but `DHT` (C4), `JPG` (C8) and `DAC` (CC), which share the range.
fn is_start_of_frame(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// A JPEG's decode: the coefficient buffer a multi-scan file needs (every block of every
/// component, 64 16-bit coefficients each, at full size whatever the output scale), the
/// component planes and the output at the scale the decoders choose, then the resampler.
fn jpeg_cost(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<(u32, u32, u64), ImagingError> {
    let structure = jpeg_structure(bytes, limits.max_scans)?;
    let (width, height) = (structure.width, structure.height);
    check_pixels(SourceFormat::Jpeg, width, height, limits)?;
    let max_h = u64::from(structure.sampling.iter().map(|s| s.0).max().unwrap_or(1));
    let max_v = u64::from(structure.sampling.iter().map(|s| s.1).max().unwrap_or(1));
    let mcus_across = u64::from(width).div_ceil(8 * max_h);
    let mcus_down = u64::from(height).div_ceil(8 * max_v);
    let components = structure.sampling.len().max(1) as u64;
    let coefficients = if structure.progressive || structure.scans > 1 {
        structure
            .sampling
            .iter()
            .map(|&(h, v)| mcus_across * u64::from(h) * mcus_down * u64::from(v) * 64 * 2)
            .sum()
    } else {
        0
    };
    // CMYK and YCCK are decoded at full size (see decode.rs); grey and colour at the reduced
    // DCT scale that still covers the largest variant.
    let scale = match specs.iter().map(|spec| spec.longest_side).max() {
        Some(largest) if components != 4 => {
            let (target_width, target_height) = fit_within(width, height, largest);
            crate::turbo::reduced_scale(width, height, target_width, target_height)
        }
        _ => hybridlab_turbojpeg::ScalingFactor::ONE,
    };
    let padded_pixels = u64::from(scale.scale((mcus_across * max_h * 8) as u32))
        * u64::from(scale.scale((mcus_down * max_v * 8) as u32));
    let out_pixels = u64::from(scale.scale(width)) * u64::from(scale.scale(height));
    let out_channels = if components == 1 { 1 } else { 3 };
    let decoding = coefficients + padded_pixels * components + out_pixels * out_channels;
    let resize = resize_bytes(out_pixels, out_channels);
    Ok((width, height, decoding.max(resize)))
}

/// Walks a GIF's blocks and checks every frame's size against the pixel limit; answers the
/// first frame's size. The `image` crate checks only the logical screen, then allocates the
/// first frame at its own declared size (up to 65535x65535, 16 GiB), so a 1x1 screen can
/// carry a 134-megapixel frame.
pub(crate) fn gif_first_frame(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Result<Option<(u32, u32)>, ImagingError> {
    let le16 = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    // Sub-blocks: a length byte and that many bytes, ended by a zero length.
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let length = usize::from(*bytes.get(at)?);
            at += 1;
            if length == 0 {
                return Some(at);
            }
            at += length;
        }
    };
    let table_bytes = |packed: u8| -> usize {
        if packed & 0x80 != 0 {
            3 << ((packed & 0x07) + 1)
        } else {
            0
        }
    };
    let Some(&screen_packed) = bytes.get(10) else {
        return Ok(None);
    };
    let mut at = 13 + table_bytes(screen_packed);
    let mut first = None;
    let mut index = 0;
    while let Some(&block) = bytes.get(at) {
        match block {
            // Extension: a label, then sub-blocks.
            0x21 => match skip_sub_blocks(at + 2) {
                Some(next) => at = next,
                None => break,
            },
            // Image descriptor: left, top, width, height, packed; a local colour table; the
            // LZW minimum code size; the image data as sub-blocks.
            0x2C => {
                let (Some(width), Some(height), Some(&packed)) =
                    (le16(at + 5), le16(at + 7), bytes.get(at + 9))
                else {
                    break;
                };
                let pixels = u64::from(width) * u64::from(height);
                if pixels > limits.max_pixels {
                    return Err(ImagingError::FrameTooLarge {
                        frame: index,
                        width,
                        height,
                        pixels,
                        max_pixels: limits.max_pixels,
                    });
                }
                first.get_or_insert((width, height));
                index += 1;
                match skip_sub_blocks(at + 10 + table_bytes(packed) + 1) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            // The trailer, or anything else: the decoder has the last word on what follows.
            _ => break,
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len() + 2).expect("short body");
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// SOI, a progressive 3-component SOF, then `scans` scans of entropy data holding stuffed
    /// bytes and restart markers, then EOI.
    fn progressive(scans: usize) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        // An EXIF thumbnail with scans of its own inside APP1 must not count.
        let mut thumbnail = b"Exif\0\0".to_vec();
        thumbnail.extend([0xFF, 0xD8]);
        thumbnail.extend(segment(0xDA, b"\x01\x01\0\0\x3f\0"));
        thumbnail.extend([0xFF, 0xD9]);
        jpeg.extend(segment(0xE1, &thumbnail));
        jpeg.extend(segment(
            0xC2,
            &[
                8, 0x01, 0x00, 0x02, 0x00, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
            ],
        ));
        for _ in 0..scans {
            jpeg.extend(segment(0xDA, b"\x01\x01\0\0\x3f\0"));
            jpeg.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF]);
        }
        jpeg.extend([0xFF, 0xD9]);
        jpeg
    }

    #[test]
    fn the_jpeg_walk_counts_scans_and_reads_the_frame() {
        let structure = jpeg_structure(&progressive(7), 100).expect("walks");
        assert_eq!(
            structure,
            JpegStructure {
                width: 512,
                height: 256,
                sampling: vec![(2, 2), (1, 1), (1, 1)],
                progressive: true,
                scans: 7,
            }
        );
    }

    #[test]
    fn a_jpeg_with_more_scans_than_the_limit_is_refused_before_decoding() {
        assert!(jpeg_structure(&progressive(100), 100).is_ok());
        assert!(matches!(
            jpeg_structure(&progressive(101), 100),
            Err(ImagingError::TooManyScans { max_scans: 100 })
        ));
    }

    #[test]
    fn the_jpeg_walk_survives_truncation_and_garbage() {
        let jpeg = progressive(3);
        for end in 0..jpeg.len() {
            // Never panics; a cut before the frame header is an error, not a guess.
            let _ = jpeg_structure(&jpeg[..end], 100);
        }
        assert!(jpeg_structure(b"\xFF\xD8\xFF\xE1\x00\x00", 100).is_err());
    }

    /// A GIF with a `screen` logical screen and one frame of `frame` size.
    fn gif(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend(screen.0.to_le_bytes());
        gif.extend(screen.1.to_le_bytes());
        gif.extend([0x80, 0, 0]); // a global table of 2 colours
        gif.extend([0, 0, 0, 255, 255, 255]);
        gif.extend([0x21, 0xF9, 4, 0, 0, 0, 0, 0]); // graphic control extension
        gif.push(0x2C);
        gif.extend([0, 0, 0, 0]);
        gif.extend(frame.0.to_le_bytes());
        gif.extend(frame.1.to_le_bytes());
        gif.push(0);
        gif.extend([2, 2, 0x4C, 0x01, 0]); // LZW data
        gif.push(0x3B);
        gif
    }

    #[test]
    fn every_gif_frame_is_checked_not_only_the_screen() {
        let limits = DecodeLimits::default();
        assert_eq!(
            gif_first_frame(&gif((1, 1), (1, 1)), limits).expect("small"),
            Some((1, 1))
        );
        let err = gif_first_frame(&gif((1, 1), (65535, 2048)), limits).expect_err("huge frame");
        assert!(
            matches!(
                err,
                ImagingError::FrameTooLarge {
                    frame: 0,
                    width: 65535,
                    height: 2048,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_large_frame_on_a_small_screen_counts_in_the_memory_estimate() {
        let small = decode_cost(
            &gif((1, 1), (1, 1)),
            &crate::LAB_VARIANTS,
            DecodeLimits::default(),
        )
        .expect("a cost");
        let large = decode_cost(
            &gif((1, 1), (4000, 4000)),
            &crate::LAB_VARIANTS,
            DecodeLimits::default(),
        )
        .expect("a cost");
        // The large frame's buffer replaces the small one's.
        assert_eq!(large.peak_bytes - small.peak_bytes, (4000 * 4000 - 1) * 4);
    }
}
