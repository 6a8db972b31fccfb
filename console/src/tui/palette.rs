//! The console's colours: one palette, with colour or without (`NO_COLOR`), for a dark or a
//! light terminal ([`Theme`]), that every view draws with. Views name the colour they mean
//! (red for a failure, yellow for a warning); the palette turns it into one that reads on the
//! theme's background.

use ratatui::style::{Color, Modifier, Style};

/// The terminal's background the colours are chosen for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Theme {
    /// Light text on a dark background: the terminal's own colours as they are.
    #[default]
    Dark,
    /// Dark text on a white background: no white, yellow or cyan text on it.
    Light,
}

impl Theme {
    /// The names a config file or a flag may give, in the order of [`Theme::ALL`].
    pub const NAMES: [&'static str; 2] = ["dark", "light"];
    pub const ALL: [Self; 2] = [Self::Dark, Self::Light];

    /// The theme called `name` (any case, spaces around ignored), if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::NAMES
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
            .map(|at| Self::ALL[at])
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dark => Self::NAMES[0],
            Self::Light => Self::NAMES[1],
        }
    }
}

impl std::str::FromStr for Theme {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name).ok_or_else(|| {
            format!(
                "unknown theme `{name}`; the themes are {}",
                Self::NAMES.join(", ")
            )
        })
    }
}

impl std::fmt::Display for Theme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Styles, or none at all under `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    colour: bool,
    theme: Theme,
}

impl Palette {
    /// The palette of a dark terminal; [`Palette::with_theme`] chooses another.
    pub fn new(colour: bool) -> Self {
        Self {
            colour,
            theme: Theme::Dark,
        }
    }

    /// The same palette for `theme`'s background.
    pub fn with_theme(self, theme: Theme) -> Self {
        Self { theme, ..self }
    }

    pub fn theme(self) -> Theme {
        self.theme
    }

    pub fn fg(self, color: Color) -> Style {
        if self.colour {
            Style::default().fg(self.on_background(color))
        } else {
            Style::default()
        }
    }

    /// `color` as it reads on the theme's background. On white, the light colours of the
    /// 16-colour set are faint or invisible, so they become the darker shades of the
    /// 256-colour set (xterm's numbering, which every colour terminal of today has).
    fn on_background(self, color: Color) -> Color {
        match (self.theme, color) {
            (Theme::Dark, color) => color,
            (Theme::Light, Color::Yellow | Color::LightYellow) => Color::Indexed(130),
            (Theme::Light, Color::Green | Color::LightGreen) => Color::Indexed(28),
            (Theme::Light, Color::Cyan | Color::LightCyan) => Color::Indexed(25),
            (Theme::Light, Color::Red | Color::LightRed) => Color::Indexed(160),
            (Theme::Light, Color::Blue | Color::LightBlue) => Color::Indexed(19),
            (Theme::Light, Color::Magenta | Color::LightMagenta) => Color::Indexed(90),
            (Theme::Light, Color::DarkGray | Color::Gray) => Color::Indexed(242),
            (Theme::Light, Color::White) => Color::Black,
            (Theme::Light, color) => color,
        }
    }

    /// Whether colours are drawn at all (the S3 view's image preview is nothing but colour).
    pub fn colour(self) -> bool {
        self.colour
    }

    pub fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        match (self.colour, self.theme) {
            (false, _) => Style::default().add_modifier(Modifier::REVERSED),
            (true, Theme::Dark) => Style::default().fg(Color::Black).bg(Color::Cyan),
            (true, Theme::Light) => Style::default().fg(Color::White).bg(Color::Indexed(25)),
        }
    }
}

/// The colours that do not read on a white background, which the light theme never draws
/// text in (its tests, and the views', check every style against them).
#[cfg(test)]
pub(crate) const FAINT_ON_WHITE: [Color; 7] = [
    Color::White,
    Color::Yellow,
    Color::LightYellow,
    Color::Cyan,
    Color::LightCyan,
    Color::LightGreen,
    Color::Gray,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_theme_is_named_in_any_case_and_an_unknown_name_lists_the_known_ones() {
        assert_eq!(Theme::parse("dark"), Some(Theme::Dark));
        assert_eq!(Theme::parse(" Light "), Some(Theme::Light));
        assert_eq!(Theme::parse("solarized"), None);
        assert_eq!(Theme::default(), Theme::Dark);
        for theme in Theme::ALL {
            assert_eq!(theme.name().parse::<Theme>(), Ok(theme));
        }
        let err = "sepia".parse::<Theme>().expect_err("no sepia theme");
        assert!(err.contains("dark, light"), "{err}");
    }

    #[test]
    fn the_dark_theme_keeps_the_colours_the_views_name() {
        let dark = Palette::new(true);
        for color in [Color::Yellow, Color::Cyan, Color::Green, Color::DarkGray] {
            assert_eq!(dark.fg(color).fg, Some(color));
        }
        assert_eq!(dark.selected().bg, Some(Color::Cyan));
    }

    #[test]
    fn the_light_theme_draws_no_light_text_on_a_white_background() {
        let light = Palette::new(true).with_theme(Theme::Light);
        let faint = FAINT_ON_WHITE;
        for color in [
            Color::Red,
            Color::Green,
            Color::Yellow,
            Color::Blue,
            Color::Cyan,
            Color::DarkGray,
            Color::White,
            Color::LightYellow,
            Color::Black,
        ] {
            let drawn = light.fg(color).fg.expect("a colour");
            assert!(!faint.contains(&drawn), "{color:?} is drawn {drawn:?}");
        }
        // The selection is white on a dark blue, not on the terminal's white.
        let selected = light.selected();
        assert_eq!(selected.bg, Some(Color::Indexed(25)));
        // Without colour, no theme draws any.
        let plain = Palette::new(false).with_theme(Theme::Light);
        assert_eq!(plain.fg(Color::Yellow), Style::default());
    }
}
