//! How the data commands (`s3`, `db`) print: aligned columns for people (widths from the
//! widest cell, numbers right-aligned, colour applied after padding so escape codes never skew
//! the alignment), and writes to standard output that take a closed pipe calmly.

use anyhow::Context as _;

use super::output::paint;
use crate::lab::tone::Tone;

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

/// Writes `value` as one line of JSON.
pub fn emit_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    emit(&format!("{}\n", serde_json::to_string(value)?))
}

/// How a column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// For numbers, so their digits line up.
    Right,
}

/// One cell: its text and, optionally, a colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub tone: Option<Tone>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: None,
        }
    }

    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }
}

/// A header and rows, rendered with two spaces between columns.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells render empty, extra cells are dropped.
    pub fn push(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header (dimmed when `colour`) and each row, one line each, without trailing spaces.
    pub fn render(&self, colour: bool) -> Vec<String> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, (title, _))| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(index))
                    .map(|cell| cell.text.chars().count())
                    .chain([title.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|(title, _)| Cell::toned(*title, Tone::Dim))
            .collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| self.line(row, &widths, colour))
            .collect()
    }

    fn line(&self, row: &[Cell], widths: &[usize], colour: bool) -> String {
        let cells = self.columns.iter().enumerate().map(|(index, (_, align))| {
            let empty = Cell::plain("");
            let cell = row.get(index).unwrap_or(&empty);
            let width = widths.get(index).copied().unwrap_or(0);
            let padded = match align {
                Align::Right => format!("{:>width$}", cell.text),
                Align::Left => format!("{:<width$}", cell.text),
            };
            match cell.tone {
                Some(tone) => paint(&padded, tone, colour),
                None => padded,
            }
        });
        cells.collect::<Vec<_>>().join("  ").trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let mut table = Table::new(&[
            ("KEY", Align::Left),
            ("SIZE", Align::Right),
            ("WHEN", Align::Left),
        ]);
        table.push(vec![
            Cell::plain("a/original.jpg"),
            Cell::plain("123456"),
            Cell::plain("2026-01-01T00:00:00Z"),
        ]);
        table.push(vec![Cell::plain("b.jpg"), Cell::plain("7")]);
        assert_eq!(
            table.render(false),
            [
                "KEY               SIZE  WHEN",
                "a/original.jpg  123456  2026-01-01T00:00:00Z",
                "b.jpg                7",
            ]
        );
    }

    #[test]
    fn colour_wraps_the_padded_cell_and_only_when_allowed() {
        let mut table = Table::new(&[("STATUS", Align::Left), ("ID", Align::Left)]);
        table.push(vec![Cell::toned("OK", Tone::Good), Cell::plain("x")]);
        let plain = table.render(false);
        assert_eq!(plain[1], "OK      x");
        let coloured = table.render(true);
        assert_eq!(coloured[1], "\x1b[32mOK    \x1b[0m  x");
        assert!(coloured[0].starts_with("\x1b[2mSTATUS"));
    }
}
