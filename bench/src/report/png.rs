//! PNG copies of the report's SVG figures (`hybridlab report --png`), for documents that do
//! not take SVG. Rendered by resvg with Noto Sans embedded in the binary and no system font
//! looked up, so a figure's text renders the same on a machine without any font installed.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Pixels per SVG unit: twice the figure's size, sharp in print and on high-density screens.
pub const PNG_SCALE: f32 = 2.0;

/// The family name of the embedded font, as its `name` table gives it.
const EMBEDDED_FAMILY: &str = "Noto Sans";

/// Why a figure could not be made a PNG.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("the figure is not SVG the renderer reads: {0}")]
    Parse(#[from] usvg::Error),
    #[error("the figure's size ({width} × {height}) cannot be rendered")]
    Size { width: f32, height: f32 },
    #[error("cannot encode the PNG: {0}")]
    Encode(String),
}

/// The font database every figure is rendered with: Noto Sans regular and bold, the family
/// every generic and named family falls back to. Built once.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut fonts = usvg::fontdb::Database::new();
            fonts.load_font_data(ttf_noto_sans::REGULAR.to_vec());
            fonts.load_font_data(ttf_noto_sans::BOLD.to_vec());
            fonts.set_sans_serif_family(EMBEDDED_FAMILY);
            fonts.set_serif_family(EMBEDDED_FAMILY);
            fonts.set_monospace_family(EMBEDDED_FAMILY);
            Arc::new(fonts)
        })
        .clone()
}

/// `svg` rendered as PNG bytes at [`PNG_SCALE`], on the white the figures are drawn on.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, PngError> {
    let options = usvg::Options {
        // The figures ask for Helvetica or Arial; neither is embedded, so the fallback is
        // what renders, and it must be the embedded font.
        font_family: EMBEDDED_FAMILY.to_owned(),
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)?;
    let size = tree.size();
    let (width, height) = (
        (size.width() * PNG_SCALE).ceil(),
        (size.height() * PNG_SCALE).ceil(),
    );
    let mut pixmap = tiny_skia::Pixmap::new(width as u32, height as u32).ok_or(PngError::Size {
        width: size.width(),
        height: size.height(),
    })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|err| PngError::Encode(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoded RGBA pixels and size of `png`.
    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let pixmap = tiny_skia::Pixmap::decode_png(png).expect("a valid PNG");
        (pixmap.width(), pixmap.height(), pixmap.data().to_vec())
    }

    /// Pixels that are not white within the rectangle `x0..x1`, `y0..y1` (PNG pixels).
    fn inked(width: u32, rgba: &[u8], (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| ((y * width + x) * 4) as usize))
            .filter(|&at| rgba[at..at + 3].iter().any(|&channel| channel < 200))
            .count()
    }

    fn titled(title: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100" viewBox="0 0 400 100" font-family="Helvetica, Arial, sans-serif" font-size="12"><rect width="400" height="100" fill="white"/><text x="200" y="40" text-anchor="middle" font-size="20" font-weight="bold">{title}</text></svg>"#
        )
    }

    #[test]
    fn a_figure_becomes_a_png_twice_its_size() {
        let png = svg_to_png(&titled("Latency")).expect("rendered");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let (width, height, _) = decode(&png);
        assert_eq!((width, height), (800, 200));
    }

    #[test]
    fn text_renders_with_the_embedded_font_alone() {
        // Only the embedded font is in the database: any ink in the title's area is its
        // glyphs, and without a font the area stays white.
        let (width, _, with_title) = decode(&svg_to_png(&titled("Client latency")).expect("png"));
        let (_, _, without) = decode(&svg_to_png(&titled("")).expect("png"));
        let title_area = (200, 30, 600, 100);
        assert!(
            inked(width, &with_title, title_area) > 200,
            "the title is drawn"
        );
        assert_eq!(inked(width, &without, title_area), 0);
        assert!(fonts().faces().all(|face| {
            face.families
                .iter()
                .any(|(name, _)| name == EMBEDDED_FAMILY)
        }));
    }

    #[test]
    fn what_is_not_svg_is_an_error_not_a_panic() {
        assert!(matches!(
            svg_to_png("p50 was 12 ms"),
            Err(PngError::Parse(_))
        ));
    }
}
