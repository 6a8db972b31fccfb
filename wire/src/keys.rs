//! The object keys every program agrees on: where an image's original and variants live in
//! the images and processed buckets, and where an upload lands in the uploads bucket. The
//! server, the resizer and the console's S3 and DynamoDB views all name objects through these.

/// The folder of one image's objects: `images/<image_id>/`.
pub fn image_prefix(image_id: &str) -> String {
    format!("images/{image_id}/")
}

/// The key of one object of an image: `images/<image_id>/<name>.<extension>`, where `name` is
/// a variant's or [`crate::ORIGINAL`].
pub fn variant_key(image_id: &str, name: &str, extension: &str) -> String {
    format!("images/{image_id}/{name}.{extension}")
}

/// The key of an uploaded original in the uploads bucket: `uploads/<image_id>/<file name>`.
pub fn upload_key(image_id: &str, safe_filename: &str) -> String {
    format!("uploads/{image_id}/{safe_filename}")
}

/// The image id in an upload key `uploads/<image_id>/<file name>`.
pub fn image_id_of_upload_key(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("uploads"), Some(id), Some(name)) if !id.is_empty() && !name.is_empty() => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_id_is_the_second_segment_of_an_upload_key() {
        assert_eq!(image_id_of_upload_key("uploads/abc/cat.jpg"), Some("abc"));
        assert_eq!(
            image_id_of_upload_key("uploads/abc/dir/cat.jpg"),
            Some("abc")
        );
        assert_eq!(image_id_of_upload_key("uploads/abc/"), None);
        assert_eq!(image_id_of_upload_key("uploads//cat.jpg"), None);
        assert_eq!(image_id_of_upload_key("images/abc/large.jpg"), None);
    }

    #[test]
    fn an_upload_key_gives_back_its_image_id() {
        let key = upload_key("0199-abc", "cat photo.jpg");
        assert_eq!(key, "uploads/0199-abc/cat photo.jpg");
        assert_eq!(image_id_of_upload_key(&key), Some("0199-abc"));
        assert_eq!(image_id_of_upload_key("uploads/0199-abc/"), None);
        assert_eq!(image_id_of_upload_key("images/0199-abc/x.jpg"), None);
    }

    #[test]
    fn variants_live_under_the_image_prefix() {
        let key = variant_key("id1", "thumbnail", "jpg");
        assert_eq!(key, "images/id1/thumbnail.jpg");
        assert!(key.starts_with(&image_prefix("id1")));
    }
}
