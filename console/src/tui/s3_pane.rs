//! The S3 view: the selected stack's buckets browsed by prefix, an object's size, type,
//! metadata and versions, a presigned URL to copy, and a preview of an image.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};

use super::app::{Action, Key, Severity};
use super::view::Palette;
use hybridlab_provision::stack::StackClients;

/// What the S3 view shows.
#[derive(Debug, Clone, Default)]
pub struct S3Pane {}

/// A read the S3 view needs from the network.
#[derive(Debug, Clone, PartialEq)]
pub enum S3Request {}

/// The answer to an [`S3Request`].
#[derive(Debug)]
pub enum S3Update {}

impl S3Pane {
    /// Called when the view is shown; `stack` is the one selected in the Stack view.
    pub fn on_enter(&mut self, _stack: Option<&str>) -> Option<Action> {
        None
    }

    /// Shows the objects under `prefix` of the images bucket (the DynamoDB view's jump).
    pub fn show_prefix(&mut self, _stack: Option<&str>, _prefix: &str) -> Option<Action> {
        None
    }

    pub fn on_key(
        &mut self,
        _key: Key,
        _status: &mut Option<(Severity, String)>,
    ) -> Option<Action> {
        None
    }

    pub fn apply(&mut self, update: S3Update, _status: &mut Option<(Severity, String)>) {
        match update {}
    }
}

/// Does the network half of `request`.
pub async fn serve(_clients: StackClients, request: S3Request) -> S3Update {
    match request {}
}

pub fn draw(frame: &mut Frame, area: Rect, _pane: &S3Pane, _palette: Palette) {
    frame.render_widget(
        Paragraph::new("S3 view: being built").block(Block::bordered().title(" S3 ")),
        area,
    );
}
