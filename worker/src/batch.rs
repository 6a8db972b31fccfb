//! The `image-batch` job: a zip or tar of images in; each image's variants (made by the same
//! `imaging` code as the server and the resizer), a contact sheet of their thumbnails and a
//! JSON manifest out. An entry that is no image, or one over the limits, is listed in the
//! manifest as failed and the rest go on; only an archive that cannot be read at all fails
//! the job. Every limit holds against the bytes actually read, whatever the archive's headers
//! declare: an archive is as hostile as any upload.

use std::io::Read;

use hybridlab_imaging::{DecodeLimits, LAB_VARIANTS, make_variants};
use serde::Serialize;

use crate::{JobError, Output};

/// The most entries an archive may hold (directories included): the variants of each are held
/// until the job uploads them, about 300 KB an image, on an instance of 1 GiB.
pub const MAX_ENTRIES: usize = 500;
/// The most bytes one entry may unpack to.
pub const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024;
/// The most bytes all entries together may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// The most pixels an image may have: a 1 GiB instance decodes one at a time, and the
/// server's own default is the same.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Thumbnails on the contact sheet, in archive order; the manifest lists every image.
pub const CONTACT_SHEET_MAX: usize = 100;
/// A contact sheet cell: the 150-pixel thumbnail and a margin.
const CELL: u32 = 160;
const SHEET_COLUMNS: u32 = 10;

/// The manifest's name among the outputs.
pub const MANIFEST: &str = "manifest.json";
pub const CONTACT_SHEET: &str = "contact-sheet.jpg";

/// What the manifest says of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageEntry {
    /// The entry's path in the archive.
    pub entry: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// The variants' names under the job's output prefix.
    pub variants: Vec<VariantEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariantEntry {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub output: String,
}

/// An entry that gave no variants, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedEntry {
    pub entry: String,
    pub error: String,
}

/// The manifest, written as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub archive: &'static str,
    pub images: Vec<ImageEntry>,
    pub failed: Vec<FailedEntry>,
    /// The contact sheet's name, when at least one image gave a thumbnail.
    pub contact_sheet: Option<String>,
    /// How many thumbnails the sheet shows (at most [`CONTACT_SHEET_MAX`]).
    pub contact_sheet_images: usize,
}

/// One file of the archive, read within the limits.
struct Entry {
    path: String,
    bytes: Result<Vec<u8>, String>,
}

/// Reads at most `limit` bytes from `reader`; more is an error, whatever a header declared.
fn read_capped(reader: &mut dyn Read, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("the entry does not unpack: {err}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("the entry unpacks to more than {limit} bytes"));
    }
    Ok(bytes)
}

/// Whether `input` is a zip (its local header or an empty archive's end record).
fn is_zip(input: &[u8]) -> bool {
    input.starts_with(b"PK\x03\x04") || input.starts_with(b"PK\x05\x06")
}

/// Whether `input` is a tar (POSIX ustar or GNU magic at offset 257).
fn is_tar(input: &[u8]) -> bool {
    input.get(257..262) == Some(b"ustar")
}

/// The archive's regular files, each read within the limits, in archive order.
fn entries(input: &[u8]) -> Result<(&'static str, Vec<Entry>), JobError> {
    let mut total = 0u64;
    let mut budget = |len: usize| {
        total += len as u64;
        total <= MAX_UNPACKED_BYTES
    };
    let too_big = || {
        JobError::BadArchive(format!(
            "the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes"
        ))
    };
    if is_zip(input) {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(input))
            .map_err(|err| JobError::BadArchive(format!("the zip does not read: {err}")))?;
        if archive.len() > MAX_ENTRIES {
            return Err(JobError::BadArchive(format!(
                "the zip has {} entries; a batch takes at most {MAX_ENTRIES}",
                archive.len()
            )));
        }
        let mut entries = Vec::new();
        for index in 0..archive.len() {
            let mut file = match archive.by_index(index) {
                Ok(file) => file,
                Err(err) => {
                    entries.push(Entry {
                        path: format!("#{index}"),
                        bytes: Err(format!("the entry does not read: {err}")),
                    });
                    continue;
                }
            };
            if file.is_dir() {
                continue;
            }
            let path = file
                .name()
                .map(|name| name.into_owned())
                .unwrap_or_else(|_| format!("#{index}"));
            let bytes = read_capped(&mut file, MAX_ENTRY_BYTES);
            if let Ok(bytes) = &bytes
                && !budget(bytes.len())
            {
                return Err(too_big());
            }
            entries.push(Entry { path, bytes });
        }
        Ok(("zip", entries))
    } else if is_tar(input) {
        let mut archive = tar::Archive::new(input);
        let mut entries = Vec::new();
        let listed = archive
            .entries()
            .map_err(|err| JobError::BadArchive(format!("the tar does not read: {err}")))?;
        for (index, entry) in listed.enumerate() {
            if index >= MAX_ENTRIES {
                return Err(JobError::BadArchive(format!(
                    "the tar has more than {MAX_ENTRIES} entries"
                )));
            }
            let mut entry = entry
                .map_err(|err| JobError::BadArchive(format!("the tar does not read: {err}")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| format!("#{index}"));
            let bytes = read_capped(&mut entry, MAX_ENTRY_BYTES);
            if let Ok(bytes) = &bytes
                && !budget(bytes.len())
            {
                return Err(too_big());
            }
            entries.push(Entry { path, bytes });
        }
        Ok(("tar", entries))
    } else {
        Err(JobError::BadArchive(
            "the input is neither a zip nor a tar".into(),
        ))
    }
}

/// A name for entry number `index` at `path` that is safe as part of an S3 key and unique in
/// the batch: its number, then its file name's letters, digits, dots, dashes and underscores.
pub fn output_dir(index: usize, path: &str) -> String {
    let file = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = file
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        format!("images/{index:04}")
    } else {
        format!("images/{index:04}-{cleaned}")
    }
}

/// Runs the batch: every image's variants, the contact sheet and the manifest.
pub fn image_batch(input: &[u8]) -> Result<Vec<Output>, JobError> {
    let (archive, entries) = entries(input)?;
    let limits = DecodeLimits {
        max_pixels: MAX_PIXELS,
        ..DecodeLimits::default()
    };
    let mut outputs = Vec::new();
    let mut images = Vec::new();
    let mut failed = Vec::new();
    let mut thumbnails = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let bytes = match entry.bytes {
            Ok(bytes) => bytes,
            Err(error) => {
                failed.push(FailedEntry {
                    entry: entry.path,
                    error,
                });
                continue;
            }
        };
        let processed = match make_variants(&bytes, &LAB_VARIANTS, limits) {
            Ok(processed) => processed,
            Err(err) => {
                failed.push(FailedEntry {
                    entry: entry.path,
                    error: err.to_string(),
                });
                continue;
            }
        };
        let dir = output_dir(index, &entry.path);
        let mut variants = Vec::new();
        for variant in processed.variants {
            let name = format!("{dir}/{}.jpg", variant.name);
            variants.push(VariantEntry {
                name: variant.name,
                width: variant.width,
                height: variant.height,
                output: name.clone(),
            });
            if variant.name == LAB_VARIANTS[0].name && thumbnails.len() < CONTACT_SHEET_MAX {
                thumbnails.push(variant.jpeg.clone());
            }
            outputs.push(Output {
                name,
                content_type: "image/jpeg",
                bytes: variant.jpeg,
                listed: false,
            });
        }
        images.push(ImageEntry {
            entry: entry.path,
            format: processed.format.to_string(),
            width: processed.width,
            height: processed.height,
            variants,
        });
    }
    let sheet = contact_sheet(&thumbnails)?;
    let manifest = Manifest {
        archive,
        images,
        failed,
        contact_sheet: sheet.as_ref().map(|_| CONTACT_SHEET.to_owned()),
        contact_sheet_images: thumbnails.len(),
    };
    if let Some(sheet) = sheet {
        outputs.push(Output {
            name: CONTACT_SHEET.into(),
            content_type: "image/jpeg",
            bytes: sheet,
            listed: true,
        });
    }
    outputs.push(Output {
        name: MANIFEST.into(),
        content_type: "application/json",
        bytes: serde_json::to_vec_pretty(&manifest)
            .map_err(|err| JobError::BadArchive(format!("the manifest: {err}")))?,
        listed: true,
    });
    Ok(outputs)
}

/// The thumbnails (JPEGs this job made, at most 150 pixels a side) on a grid of up to ten
/// columns, on a light grey ground; `None` without any.
fn contact_sheet(thumbnails: &[Vec<u8>]) -> Result<Option<Vec<u8>>, JobError> {
    if thumbnails.is_empty() {
        return Ok(None);
    }
    let count = thumbnails.len() as u32;
    let columns = count.min(SHEET_COLUMNS);
    let rows = count.div_ceil(columns);
    let mut sheet =
        image::RgbImage::from_pixel(columns * CELL, rows * CELL, image::Rgb([235, 235, 235]));
    for (index, jpeg) in thumbnails.iter().enumerate() {
        let thumbnail = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .map_err(|err| JobError::BadArchive(format!("a thumbnail does not decode: {err}")))?
            .to_rgb8();
        let (column, row) = (index as u32 % columns, index as u32 / columns);
        let x = column * CELL + (CELL - thumbnail.width().min(CELL)) / 2;
        let y = row * CELL + (CELL - thumbnail.height().min(CELL)) / 2;
        image::imageops::overlay(&mut sheet, &thumbnail, i64::from(x), i64::from(y));
    }
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, hybridlab_imaging::JPEG_QUALITY)
        .encode_image(&sheet)
        .map_err(|err| JobError::BadArchive(format!("the contact sheet does not encode: {err}")))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
            .encode_image(&picture)
            .expect("encodes");
        bytes
    }

    fn zip_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        for (name, bytes) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("an entry");
            writer.write_all(bytes).expect("written");
        }
        writer.finish().expect("finished");
        out.into_inner()
    }

    fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, bytes.as_slice())
                .expect("an entry");
        }
        builder.into_inner().expect("finished")
    }

    fn manifest_of(outputs: &[Output]) -> serde_json::Value {
        let manifest = outputs
            .iter()
            .find(|o| o.name == MANIFEST)
            .expect("a manifest");
        serde_json::from_slice(&manifest.bytes).expect("JSON")
    }

    #[test]
    fn a_zip_with_a_bad_image_gives_the_good_ones_variants_and_lists_the_bad_one() {
        let input = zip_of(&[
            ("photos/one.jpg", jpeg(800, 600)),
            ("photos/notes.txt", b"not an image".to_vec()),
            ("photos/two.jpg", jpeg(300, 900)),
        ]);
        let outputs = image_batch(&input).expect("the batch runs");
        let manifest = manifest_of(&outputs);
        assert_eq!(manifest["archive"], "zip");
        assert_eq!(manifest["images"].as_array().map(Vec::len), Some(2));
        assert_eq!(manifest["failed"][0]["entry"], "photos/notes.txt");
        assert!(
            manifest["failed"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a JPEG")),
            "{manifest}"
        );
        assert_eq!(manifest["images"][1]["height"], 900);
        assert_eq!(
            manifest["images"][1]["variants"][2]["height"], 900,
            "never upscaled"
        );
        let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        for name in [
            "images/0000-one.jpg/thumbnail.jpg",
            "images/0000-one.jpg/large.jpg",
            "images/0002-two.jpg/medium.jpg",
            CONTACT_SHEET,
            MANIFEST,
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        // Only the manifest and the sheet go in the row; the manifest names the rest.
        let listed: Vec<&str> = outputs
            .iter()
            .filter(|o| o.listed)
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(listed, [CONTACT_SHEET, MANIFEST]);
        let sheet = outputs
            .iter()
            .find(|o| o.name == CONTACT_SHEET)
            .expect("a sheet");
        let sheet = image::load_from_memory(&sheet.bytes).expect("a JPEG");
        assert_eq!((sheet.width(), sheet.height()), (2 * CELL, CELL));
    }

    #[test]
    fn a_tar_works_the_same_and_an_archive_of_no_images_still_succeeds() {
        let outputs = image_batch(&tar_of(&[("a.jpg", jpeg(200, 100))])).expect("runs");
        let manifest = manifest_of(&outputs);
        assert_eq!(manifest["archive"], "tar");
        assert_eq!(manifest["images"][0]["width"], 200);
        let outputs =
            image_batch(&zip_of(&[("x.bin", vec![0; 10])])).expect("nothing fatal in an entry");
        let manifest = manifest_of(&outputs);
        assert_eq!(manifest["contact_sheet"], serde_json::Value::Null);
        assert_eq!(manifest["failed"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn what_is_no_archive_or_unpacks_too_far_fails_the_job() {
        assert!(matches!(
            image_batch(b"plain text"),
            Err(JobError::BadArchive(_))
        ));
        // A bomb: an entry of zeros far over the per-entry limit compresses to little; it is
        // listed as failed after reading at most the limit.
        let mut out = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        writer
            .start_file(
                "zeros.jpg",
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated),
            )
            .expect("an entry");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..(MAX_ENTRY_BYTES >> 20) + 1 {
            writer.write_all(&chunk).expect("written");
        }
        writer.finish().expect("finished");
        let bomb = out.into_inner();
        assert!(bomb.len() < 1 << 20, "{} bytes compressed", bomb.len());
        let outputs = image_batch(&bomb).expect("an entry's size is not fatal");
        let manifest = manifest_of(&outputs);
        assert!(
            manifest["failed"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("more than")),
            "{manifest}"
        );
    }

    #[test]
    fn output_names_are_safe_and_unique() {
        assert_eq!(output_dir(3, "../../etc/passwd"), "images/0003-passwd");
        assert_eq!(output_dir(4, "dir\\sp ace.JPG"), "images/0004-space.JPG");
        assert_eq!(output_dir(5, "..."), "images/0005");
        assert_eq!(output_dir(6, "a/"), "images/0006");
    }
}
