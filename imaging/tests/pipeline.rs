//! Behaviour of `make_variants`: sizes, orientation, colour models and the errors it reports.
//! Inputs are made in code; nothing here measures time.

use std::io::Cursor;

use hybridlab_imaging::{
    DecodeLimits, ExtraFormat, ImagingError, JpegCodec, LAB_VARIANTS, ProcessedImage, SourceFormat,
    make_variants, make_variants_in, make_variants_using,
};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ColorType, DynamicImage, ExtendedColorType, ImageEncoder};

/// Deterministic photo-like RGB pixels: gradients plus a little texture, so JPEGs are ordinary.
fn rgb_pixels(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let texture = ((x * 7 + y * 13) % 17) as u8;
            pixels.push((x * 255 / width.max(1)) as u8 / 2 + texture);
            pixels.push((y * 255 / height.max(1)) as u8 / 2 + texture);
            pixels.push(128 + texture);
        }
    }
    pixels
}

fn jpeg_from(pixels: &[u8], width: u32, height: u32, color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(pixels, width, height, color)
        .expect("encoding a test JPEG");
    out
}

fn rgb_jpeg(width: u32, height: u32) -> Vec<u8> {
    jpeg_from(
        &rgb_pixels(width, height),
        width,
        height,
        ExtendedColorType::Rgb8,
    )
}

fn png_from(pixels: &[u8], width: u32, height: u32, color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(Cursor::new(&mut out))
        .write_image(pixels, width, height, color)
        .expect("encoding a test PNG");
    out
}

/// Runs the pipeline with every JPEG codec this build has, checks that they agree (format,
/// sizes, and pixels within JPEG noise) and returns the preferred codec's result, which is
/// what `make_variants` gives.
fn process(bytes: &[u8]) -> ProcessedImage {
    let preferred =
        make_variants(bytes, &LAB_VARIANTS, DecodeLimits::default()).expect("make_variants");
    for codec in JpegCodec::available() {
        let other = make_variants_using(codec, bytes, &LAB_VARIANTS, DecodeLimits::default(), &[])
            .unwrap_or_else(|err| panic!("{}: {err}", codec.name()));
        assert_eq!(
            (other.format, other.width, other.height),
            (preferred.format, preferred.width, preferred.height),
            "{}",
            codec.name()
        );
        for (ours, theirs) in preferred.variants.iter().zip(&other.variants) {
            let (a, b) = (decode_variant(&ours.jpeg), decode_variant(&theirs.jpeg));
            assert_eq!(
                (a.width(), a.height(), a.color()),
                (b.width(), b.height(), b.color()),
                "{} {}",
                codec.name(),
                ours.name
            );
            let difference = mean_absolute_difference(a.as_bytes(), b.as_bytes());
            assert!(
                difference < 4.0,
                "{} {}: the codecs' variants differ by {difference:.2} levels on average",
                codec.name(),
                ours.name
            );
        }
    }
    preferred
}

fn mean_absolute_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len().max(1) as f64
}

/// The variants' sizes in the order of `LAB_VARIANTS` (thumbnail, medium, large), after
/// checking that each variant's JPEG decodes to the size it claims.
fn variant_sizes(processed: &ProcessedImage) -> Vec<(u32, u32)> {
    processed
        .variants
        .iter()
        .map(|variant| {
            let image = decode_variant(&variant.jpeg);
            assert_eq!(
                (image.width(), image.height()),
                (variant.width, variant.height),
                "variant {} decodes to another size than it reports",
                variant.name
            );
            (variant.width, variant.height)
        })
        .collect()
}

fn decode_variant(jpeg: &[u8]) -> DynamicImage {
    assert_eq!(&jpeg[..2], b"\xFF\xD8", "a variant must be a JPEG");
    image::load_from_memory(jpeg).expect("a variant must decode")
}

/// Inserts an APP1 Exif segment right after SOI whose IFD0 holds only Orientation = `value`.
fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II\x2A\x00"); // little endian, TIFF magic 42
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 right after the header
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // one value
    tiff.extend_from_slice(&value.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // the value field's padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let length = u16::try_from(payload.len() + 2).expect("a small segment");

    assert_eq!(&jpeg[..2], b"\xFF\xD8");
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(b"\xFF\xE1");
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit: the tests need it for one chunk.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_reference_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn landscape_variants_fit_the_longest_side() {
    // 2400x1600 takes the reduced-scale JPEG path (1/2 scale is exactly the large variant).
    let processed = process(&rgb_jpeg(2400, 1600));
    assert_eq!(processed.format, SourceFormat::Jpeg);
    assert_eq!((processed.width, processed.height), (2400, 1600));
    assert_eq!(
        variant_sizes(&processed),
        vec![(150, 100), (600, 400), (1200, 800)]
    );
    let names: Vec<&str> = processed.variants.iter().map(|v| v.name).collect();
    assert_eq!(names, vec!["thumbnail", "medium", "large"]);

    // 1600x1200 is decoded at full size (the large variant is over half of it).
    let processed = process(&rgb_jpeg(1600, 1200));
    assert_eq!(
        variant_sizes(&processed),
        vec![(150, 113), (600, 450), (1200, 900)]
    );
}

#[test]
fn portrait_variants_fit_the_longest_side() {
    let processed = process(&rgb_jpeg(1200, 1600));
    assert_eq!((processed.width, processed.height), (1200, 1600));
    assert_eq!(
        variant_sizes(&processed),
        vec![(113, 150), (450, 600), (900, 1200)]
    );

    // Reduced-scale path, then resampled.
    let processed = process(&rgb_jpeg(1600, 3200));
    assert_eq!(
        variant_sizes(&processed),
        vec![(75, 150), (300, 600), (600, 1200)]
    );
}

#[test]
fn small_images_are_never_upscaled() {
    let processed = process(&rgb_jpeg(100, 80));
    assert_eq!(
        variant_sizes(&processed),
        vec![(100, 80), (100, 80), (100, 80)]
    );

    // Only the large variant is the original's size; the others are scaled down.
    let processed = process(&rgb_jpeg(1000, 700));
    assert_eq!(
        variant_sizes(&processed),
        vec![(150, 105), (600, 420), (1000, 700)]
    );
}

#[test]
fn grayscale_jpegs_stay_decodable_and_grey() {
    for (width, height) in [(2400, 1800), (640, 480)] {
        let gray: Vec<u8> = (0..width * height)
            .map(|i| ((i % width) * 255 / width) as u8)
            .collect();
        let processed = process(&jpeg_from(&gray, width, height, ExtendedColorType::L8));
        assert_eq!((processed.width, processed.height), (width, height));
        for variant in &processed.variants {
            let image = decode_variant(&variant.jpeg);
            assert_eq!(
                image.color(),
                ColorType::L8,
                "{width}x{height} {}",
                variant.name
            );
            assert_eq!(
                (image.width(), image.height()),
                (variant.width, variant.height)
            );
        }
    }
}

#[test]
fn grayscale_png_with_alpha_is_flattened_to_grey() {
    let pixels: Vec<u8> = (0..64 * 32).flat_map(|i| [(i % 64) as u8, 255]).collect();
    let processed = process(&png_from(&pixels, 64, 32, ExtendedColorType::La8));
    assert_eq!(processed.format, SourceFormat::Png);
    for variant in &processed.variants {
        assert_eq!(decode_variant(&variant.jpeg).color(), ColorType::L8);
    }
}

#[test]
fn rgba_png_is_flattened_onto_white() {
    // Left half fully transparent black, right half opaque red.
    let (width, height) = (400, 200);
    let mut pixels = Vec::new();
    for _y in 0..height {
        for x in 0..width {
            if x < width / 2 {
                pixels.extend_from_slice(&[0, 0, 0, 0]);
            } else {
                pixels.extend_from_slice(&[255, 0, 0, 255]);
            }
        }
    }
    let processed = process(&png_from(&pixels, width, height, ExtendedColorType::Rgba8));
    assert_eq!(processed.format, SourceFormat::Png);
    assert_eq!(
        variant_sizes(&processed),
        vec![(150, 75), (400, 200), (400, 200)]
    );
    for variant in &processed.variants {
        let image = decode_variant(&variant.jpeg);
        assert_eq!(image.color(), ColorType::Rgb8);
        let rgb = image.to_rgb8();
        let (w, h) = (rgb.width(), rgb.height());
        let left = rgb.get_pixel(w / 8, h / 2).0;
        let right = rgb.get_pixel(w - 1 - w / 8, h / 2).0;
        assert!(
            left.iter().all(|&c| c > 240),
            "{}: transparent must become white, got {left:?}",
            variant.name
        );
        assert!(
            right[0] > 200 && right[1] < 60 && right[2] < 60,
            "{}: opaque red must stay red, got {right:?}",
            variant.name
        );
    }
}

/// A picture whose left half is red and right half blue, stored with Orientation 6 (the
/// camera was turned: the viewer rotates it 90° clockwise, so the red half ends on top).
fn rotated_red_blue_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for _y in 0..height {
        for x in 0..width {
            if x < width / 2 {
                pixels.extend_from_slice(&[220, 20, 20]);
            } else {
                pixels.extend_from_slice(&[20, 20, 220]);
            }
        }
    }
    with_exif_orientation(
        &jpeg_from(&pixels, width, height, ExtendedColorType::Rgb8),
        6,
    )
}

fn assert_red_on_top(processed: &ProcessedImage) {
    for variant in &processed.variants {
        let rgb = decode_variant(&variant.jpeg).to_rgb8();
        let (w, h) = (rgb.width(), rgb.height());
        let top = rgb.get_pixel(w / 2, h / 8).0;
        let bottom = rgb.get_pixel(w / 2, h - 1 - h / 8).0;
        assert!(
            top[0] > 150 && top[2] < 100,
            "{}: top should be red, got {top:?}",
            variant.name
        );
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "{}: bottom should be blue, got {bottom:?}",
            variant.name
        );
    }
}

#[test]
fn exif_orientation_6_rotates_and_swaps_dimensions() {
    // Small: full-size decode.
    let processed = process(&rotated_red_blue_jpeg(400, 200));
    assert_eq!((processed.width, processed.height), (200, 400));
    assert_eq!(
        variant_sizes(&processed),
        vec![(75, 150), (200, 400), (200, 400)]
    );
    assert_red_on_top(&processed);

    // Large: reduced-scale decode.
    let processed = process(&rotated_red_blue_jpeg(3000, 2000));
    assert_eq!((processed.width, processed.height), (2000, 3000));
    assert_eq!(
        variant_sizes(&processed),
        vec![(100, 150), (400, 600), (800, 1200)]
    );
    assert_red_on_top(&processed);
}

#[test]
fn truncated_jpegs_are_corrupt() {
    // 2400x1800 takes the reduced-scale decoder, 640x480 the full-size one.
    for (width, height) in [(2400, 1800), (640, 480)] {
        let jpeg = rgb_jpeg(width, height);
        // Sanity: the whole file is fine.
        process(&jpeg);
        for (codec, keep) in JpegCodec::available()
            .into_iter()
            .flat_map(|codec| [(codec, jpeg.len() / 2), (codec, jpeg.len() - 64)])
        {
            let limits = DecodeLimits::default();
            let result = make_variants_using(codec, &jpeg[..keep], &LAB_VARIANTS, limits, &[]);
            assert!(
                matches!(
                    result,
                    Err(ImagingError::Corrupt {
                        format: SourceFormat::Jpeg,
                        ..
                    })
                ),
                "{} {width}x{height} cut to {keep} of {} bytes: {result:?}",
                codec.name(),
                jpeg.len()
            );
        }
    }
}

#[test]
fn a_file_libjpeg_turbo_stops_at_gets_the_pure_rust_verdict() {
    // Two stray bytes between segments: libjpeg-turbo stops at its warning "2 extraneous bytes
    // before marker 0xdb"; then the pure-Rust decoders decide, as before libjpeg-turbo came in.
    // jpeg-decoder (the reduced-scale route) skips them, zune-jpeg in strict mode refuses.
    let with_stray_bytes = |width, height| {
        let mut jpeg = rgb_jpeg(width, height);
        let dqt = jpeg
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDB])
            .expect("a quantization table");
        jpeg.splice(dqt..dqt, [0x00, 0x00]);
        jpeg
    };
    let processed = process(&with_stray_bytes(2400, 1800));
    assert_eq!((processed.width, processed.height), (2400, 1800));

    let full_size = with_stray_bytes(640, 480);
    for codec in JpegCodec::available() {
        let result = make_variants_using(
            codec,
            &full_size,
            &LAB_VARIANTS,
            DecodeLimits::default(),
            &[],
        );
        assert!(
            matches!(&result, Err(ImagingError::Corrupt { reason, .. }) if reason.contains("strict")),
            "{}: {result:?}",
            codec.name()
        );
    }
}

#[test]
fn truncated_png_is_corrupt() {
    let png = png_from(&rgb_pixels(300, 200), 300, 200, ExtendedColorType::Rgb8);
    let result = make_variants(
        &png[..png.len() / 2],
        &LAB_VARIANTS,
        DecodeLimits::default(),
    );
    assert!(
        matches!(
            result,
            Err(ImagingError::Corrupt {
                format: SourceFormat::Png,
                ..
            })
        ),
        "{result:?}"
    );
}

/// A valid 1x1 PNG of `color` whose IHDR is patched to declare `width`x`height`.
fn png_declaring(width: u32, height: u32, color: ExtendedColorType, pixel: &[u8]) -> Vec<u8> {
    let mut png = png_from(pixel, 1, 1, color);
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), 5 more bytes, CRC (4).
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn a_png_declaring_too_many_pixels_is_refused_before_decoding() {
    for (color, pixel) in [
        (ExtendedColorType::L8, &[7u8][..]),
        (ExtendedColorType::Rgb8, &[1, 2, 3][..]),
        (ExtendedColorType::Rgba8, &[1, 2, 3, 4][..]),
    ] {
        let png = png_declaring(20_000, 20_000, color, pixel);
        let result = make_variants(&png, &LAB_VARIANTS, DecodeLimits::default());
        assert!(
            matches!(
                result,
                Err(ImagingError::TooManyPixels {
                    width: 20_000,
                    height: 20_000,
                    pixels: 400_000_000,
                    max_pixels: 64_000_000,
                })
            ),
            "{color:?}: {result:?}"
        );
    }
}

#[test]
fn the_pixel_limit_is_the_callers() {
    let jpeg = rgb_jpeg(400, 300);
    let big = rgb_jpeg(2400, 1800);
    for codec in JpegCodec::available() {
        let limits = DecodeLimits {
            max_pixels: 100_000,
            ..DecodeLimits::default()
        };
        let result = make_variants_using(codec, &jpeg, &LAB_VARIANTS, limits, &[]);
        assert!(
            matches!(
                result,
                Err(ImagingError::TooManyPixels {
                    width: 400,
                    height: 300,
                    pixels: 120_000,
                    max_pixels: 100_000,
                })
            ),
            "{}: {result:?}",
            codec.name()
        );
        let limits = DecodeLimits {
            max_pixels: 1_000_000,
            ..DecodeLimits::default()
        };
        let result = make_variants_using(codec, &big, &LAB_VARIANTS, limits, &[]);
        assert!(
            matches!(result, Err(ImagingError::TooManyPixels { .. })),
            "{}: {result:?}",
            codec.name()
        );
    }
}

#[test]
fn cmyk_jpegs_come_out_as_rgb_with_either_codec() {
    // Ink amounts, as jpeg-encoder takes them: cyan on the left half, black on the right.
    let (width, height) = (1600u16, 1200u16);
    let mut cmyk = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for _y in 0..height {
        for x in 0..width {
            let ink = if x >= width / 2 {
                [0, 0, 0, 255]
            } else {
                [255, 0, 0, 0]
            };
            cmyk.extend_from_slice(&ink);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&cmyk, width, height, jpeg_encoder::ColorType::Cmyk)
        .expect("encoding a CMYK JPEG");
    let processed = process(&jpeg);
    assert_eq!((processed.width, processed.height), (1600, 1200));
    for variant in &processed.variants {
        let rgb = decode_variant(&variant.jpeg).to_rgb8();
        let (w, h) = (rgb.width(), rgb.height());
        let left = rgb.get_pixel(w / 4, h / 2).0;
        let right = rgb.get_pixel(w * 3 / 4, h / 2).0;
        assert!(
            left[0] < 60 && left[1] > 190 && left[2] > 190,
            "{}: the left half should be cyan, got {left:?}",
            variant.name
        );
        assert!(
            right.iter().all(|&channel| channel < 60),
            "{}: the right half should be black, got {right:?}",
            variant.name
        );
    }
}

#[test]
fn random_bytes_are_not_an_image() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert!(
        matches!(
            make_variants(&bytes, &LAB_VARIANTS, DecodeLimits::default()),
            Err(ImagingError::NotAnImage)
        ),
        "random bytes"
    );
    assert!(matches!(
        make_variants(b"", &LAB_VARIANTS, DecodeLimits::default()),
        Err(ImagingError::NotAnImage)
    ));
}

#[test]
fn extra_formats_hold_the_same_pixels_as_lossless_png_and_webp() {
    let processed = make_variants_in(
        &rgb_jpeg(1600, 1200),
        &LAB_VARIANTS,
        DecodeLimits::default(),
        &[ExtraFormat::WebP, ExtraFormat::Png],
    )
    .expect("make_variants_in");
    for variant in &processed.variants {
        let formats: Vec<ExtraFormat> = variant.extra.iter().map(|(format, _)| *format).collect();
        assert_eq!(
            formats,
            [ExtraFormat::WebP, ExtraFormat::Png],
            "{}",
            variant.name
        );
        let webp =
            image::load_from_memory_with_format(&variant.extra[0].1, image::ImageFormat::WebP)
                .expect("the WebP decodes");
        let png = image::load_from_memory_with_format(&variant.extra[1].1, image::ImageFormat::Png)
            .expect("the PNG decodes");
        assert_eq!(
            (webp.width(), webp.height()),
            (variant.width, variant.height)
        );
        // Both are lossless encodings of one raster.
        assert_eq!(webp.to_rgb8(), png.to_rgb8(), "{}", variant.name);
    }
    assert!(process(&rgb_jpeg(64, 48)).variants[0].extra.is_empty());
}
