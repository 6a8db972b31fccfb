//! The lab's image pipeline as plain functions, no I/O and no async: detect the format, decode
//! under a pixel limit, apply the EXIF orientation, resize, and encode each variant. The server,
//! the resizer Lambda and the benchmark all call [`make_variants`].
//!
//! Decoding uses a reduced JPEG DCT scale when the variants are much smaller; resampling is
//! `fast_image_resize`; variants are JPEG, and on request also PNG or lossless WebP. JPEG goes
//! through libjpeg-turbo's SIMD code when the build could link it ([`JpegCodec::preferred`]),
//! else through pure-Rust codecs. The server calls it on a blocking thread, the resizer
//! inline.

mod cost;
mod decode;
mod decoded;
mod encode;
mod resize;
mod turbo;

use std::time::{Duration, Instant};

pub use cost::DecodeCost;
pub use decoded::SourceFormat;

/// The JPEG quality of every variant.
pub const JPEG_QUALITY: u8 = 85;

/// The codec JPEG is decoded and encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JpegCodec {
    /// libjpeg-turbo with its SIMD code, linked at build time when it could be had (see the
    /// `hybridlab-turbojpeg` crate). About 1.7 times as fast as the pure-Rust codecs on this
    /// project's machines (BENCHMARKS.md).
    LibjpegTurbo,
    /// `jpeg-decoder` for reduced-scale decoding, `zune-jpeg` for full size, `jpeg-encoder`.
    /// Also used for CMYK JPEGs whatever the choice.
    PureRust,
}

impl JpegCodec {
    /// libjpeg-turbo when this build has it, else the pure-Rust codecs.
    pub fn preferred() -> Self {
        if hybridlab_turbojpeg::AVAILABLE {
            Self::LibjpegTurbo
        } else {
            Self::PureRust
        }
    }

    /// Every codec this build can run, preferred first.
    pub fn available() -> Vec<Self> {
        let mut codecs = vec![Self::PureRust];
        if hybridlab_turbojpeg::AVAILABLE {
            codecs.insert(0, Self::LibjpegTurbo);
        }
        codecs
    }

    /// `libjpeg-turbo` or `pure-rust`, as reported by the server's health check.
    pub fn name(self) -> &'static str {
        match self {
            Self::LibjpegTurbo => "libjpeg-turbo",
            Self::PureRust => "pure-rust",
        }
    }
}

/// One variant to make: its name and the longest side, in pixels, it is scaled down to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    pub longest_side: u32,
}

/// The variants the lab makes: `thumbnail` (150 px), `medium` (600 px) and `large` (1200 px).
pub const LAB_VARIANTS: [VariantSpec; 3] = [
    VariantSpec {
        name: "thumbnail",
        longest_side: 150,
    },
    VariantSpec {
        name: "medium",
        longest_side: 600,
    },
    VariantSpec {
        name: "large",
        longest_side: 1200,
    },
];

/// Decoding limits, checked against the image's header and structure before any pixel buffer
/// is allocated. Together they bound the work of one decode, which cannot be interrupted once
/// it runs: pixels bound each pass, scans bound the passes, bytes bound the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most pixels (width × height) an image, and every frame of it, may have.
    pub max_pixels: u64,
    /// The most scans a JPEG may have. Encoders' progressive scripts have about ten (libjpeg's
    /// default for colour); libjpeg-turbo's own limit, when asked for one, is 500.
    pub max_scans: u32,
    /// The most memory one image may need at its peak, as [`decode_cost`] estimates it.
    pub max_bytes: u64,
}

/// The default of [`DecodeLimits::max_scans`]: ten times what encoders write.
pub const DEFAULT_MAX_SCANS: u32 = 100;

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 64_000_000,
            max_scans: DEFAULT_MAX_SCANS,
            // A 64-megapixel 16-bit RGBA PNG needs about 800 MB; nothing the pixel limit lets
            // through needs more than twice that.
            max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// Why an image could not be turned into variants.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The bytes are not one of the supported formats (JPEG, PNG, GIF, WebP).
    #[error("the data is not a JPEG, PNG, GIF or WebP image")]
    NotAnImage,
    /// The header declares more pixels than the limit; nothing was allocated.
    #[error(
        "the image is {width}x{height} ({pixels} pixels), over the limit of {max_pixels} pixels"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },
    /// A frame of an animation declares more pixels than the limit; nothing was allocated.
    #[error(
        "frame {frame} of the image is {width}x{height} ({pixels} pixels), over the limit of \
         {max_pixels} pixels"
    )]
    FrameTooLarge {
        frame: usize,
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },
    /// A JPEG has more scans than the limit: each scan is a pass over the whole image, so a
    /// file of many tiny scans is a way to make a decoder work for minutes. Refused before
    /// decoding, by every codec.
    #[error("the JPEG has more than {max_scans} scans, the most that is decoded")]
    TooManyScans { max_scans: u32 },
    /// Decoding the image would need more memory than one decode may have.
    #[error(
        "the {width}x{height} image needs about {} MiB to decode, over the limit of {} MiB",
        needed_bytes.div_ceil(1024 * 1024),
        max_bytes / (1024 * 1024)
    )]
    TooMuchMemory {
        width: u32,
        height: u32,
        needed_bytes: u64,
        max_bytes: u64,
    },
    /// A decoder stopped at its own allocation limit (set from `max_bytes`).
    #[error("the {format} image needs more memory than the decoder is allowed: {reason}")]
    DecoderLimit {
        format: SourceFormat,
        reason: String,
    },
    /// The bytes start as an image but do not decode (truncated or corrupt).
    #[error("the {format} image does not decode: {reason}")]
    Corrupt {
        format: SourceFormat,
        reason: String,
    },
    /// Resampling failed; a bug rather than bad input.
    #[error("resizing failed: {0}")]
    Resize(String),
    /// Encoding failed; a bug rather than bad input.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// A format a variant can be converted to besides its JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtraFormat {
    /// Lossless WebP (the only WebP the `image` crate encodes).
    WebP,
    Png,
}

impl ExtraFormat {
    /// The name used in configuration and as the file extension: `webp`, `png`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebP => "webp",
            Self::Png => "png",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::WebP => "image/webp",
            Self::Png => "image/png",
        }
    }

    /// Parses [`Self::name`], ignoring case; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "webp" => Some(Self::WebP),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// One encoded variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVariant {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// JPEG bytes.
    pub jpeg: Vec<u8>,
    /// The same pixels in each extra format asked for, in the order asked.
    pub extra: Vec<(ExtraFormat, Vec<u8>)>,
}

/// Time spent in each stage of [`make_variants`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineTimings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

/// The outcome of [`make_variants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedImage {
    pub format: SourceFormat,
    /// Width of the original as displayed, after its EXIF orientation.
    pub width: u32,
    /// Height of the original as displayed, after its EXIF orientation.
    pub height: u32,
    /// In the order of the specs given.
    pub variants: Vec<EncodedVariant>,
    pub timings: PipelineTimings,
}

/// Detects the format of `bytes` from their signature, never from a file name.
pub fn detect_format(bytes: &[u8]) -> Option<SourceFormat> {
    SourceFormat::detect(bytes)
}

/// Reads the header and structure of `bytes`, applies every limit that needs no decoding (the
/// pixels of the image and of each GIF frame, a JPEG's scans, the memory) and estimates the
/// peak memory [`make_variants`] will need for `specs`, without allocating any pixels. The
/// pipeline runs the same checks itself; a caller that shares memory between decodes reserves
/// [`DecodeCost::peak_bytes`] first.
pub fn decode_cost(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<DecodeCost, ImagingError> {
    cost::decode_cost(bytes, specs, limits)
}

/// Decodes `bytes` and makes one JPEG per spec, each scaled so its longest side is the spec's
/// (never upscaled), in the orientation the EXIF data asks for.
pub fn make_variants(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
) -> Result<ProcessedImage, ImagingError> {
    make_variants_in(bytes, specs, limits, &[])
}

/// [`make_variants`], also encoding each variant in every format of `extra`, from the same
/// pixels rather than from its JPEG. The encode timing covers every format.
pub fn make_variants_in(
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
    extra: &[ExtraFormat],
) -> Result<ProcessedImage, ImagingError> {
    make_variants_using(JpegCodec::preferred(), bytes, specs, limits, extra)
}

/// [`make_variants_in`] with a chosen JPEG codec, for comparing them.
pub fn make_variants_using(
    codec: JpegCodec,
    bytes: &[u8],
    specs: &[VariantSpec],
    limits: DecodeLimits,
    extra: &[ExtraFormat],
) -> Result<ProcessedImage, ImagingError> {
    let started = Instant::now();
    let decoded = decode::decode(bytes, specs, limits, codec)?;
    let decode_time = started.elapsed();

    let format = decoded.format;
    let (width, height) = decoded.oriented_size();
    let targets: Vec<(u32, u32)> = specs
        .iter()
        .map(|spec| fit_within(width, height, spec.longest_side))
        .collect();

    let started = Instant::now();
    let rasters = resize::resize_all(decoded, &targets)?;
    let resize_time = started.elapsed();

    let started = Instant::now();
    let mut variants = Vec::with_capacity(specs.len());
    for (spec, raster) in specs.iter().zip(rasters) {
        let jpeg = encode::encode_jpeg(&raster, JPEG_QUALITY, codec)?;
        let extra = extra
            .iter()
            .map(|&format| Ok((format, encode::encode_extra(&raster, format)?)))
            .collect::<Result<_, ImagingError>>()?;
        variants.push(EncodedVariant {
            name: spec.name,
            width: raster.width,
            height: raster.height,
            jpeg,
            extra,
        });
    }
    let encode_time = started.elapsed();

    Ok(ProcessedImage {
        format,
        width,
        height,
        variants,
        timings: PipelineTimings {
            decode: decode_time,
            resize: resize_time,
            encode: encode_time,
        },
    })
}

/// The size of a `width`×`height` image scaled so its longest side is at most `longest_side`,
/// keeping the aspect ratio and never scaling up. Neither side goes below one pixel.
pub fn fit_within(width: u32, height: u32, longest_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= longest_side || longest == 0 {
        return (width.max(1), height.max(1));
    }
    let scale = f64::from(longest_side) / f64::from(longest);
    // Rounded, so a 4000x3000 image fits 1200 as 1200x900 exactly.
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, longest_side);
    (scaled(width), scaled(height))
}

/// Pixels in one of the two layouts the pipeline works in: 8-bit grey or 8-bit RGB. Alpha is
/// flattened onto white at decode time because every variant is a JPEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raster {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub pixels: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Gray,
    Rgb,
}

impl Layout {
    pub(crate) fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_scales_the_longest_side_and_keeps_the_ratio() {
        assert_eq!(fit_within(4000, 3000, 1200), (1200, 900));
        assert_eq!(fit_within(3000, 4000, 150), (113, 150));
        assert_eq!(fit_within(10_000, 10, 150), (150, 1));
    }

    #[test]
    fn fit_within_never_upscales() {
        assert_eq!(fit_within(800, 600, 1200), (800, 600));
        assert_eq!(fit_within(1200, 10, 1200), (1200, 10));
    }
}
