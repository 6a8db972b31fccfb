//! The formats students send besides JPEG, PNG, GIF and WebP, as the seed labs' Pillow server
//! takes them: TIFF (its first page only, whatever follows) and BMP, under the same pixel and
//! memory limits as every other format, checked from the header before anything is decoded.

use std::io::Cursor;

use hybridlab_imaging::{
    DecodeLimits, ImagingError, LAB_VARIANTS, SourceFormat, decode_cost, make_variants,
};
use image::codecs::bmp::BmpEncoder;
use image::{ExtendedColorType, ImageEncoder};
use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};

fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    rgb.iter()
        .copied()
        .cycle()
        .take(width as usize * height as usize * 3)
        .collect()
}

/// A TIFF of two pages: a red `first` and a blue `second`, of other sizes.
fn two_page_tiff(first: (u32, u32), second: (u32, u32)) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out).expect("an encoder");
    encoder
        .write_image::<colortype::RGB8>(first.0, first.1, &solid(first.0, first.1, [220, 20, 20]))
        .expect("page 1");
    encoder
        .write_image::<colortype::RGB8>(
            second.0,
            second.1,
            &solid(second.0, second.1, [20, 20, 220]),
        )
        .expect("page 2");
    out.into_inner()
}

fn bmp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    BmpEncoder::new(&mut out)
        .write_image(
            &solid(width, height, [20, 200, 20]),
            width,
            height,
            ExtendedColorType::Rgb8,
        )
        .expect("encodes");
    out
}

/// The colour at the centre of a variant's JPEG.
fn centre(jpeg: &[u8]) -> [u8; 3] {
    let image = image::load_from_memory(jpeg).expect("a JPEG").into_rgb8();
    image.get_pixel(image.width() / 2, image.height() / 2).0
}

#[test]
fn a_multipage_tiff_gives_its_first_page() {
    let tiff = two_page_tiff((640, 480), (300, 900));
    let processed = make_variants(&tiff, &LAB_VARIANTS, DecodeLimits::default()).expect("decodes");
    assert_eq!(processed.format, SourceFormat::Tiff);
    assert_eq!(processed.format.extension(), "tif");
    assert_eq!(processed.format.mime_type(), "image/tiff");
    assert_eq!(
        (processed.width, processed.height),
        (640, 480),
        "page 1's size"
    );
    let [r, g, b] = centre(&processed.variants[0].jpeg);
    assert!(r > 180 && g < 60 && b < 60, "page 1 is red: {r},{g},{b}");
    assert_eq!(
        (processed.variants[0].width, processed.variants[0].height),
        (150, 113)
    );
}

#[test]
fn a_bmp_photo_is_made_into_the_variants() {
    let processed =
        make_variants(&bmp(1600, 1200), &LAB_VARIANTS, DecodeLimits::default()).expect("decodes");
    assert_eq!(processed.format, SourceFormat::Bmp);
    assert_eq!((processed.width, processed.height), (1600, 1200));
    let sizes: Vec<(u32, u32)> = processed
        .variants
        .iter()
        .map(|variant| (variant.width, variant.height))
        .collect();
    assert_eq!(sizes, [(150, 113), (600, 450), (1200, 900)]);
    let [r, g, b] = centre(&processed.variants[1].jpeg);
    assert!(g > 160 && r < 60 && b < 60, "green: {r},{g},{b}");
}

/// Sets the 32-bit little-endian value of a TIFF entry with `tag` in the first directory (the
/// encoder writes little-endian, with the first directory's offset at byte 4).
fn patch_tiff_entry(tiff: &mut [u8], tag: u16, value: u32) {
    let ifd = u32::from_le_bytes(tiff[4..8].try_into().expect("4 bytes")) as usize;
    let count = u16::from_le_bytes([tiff[ifd], tiff[ifd + 1]]) as usize;
    for entry in 0..count {
        let at = ifd + 2 + entry * 12;
        if u16::from_le_bytes([tiff[at], tiff[at + 1]]) == tag {
            let kind = u16::from_le_bytes([tiff[at + 2], tiff[at + 3]]);
            match kind {
                3 => tiff[at + 8..at + 10].copy_from_slice(&(value as u16).to_le_bytes()),
                _ => tiff[at + 8..at + 12].copy_from_slice(&value.to_le_bytes()),
            }
            return;
        }
    }
    panic!("no tag {tag} in the first directory");
}

#[test]
fn a_tiff_or_bmp_that_claims_too_many_pixels_is_refused_from_its_header() {
    // 60,000 x 60,000 = 3.6 gigapixels in a file of a few kilobytes: a Deflate strip whose
    // size says nothing of the pixels, and a header otherwise consistent.
    let mut tiff = Cursor::new(Vec::new());
    TiffEncoder::new(&mut tiff)
        .expect("an encoder")
        .with_compression(Compression::Deflate(DeflateLevel::Balanced))
        .write_image::<colortype::RGB8>(32, 32, &solid(32, 32, [0, 0, 0]))
        .expect("a page");
    let mut tiff = tiff.into_inner();
    patch_tiff_entry(&mut tiff, 256, 60_000); // ImageWidth
    patch_tiff_entry(&mut tiff, 257, 60_000); // ImageLength
    patch_tiff_entry(&mut tiff, 278, 60_000); // RowsPerStrip: still one strip
    let mut bomb_bmp = bmp(64, 48);
    // BITMAPINFOHEADER: width at 18, height at 22 (signed, little-endian).
    bomb_bmp[18..22].copy_from_slice(&60_000i32.to_le_bytes());
    bomb_bmp[22..26].copy_from_slice(&60_000i32.to_le_bytes());
    for (name, bytes) in [("tiff", tiff), ("bmp", bomb_bmp)] {
        for result in [
            decode_cost(&bytes, &LAB_VARIANTS, DecodeLimits::default()).map(|_| ()),
            make_variants(&bytes, &LAB_VARIANTS, DecodeLimits::default()).map(|_| ()),
        ] {
            assert!(
                matches!(
                    result,
                    Err(ImagingError::TooManyPixels {
                        width: 60_000,
                        height: 60_000,
                        ..
                    })
                ),
                "{name}: {result:?}"
            );
        }
    }
}

#[test]
fn a_tiff_within_the_pixels_but_over_the_memory_is_refused_before_decoding() {
    let tiff = two_page_tiff((2000, 1500), (8, 8));
    let limits = DecodeLimits {
        max_bytes: 16 * 1024 * 1024,
        ..DecodeLimits::default()
    };
    let refused = decode_cost(&tiff, &LAB_VARIANTS, limits);
    assert!(
        matches!(
            refused,
            Err(ImagingError::TooMuchMemory {
                width: 2000,
                height: 1500,
                ..
            })
        ),
        "{refused:?}"
    );
    let cost = decode_cost(&tiff, &LAB_VARIANTS, DecodeLimits::default()).expect("fits");
    // Two copies of the 9 MB raster (a single strip is decompressed beside the image) at least.
    assert!(cost.peak_bytes > 2 * 2000 * 1500 * 3, "{cost:?}");
}

#[test]
fn truncated_tiffs_and_bmps_are_corrupt_not_a_panic() {
    for (name, bytes) in [
        ("tiff", two_page_tiff((200, 100), (8, 8))),
        ("bmp", bmp(200, 100)),
    ] {
        let truncated = &bytes[..bytes.len() / 2];
        let result = make_variants(truncated, &LAB_VARIANTS, DecodeLimits::default());
        assert!(
            matches!(
                result,
                Err(ImagingError::Corrupt { .. } | ImagingError::DecoderLimit { .. })
            ),
            "{name}: {result:?}"
        );
    }
}
