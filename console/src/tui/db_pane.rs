//! The DynamoDB view: the selected stack's table as rows, paged and filtered, the selected row
//! as pretty JSON, and a jump from a row to its objects in the S3 view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};

use super::app::{Action, Key, Severity};
use super::view::Palette;
use hybridlab_provision::stack::StackClients;

/// What the DynamoDB view shows.
#[derive(Debug, Clone, Default)]
pub struct DbPane {}

/// A read the DynamoDB view needs from the network.
#[derive(Debug, Clone, PartialEq)]
pub enum DbRequest {}

/// The answer to an [`DbRequest`].
#[derive(Debug)]
pub enum DbUpdate {}

impl DbPane {
    /// Called when the view is shown; `stack` is the one selected in the Stack view.
    pub fn on_enter(&mut self, _stack: Option<&str>) -> Option<Action> {
        None
    }

    pub fn on_key(
        &mut self,
        _key: Key,
        _status: &mut Option<(Severity, String)>,
    ) -> Option<Action> {
        None
    }

    pub fn apply(&mut self, update: DbUpdate, _status: &mut Option<(Severity, String)>) {
        match update {}
    }
}

/// Does the network half of `request`.
pub async fn serve(_clients: StackClients, request: DbRequest) -> DbUpdate {
    match request {}
}

pub fn draw(frame: &mut Frame, area: Rect, _pane: &DbPane, _palette: Palette) {
    frame.render_widget(
        Paragraph::new("DynamoDB view: being built").block(Block::bordered().title(" DynamoDB ")),
        area,
    );
}
