//! What every decoder hands on (the pixels with their source format, full size and
//! orientation) and the checks every decoder applies before it allocates: `decode.rs` and
//! `turbo.rs` both produce a [`Decoded`], and the resizer takes it.

use image::ImageFormat;
use image::metadata::Orientation;

use crate::{DecodeLimits, ImagingError, Raster};

/// The image formats the lab accepts, detected from the bytes: those the seed labs' Pillow
/// server takes from students, TIFF (its first page) and BMP among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    /// The first page (image file directory) of a TIFF; later pages are not read.
    Tiff,
    Bmp,
}

impl SourceFormat {
    /// Detects the format from the file signature; `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        match image::guess_format(bytes).ok()? {
            ImageFormat::Jpeg => Some(Self::Jpeg),
            ImageFormat::Png => Some(Self::Png),
            ImageFormat::Gif => Some(Self::Gif),
            ImageFormat::WebP => Some(Self::WebP),
            ImageFormat::Tiff => Some(Self::Tiff),
            ImageFormat::Bmp => Some(Self::Bmp),
            _ => None,
        }
    }

    /// The lower-case name stored in the metadata row: `jpeg`, `png`, `gif`, `webp`, `tiff` or
    /// `bmp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Tiff => "tiff",
            Self::Bmp => "bmp",
        }
    }

    /// The file extension for the stored original.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Tiff => "tif",
            Self::Bmp => "bmp",
        }
    }

    /// The Content-Type of the stored original.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Tiff => "image/tiff",
            Self::Bmp => "image/bmp",
        }
    }

    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::WebP => ImageFormat::WebP,
            Self::Tiff => ImageFormat::Tiff,
            Self::Bmp => ImageFormat::Bmp,
        }
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decoded pixels as stored in the file (before the EXIF orientation), possibly at a reduced
/// DCT scale, with the full size and the orientation to apply.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub format: SourceFormat,
    pub raster: Raster,
    pub full_width: u32,
    pub full_height: u32,
    pub orientation: Orientation,
}

impl Decoded {
    /// The full size as displayed, after the orientation.
    pub fn oriented_size(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.full_height, self.full_width)
        } else {
            (self.full_width, self.full_height)
        }
    }
}

/// True where applying `orientation` turns width into height.
pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

pub(crate) fn check_pixels(
    format: SourceFormat,
    width: u32,
    height: u32,
    limits: DecodeLimits,
) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(corrupt(format, "the image has no pixels"));
    }
    Ok(())
}

pub(crate) fn corrupt(format: SourceFormat, reason: impl std::fmt::Display) -> ImagingError {
    ImagingError::Corrupt {
        format,
        reason: reason.to_string(),
    }
}
