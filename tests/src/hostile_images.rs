//! Hostile images made in code, for the tests of the decode limits: a JPEG of thousands of
//! scans, a GIF whose frame is far larger than its screen, and 16-bit PNGs whose decode needs
//! twelve bytes a pixel. Nothing large is committed; each is built when a test asks.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

/// A progressive JPEG of a flat 256x256 picture whose smallest scan is repeated until the
/// file has `scans` scans (each about a hundred bytes: every block is one end-of-block code).
/// Decoded, each scan is a pass over its component's blocks; a decoder without a scan limit
/// spends minutes of a core on a few megabytes of them at larger sizes.
pub fn scan_bomb_jpeg(scans: usize) -> Vec<u8> {
    let (width, height) = (256u16, 256u16);
    let flat = [0x60, 0x90, 0xC0].repeat(usize::from(width) * usize::from(height));
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    encoder.set_progressive(true);
    encoder
        .encode(&flat, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    let end = jpeg.len() - 2;
    assert_eq!(&jpeg[end..], &[0xFF, 0xD9], "the JPEG ends with EOI");
    // The encoder stuffs every 0xFF in entropy-coded data, so FF DA only starts a scan.
    let mut starts: Vec<usize> = jpeg
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| pair == &[0xFF, 0xDA])
        .map(|(at, _)| at)
        .collect();
    let written = starts.len();
    starts.push(end);
    // A scan runs to the next scan or to EOI; no table segments come between them here.
    let smallest = starts
        .windows(2)
        .map(|pair| (pair[0], pair[1]))
        .min_by_key(|(start, next)| next - start)
        .expect("a progressive JPEG has scans");
    let scan = jpeg[smallest.0..smallest.1].to_vec();
    let mut bomb = jpeg[..end].to_vec();
    for _ in written..scans {
        bomb.extend_from_slice(&scan);
    }
    bomb.extend([0xFF, 0xD9]);
    bomb
}

/// A GIF with a `screen` logical screen whose one frame declares `frame`: the `image` crate
/// checks the screen, then allocates the frame's own size (4 bytes a pixel). The frame's LZW
/// data is a clear code and an end code.
pub fn gif_with_oversized_frame(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(screen.0.to_le_bytes());
    gif.extend(screen.1.to_le_bytes());
    // A global colour table of two colours, background 0, no aspect ratio.
    gif.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    gif.extend([0, 0, 0, 0]);
    gif.extend(frame.0.to_le_bytes());
    gif.extend(frame.1.to_le_bytes());
    gif.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    gif
}

/// A valid `width`×`height` PNG of 16-bit RGBA, half transparent so every stage of the
/// pipeline runs (the 16-bit decode, the conversion to 8-bit RGBA, the composite onto white).
/// A flat colour, so the file stays small while its decode does not: 8 bytes a pixel decoded.
pub fn png_16bit_rgba(width: u32, height: u32) -> Vec<u8> {
    let pixel = [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x80, 0x00];
    let pixels = pixel.repeat(width as usize * height as usize);
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Sub)
        .write_image(&pixels, width, height, ExtendedColorType::Rgba16)
        .expect("encodes");
    png
}
