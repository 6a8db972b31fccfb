//! The limits that bound one decode's work and memory, against hostile images: scan bombs,
//! GIF frames larger than their screen, and images whose pixels fit the limit but whose
//! decode does not fit the memory.

use std::io::Cursor;
use std::time::{Duration, Instant};

use hybridlab_imaging::{
    DecodeLimits, ImagingError, JpegCodec, LAB_VARIANTS, SourceFormat, decode_cost, make_variants,
    make_variants_using,
};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

/// A progressive JPEG whose last scan is repeated until the file has `scans` scans. Every
/// decoder without a scan limit would run each of them over the whole image.
fn scan_bomb(scans: usize) -> Vec<u8> {
    let (width, height) = (64u16, 64u16);
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    encoder.set_progressive(true);
    encoder
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    let sos: Vec<usize> = jpeg
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| pair == &[0xFF, 0xDA])
        .map(|(at, _)| at)
        .collect();
    let last = *sos.last().expect("a progressive JPEG has scans");
    let end = jpeg.len() - 2;
    assert_eq!(&jpeg[end..], &[0xFF, 0xD9], "ends with EOI");
    let last_scan = jpeg[last..end].to_vec();
    let mut bomb = jpeg[..end].to_vec();
    for _ in sos.len()..scans {
        bomb.extend_from_slice(&last_scan);
    }
    bomb.extend([0xFF, 0xD9]);
    bomb
}

#[test]
fn a_jpeg_with_thousands_of_scans_is_refused_by_every_codec_before_decoding() {
    let bomb = scan_bomb(20_000);
    for codec in JpegCodec::available() {
        let started = Instant::now();
        let result = make_variants_using(codec, &bomb, &LAB_VARIANTS, DecodeLimits::default(), &[]);
        assert!(
            matches!(result, Err(ImagingError::TooManyScans { max_scans: 100 })),
            "{}: {result:?}",
            codec.name()
        );
        // Generous: the structure walk reads the file once; decoding it would take minutes.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            codec.name()
        );
    }
}

#[test]
fn the_scan_limit_is_the_callers_and_a_normal_progressive_jpeg_passes() {
    let normal = scan_bomb(0);
    for codec in JpegCodec::available() {
        let processed =
            make_variants_using(codec, &normal, &LAB_VARIANTS, DecodeLimits::default(), &[])
                .unwrap_or_else(|err| panic!("{}: {err}", codec.name()));
        assert_eq!((processed.width, processed.height), (64, 64));
        let strict = DecodeLimits {
            max_scans: 2,
            ..DecodeLimits::default()
        };
        let result = make_variants_using(codec, &normal, &LAB_VARIANTS, strict, &[]);
        assert!(
            matches!(result, Err(ImagingError::TooManyScans { max_scans: 2 })),
            "{}: {result:?}",
            codec.name()
        );
    }
}

/// A GIF with a `screen` logical screen and one frame of `frame` size whose LZW data is a
/// single clear code and end: enough for the header, nothing to decode.
fn gif(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(screen.0.to_le_bytes());
    gif.extend(screen.1.to_le_bytes());
    gif.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    gif.extend([0, 0, 0, 0]);
    gif.extend(frame.0.to_le_bytes());
    gif.extend(frame.1.to_le_bytes());
    gif.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    gif
}

#[test]
fn a_gif_frame_larger_than_the_pixel_limit_is_refused_whatever_the_screen() {
    // 1x1 screen, a 134-megapixel frame: the decoder would allocate 512 MiB for it.
    let bomb = gif((1, 1), (65_535, 2_048));
    let result = make_variants(&bomb, &LAB_VARIANTS, DecodeLimits::default());
    assert!(
        matches!(
            result,
            Err(ImagingError::FrameTooLarge {
                frame: 0,
                width: 65_535,
                height: 2_048,
                pixels: 134_215_680,
                max_pixels: 64_000_000,
            })
        ),
        "{result:?}"
    );
    // Under the pixel limit but over the memory one: the frame's buffer is counted.
    let limits = DecodeLimits {
        max_bytes: 64 * 1024 * 1024,
        ..DecodeLimits::default()
    };
    let result = make_variants(&gif((1, 1), (8_000, 4_000)), &LAB_VARIANTS, limits);
    assert!(
        matches!(
            result,
            Err(ImagingError::TooMuchMemory {
                width: 1,
                height: 1,
                ..
            })
        ),
        "{result:?}"
    );
}

fn png_16bit_rgba(width: u32, height: u32) -> Vec<u8> {
    let pixels = vec![0x40u8; width as usize * height as usize * 8];
    let mut png = Vec::new();
    PngEncoder::new(Cursor::new(&mut png))
        .write_image(&pixels, width, height, ExtendedColorType::Rgba16)
        .expect("encodes");
    png
}

#[test]
fn the_memory_estimate_counts_the_native_depth_and_the_conversions() {
    let (width, height) = (1_000, 800);
    let png = png_16bit_rgba(width, height);
    let cost = decode_cost(&png, &LAB_VARIANTS, DecodeLimits::default()).expect("a cost");
    assert_eq!(cost.format, SourceFormat::Png);
    assert_eq!((cost.width, cost.height), (width, height));
    // 8 bytes a pixel as decoded, 4 more for the 8-bit RGBA made from them.
    let pixels = u64::from(width) * u64::from(height);
    assert!(cost.peak_bytes >= pixels * 12, "{cost:?}");
    assert!(cost.peak_bytes < pixels * 12 + 16 * 1024 * 1024, "{cost:?}");

    let tight = DecodeLimits {
        max_bytes: pixels * 12,
        ..DecodeLimits::default()
    };
    let result = make_variants(&png, &LAB_VARIANTS, tight);
    assert!(
        matches!(
            &result,
            Err(ImagingError::TooMuchMemory { width: 1_000, height: 800, needed_bytes, max_bytes })
                if needed_bytes == &cost.peak_bytes && *max_bytes == pixels * 12
        ),
        "{result:?}"
    );
    let enough = DecodeLimits {
        max_bytes: cost.peak_bytes,
        ..DecodeLimits::default()
    };
    make_variants(&png, &LAB_VARIANTS, enough).expect("fits exactly");
}

#[test]
fn a_progressive_jpeg_is_charged_its_full_size_coefficients_even_when_scaled_down() {
    let baseline = {
        let pixels = vec![128u8; 4_000 * 3_000 * 3];
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&pixels, 4_000, 3_000, jpeg_encoder::ColorType::Rgb)
            .expect("encodes");
        jpeg
    };
    let progressive = {
        let pixels = vec![128u8; 4_000 * 3_000 * 3];
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
        encoder.set_progressive(true);
        encoder
            .encode(&pixels, 4_000, 3_000, jpeg_encoder::ColorType::Rgb)
            .expect("encodes");
        jpeg
    };
    let limits = DecodeLimits::default();
    let baseline = decode_cost(&baseline, &LAB_VARIANTS, limits).expect("a cost");
    let progressive = decode_cost(&progressive, &LAB_VARIANTS, limits).expect("a cost");
    // 4:2:0: 1.5 blocks of 64 two-byte coefficients per 64 pixels, at full size.
    assert!(
        progressive.peak_bytes >= baseline.peak_bytes + 4_000 * 3_000 * 3,
        "{baseline:?} {progressive:?}"
    );
}
