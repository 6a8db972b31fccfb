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

/// A GIF with a `screen` logical screen and one frame of `frame` size, every pixel of it
/// coded (one colour, so the LZW data stays small: about 100 KB for 134 megapixels). The
/// `image` crate checks the screen, then allocates the frame's own size (4 bytes a pixel) and
/// decodes into it.
pub fn gif_with_oversized_frame(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    use std::io::Read as _;

    let mut gif = b"GIF89a".to_vec();
    gif.extend(screen.0.to_le_bytes());
    gif.extend(screen.1.to_le_bytes());
    // A global colour table of two colours, background 0, no aspect ratio.
    gif.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    gif.extend([0, 0, 0, 0]);
    gif.extend(frame.0.to_le_bytes());
    gif.extend(frame.1.to_le_bytes());
    gif.push(0);
    const MIN_CODE_SIZE: u8 = 2;
    let pixels = u64::from(frame.0) * u64::from(frame.1);
    let mut lzw = Vec::new();
    let mut encoder = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, MIN_CODE_SIZE);
    encoder
        .into_stream(&mut lzw)
        .encode_all(std::io::BufReader::new(std::io::repeat(0).take(pixels)))
        .status
        .expect("LZW-encodes");
    gif.push(MIN_CODE_SIZE);
    for block in lzw.chunks(255) {
        gif.push(block.len() as u8);
        gif.extend_from_slice(block);
    }
    gif.extend([0, 0x3B]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oversized_frame_gif_is_a_real_gif_whose_frame_decodes() {
        // A small one of the same construction: decoders read the frame's pixels, so the
        // large one would really be decoded into its own buffer without the frame check.
        let gif = gif_with_oversized_frame((1, 1), (300, 200));
        use image::AnimationDecoder as _;

        let decoder =
            image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&gif)).expect("a GIF header");
        let first = decoder
            .into_frames()
            .next()
            .expect("a frame")
            .expect("the frame decodes");
        assert_eq!(first.buffer().dimensions(), (1, 1));
    }

    #[test]
    fn the_scan_bomb_is_mostly_repeated_scans_and_small() {
        let bomb = scan_bomb_jpeg(5_000);
        let scans = bomb.windows(2).filter(|pair| pair == &[0xFF, 0xDA]).count();
        assert_eq!(scans, 5_000);
        assert!(bomb.len() < 5_000 * 512, "{} bytes", bomb.len());
    }
}
