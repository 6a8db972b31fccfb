//! `POST /process-image` on good images: what is stored, where, and what the row says.

use hybridlab_imaging::fit_within;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::Lab;
use hybridlab_wire::{ImageStatus, ProcessImageResponse};
use reqwest::StatusCode;

use crate::common::{assert_variants, process, rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_is_stored_as_original_and_three_variants_with_a_completed_row() {
    let lab = Lab::start().await;
    let original = fixtures::jpeg(1600, 1200);
    let url = lab.images.add("photo.jpg", original.clone(), "image/jpeg");

    let answer = process(&lab, &url).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let response: ProcessImageResponse =
        serde_json::from_value(answer.body.clone()).expect("the documented shape");
    let id = &response.image_id;
    assert_eq!((response.width, response.height), (1600, 1200));
    assert_eq!(response.format, "jpeg");
    assert_eq!(response.size_bytes, original.len() as u64);
    assert_eq!(response.bucket, lab.bucket);
    let timings = response.timings_ms;
    for (stage, ms) in timings
        .stages()
        .into_iter()
        .filter(|(stage, _)| *stage != "total")
    {
        assert!(ms > 0.0, "stage {stage} was timed");
        assert!(ms <= timings.total, "stage {stage} fits in the total");
    }

    let expected_keys = [
        ("large", format!("images/{id}/large.jpg")),
        ("medium", format!("images/{id}/medium.jpg")),
        ("original", format!("images/{id}/original.jpg")),
        ("thumbnail", format!("images/{id}/thumbnail.jpg")),
    ];
    let keys: Vec<(String, String)> = response.keys.clone().into_iter().collect();
    let expected: Vec<(String, String)> = expected_keys
        .iter()
        .map(|(name, key)| ((*name).to_owned(), key.clone()))
        .collect();
    assert_eq!(keys, expected);
    let mut stored: Vec<String> = expected_keys.iter().map(|(_, key)| key.clone()).collect();
    stored.sort();
    assert_eq!(lab.clients.list_keys(&lab.bucket).await, stored);

    let object = lab
        .clients
        .get_object(&lab.bucket, &response.keys["original"])
        .await;
    assert_eq!(object.content_type(), Some("image/jpeg"));
    assert_eq!(
        object
            .metadata()
            .and_then(|m| m.get("image-id"))
            .map(String::as_str),
        Some(id.as_str())
    );
    let bytes = object.body.collect().await.expect("readable").into_bytes();
    assert_eq!(
        bytes.as_ref(),
        original.as_slice(),
        "the original is stored untouched"
    );

    assert_variants(
        &lab.clients.s3,
        &lab.bucket,
        &response.keys,
        id,
        (1600, 1200),
    )
    .await;

    let rows = rows(&lab).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(&row.image_id, id);
    assert_eq!(row.status, ImageStatus::Completed);
    assert_eq!(row.source_url.as_deref(), Some(url.as_str()));
    assert_eq!(row.bucket, lab.bucket);
    assert_eq!(row.keys, response.keys);
    assert_eq!(row.size_bytes, Some(original.len() as u64));
    assert_eq!((row.width, row.height), (Some(1600), Some(1200)));
    assert_eq!(row.format.as_deref(), Some("jpeg"));
    assert!(
        row.timings_ms
            .is_some_and(|t| t.download > 0.0 && t.total > 0.0)
    );
    assert_eq!(row.error, None);
    assert!(row.created_at.ends_with('Z') && row.created_at.contains('T'));
}

/// An input image: its name, bytes, the format and displayed size the server must report.
type FormatCase = (&'static str, Vec<u8>, &'static str, (u32, u32));

/// Each accepted kind of input, with the format and displayed size the server must report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_format_and_colour_model_makes_correct_variants() {
    let lab = Lab::start().await;
    let cases: Vec<FormatCase> = vec![
        ("baseline.jpg", fixtures::jpeg(800, 600), "jpeg", (800, 600)),
        (
            "progressive.jpg",
            fixtures::progressive_jpeg(900, 500),
            "jpeg",
            (900, 500),
        ),
        (
            "gray.jpg",
            fixtures::grayscale_jpeg(640, 480),
            "jpeg",
            (640, 480),
        ),
        // Large enough that the decoder takes the reduced-DCT path.
        ("big.jpg", fixtures::jpeg(3000, 2000), "jpeg", (3000, 2000)),
        // Stored 400x200 with orientation 6: displayed 200x400.
        (
            "rotated.jpg",
            fixtures::exif_rotated_jpeg(400, 200),
            "jpeg",
            (200, 400),
        ),
        (
            "rotated-big.jpg",
            fixtures::exif_rotated_jpeg(2800, 1400),
            "jpeg",
            (1400, 2800),
        ),
        ("picture.png", fixtures::png(500, 700), "png", (500, 700)),
        ("alpha.png", fixtures::rgba_png(300, 200), "png", (300, 200)),
        (
            "gray.png",
            fixtures::grayscale_png(256, 64),
            "png",
            (256, 64),
        ),
        ("picture.webp", fixtures::webp(320, 240), "webp", (320, 240)),
        // The first page only: the second is another size.
        (
            "scan.tiff",
            fixtures::multipage_tiff(640, 400),
            "tiff",
            (640, 400),
        ),
        ("photo.bmp", fixtures::bmp(800, 600), "bmp", (800, 600)),
        ("animated.gif", fixtures::gif(120, 90), "gif", (120, 90)),
        // The extension lies: the format comes from the bytes.
        ("actually-png.jpg", fixtures::png(64, 48), "png", (64, 48)),
    ];
    let count = cases.len();
    for (name, bytes, format, (width, height)) in cases {
        let url = lab.images.add(name, bytes, "application/octet-stream");
        let answer = process(&lab, &url).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        let response: ProcessImageResponse =
            serde_json::from_value(answer.body).expect("the documented shape");
        assert_eq!(response.format, format, "{name}");
        assert_eq!((response.width, response.height), (width, height), "{name}");
        let extension = match format {
            "jpeg" => "jpg",
            "tiff" => "tif",
            other => other,
        };
        assert!(
            response.keys["original"].ends_with(&format!("original.{extension}")),
            "{name}: {}",
            response.keys["original"]
        );
        for (variant, side) in [("thumbnail", 150), ("medium", 600), ("large", 1200)] {
            let object = lab
                .clients
                .get_object(&lab.bucket, &response.keys[variant])
                .await;
            let bytes = object.body.collect().await.expect("readable").into_bytes();
            let image = fixtures::decode(&bytes);
            assert_eq!(
                (image.width(), image.height()),
                fit_within(width, height, side),
                "{name} {variant}"
            );
            if name.starts_with("rotated") {
                // Orientation 6 turns the picture clockwise: the stored bottom-left corner
                // (little red, much green in the fixture's gradients) is now the top-left.
                // Sampled a tenth in, away from the edges where the fixture's noise wraps.
                let (x, y) = (image.width() / 10, image.height() / 10);
                let [red, green, _] = image.to_rgb8().get_pixel(x, y).0;
                assert!(
                    red < 70 && green > 190,
                    "{name} {variant}: red {red}, green {green}"
                );
            }
            if name == "scan.tiff" {
                // The first page's picture, not the flat blue second page.
                let (x, y) = (image.width() / 2, image.height() / 2);
                let [red, green, blue] = image.to_rgb8().get_pixel(x, y).0;
                assert!(
                    red > 60 && green > 60 && blue < 200,
                    "{name} {variant}: {red},{green},{blue}"
                );
            }
            if name == "alpha.png" {
                // The transparent left half is composited onto white, not black.
                let pixel = image.to_rgb8().get_pixel(2, image.height() / 2).0;
                assert!(
                    pixel.iter().all(|&c| c > 235),
                    "{name} {variant}: {pixel:?}"
                );
            }
        }
    }
    assert_eq!(rows(&lab).await.len(), count, "one row per image");
}
