//! Test images made in code: every format the server accepts, the colour models and metadata
//! that trip naive pipelines, and the malformed inputs it must refuse.

use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    DynamicImage, ExtendedColorType, Frame, GrayImage, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage,
};

/// A photo-like RGB picture: gradients with a deterministic texture, so JPEGs compress as a
/// photograph does rather than as a flat colour.
pub fn rgb_picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23;
        Rgb([
            ((x * 255 / width.max(1)) as u8).wrapping_add(noise as u8),
            ((y * 255 / height.max(1)) as u8).wrapping_add(noise as u8),
            (((x + y) * 127 / (width + height).max(1)) as u8).wrapping_add(noise as u8),
        ])
    })
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&rgb_picture(width, height))
        .expect("encodes");
    out
}

pub fn progressive_jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = rgb_picture(width, height);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    encoder
        .encode(
            picture.as_raw(),
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encodes");
    out
}

pub fn grayscale_jpeg(width: u32, height: u32) -> Vec<u8> {
    let gray = DynamicImage::ImageRgb8(rgb_picture(width, height)).into_luma8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&gray)
        .expect("encodes");
    out
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            rgb_picture(width, height).as_raw(),
            width,
            height,
            ExtendedColorType::Rgb8,
        )
        .expect("encodes");
    out
}

/// An RGBA PNG whose left half is fully transparent.
pub fn rgba_png(width: u32, height: u32) -> Vec<u8> {
    let picture = RgbaImage::from_fn(width, height, |x, y| {
        let alpha = if x < width / 2 { 0 } else { 255 };
        Rgba([(x % 256) as u8, (y % 256) as u8, 0, alpha])
    });
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(picture.as_raw(), width, height, ExtendedColorType::Rgba8)
        .expect("encodes");
    out
}

pub fn grayscale_png(width: u32, height: u32) -> Vec<u8> {
    let gray = GrayImage::from_fn(width, height, |x, _| image::Luma([(x % 256) as u8]));
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(gray.as_raw(), width, height, ExtendedColorType::L8)
        .expect("encodes");
    out
}

/// A lossless WebP (the only kind `image` encodes).
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgb8(rgb_picture(width, height)).into_rgba8();
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .encode(rgba.as_raw(), width, height, ExtendedColorType::Rgba8)
        .expect("encodes");
    out
}

/// A two-page TIFF as a scanner or Preview writes one: the photo-like first page of
/// `width`×`height`, then a flat blue page of another size, which the server must ignore.
pub fn multipage_tiff(width: u32, height: u32) -> Vec<u8> {
    use tiff::encoder::{Compression, TiffEncoder, colortype};
    let mut out = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out)
        .expect("an encoder")
        .with_compression(Compression::Lzw);
    encoder
        .write_image::<colortype::RGB8>(width, height, rgb_picture(width, height).as_raw())
        .expect("page 1");
    let (second_width, second_height) = (height + 17, width + 5);
    let blue = RgbImage::from_pixel(second_width, second_height, Rgb([0, 0, 255]));
    encoder
        .write_image::<colortype::RGB8>(second_width, second_height, blue.as_raw())
        .expect("page 2");
    out.into_inner()
}

/// A 24-bit BMP photo.
pub fn bmp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut out)
        .write_image(
            rgb_picture(width, height).as_raw(),
            width,
            height,
            ExtendedColorType::Rgb8,
        )
        .expect("encodes");
    out
}

/// A two-frame animated GIF; the server takes its first frame.
pub fn gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        let first = DynamicImage::ImageRgb8(rgb_picture(width, height)).into_rgba8();
        let second = RgbaImage::from_pixel(width, height, Rgba([255, 0, 0, 255]));
        encoder
            .encode_frames([Frame::new(first), Frame::new(second)])
            .expect("encodes");
    }
    out
}

/// A JPEG of `width`×`height` as stored, with EXIF orientation 6 ("rotate 90° clockwise to
/// display"), so it displays as `height`×`width`.
pub fn exif_rotated_jpeg(width: u32, height: u32) -> Vec<u8> {
    with_exif_orientation(&jpeg(width, height), 6)
}

/// Inserts an APP1 Exif segment holding only an Orientation tag right after the SOI marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0"); // little-endian TIFF header
    tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding to four bytes
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let length = u16::try_from(payload.len() + 2).expect("small segment");
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The first `fraction` of an image's bytes.
pub fn truncated(bytes: &[u8], fraction: f64) -> Vec<u8> {
    bytes[..(bytes.len() as f64 * fraction) as usize].to_vec()
}

/// A decompression bomb: a valid PNG header declaring `width`×`height` (gigapixels, if asked)
/// followed by a tiny, compressible body. Decoding it would allocate gigabytes.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut real = Vec::new();
    PngEncoder::new(&mut real)
        .write_image(&[0u8; 3 * 8 * 8], 8, 8, ExtendedColorType::Rgb8)
        .expect("encodes");
    // Patch IHDR's width and height (bytes 16..24) and recompute its CRC (bytes 29..33).
    real[16..20].copy_from_slice(&width.to_be_bytes());
    real[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&real[12..29]);
    real[29..33].copy_from_slice(&crc.to_be_bytes());
    real
}

/// CRC-32 (IEEE), as PNG chunks use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Decodes an image the server produced, to check what it made.
pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("readable")
        .decode()
        .expect("a variant decodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_bomb_declares_its_size_and_stays_small() {
        let bomb = png_bomb(30_000, 30_000);
        assert!(bomb.len() < 1024);
        let reader = image::ImageReader::new(Cursor::new(&bomb))
            .with_guessed_format()
            .expect("readable");
        assert_eq!(
            reader.into_dimensions().expect("header parses"),
            (30_000, 30_000)
        );
    }
}
