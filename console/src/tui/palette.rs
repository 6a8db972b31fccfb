//! The console's colours: one palette, with colour or without (`NO_COLOR`), that every view
//! draws with.

use ratatui::style::{Color, Modifier, Style};

/// Styles, or none at all under `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    colour: bool,
}

impl Palette {
    pub fn new(colour: bool) -> Self {
        Self { colour }
    }

    pub fn fg(self, color: Color) -> Style {
        if self.colour {
            Style::default().fg(color)
        } else {
            Style::default()
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
        if self.colour {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}
