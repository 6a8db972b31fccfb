//! Where the mouse lands: the map of the last frame drawn (the cells of each tab, the rows of
//! the shown view's list and the item on each). [`view::draw_mapped`](super::view::draw_mapped)
//! returns it as it draws, so a click is read against what the user saw, and the app turns
//! it into a key ([`App::on_mouse`](super::app::App::on_mouse)).

use ratatui::layout::{Position, Rect};
use ratatui::text::Line;

use super::app::Tab;

/// What a click can land on in the frame last drawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreenMap {
    /// Each tab's title, with the space either side of it.
    pub tabs: Vec<(Tab, Rect)>,
    /// The rows of the shown view's list, if it draws one.
    pub list: Option<ListRows>,
}

/// The rows a list was drawn in, and what is on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRows {
    /// The rows, the header and borders left out.
    pub area: Rect,
    /// The item on each row from the top: an index in the list, or a Logs line's number.
    pub items: Vec<usize>,
}

impl ListRows {
    /// A list of `len` items drawn one to a row in `area`, from the item `first` on (a
    /// table's offset once rendered).
    pub fn drawn(area: Rect, first: usize, len: usize) -> Self {
        let end = len.min(first.saturating_add(usize::from(area.height)));
        Self {
            area,
            items: (first..end).collect(),
        }
    }
}

impl ScreenMap {
    /// The tab whose title is on the cell.
    pub fn tab_at(&self, column: u16, row: u16) -> Option<Tab> {
        let cell = Position::new(column, row);
        self.tabs
            .iter()
            .find(|(_, area)| area.contains(cell))
            .map(|(tab, _)| *tab)
    }

    /// The list's item on the cell.
    pub fn item_at(&self, column: u16, row: u16) -> Option<usize> {
        let list = self.list.as_ref()?;
        if !list.area.contains(Position::new(column, row)) {
            return None;
        }
        list.items.get(usize::from(row - list.area.y)).copied()
    }
}

/// The cells of each title that ratatui's `Tabs` draws in `area` with its defaults: a space,
/// the title, a space, then a one-cell divider; a title that does not fit is cut, one past
/// the edge is not drawn.
pub fn tab_cells(area: Rect, titles: &[String]) -> Vec<Rect> {
    let mut cells = Vec::new();
    let mut x = area.x;
    for title in titles {
        if x >= area.right() {
            break;
        }
        let width = u16::try_from(Line::from(title.as_str()).width())
            .unwrap_or(u16::MAX)
            .saturating_add(2)
            .min(area.right() - x);
        cells.push(Rect::new(x, area.y, width, area.height.min(1)));
        x = x.saturating_add(width).saturating_add(1);
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles() -> Vec<String> {
        ["1 Stack", "2 Invoke", "3 Logs"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn each_tab_covers_its_title_and_the_spaces_beside_it_not_the_divider() {
        // ` 1 Stack │ 2 Invoke │ 3 Logs `
        let cells = tab_cells(Rect::new(0, 1, 80, 1), &titles());
        assert_eq!(
            cells,
            [
                Rect::new(0, 1, 9, 1),
                Rect::new(10, 1, 10, 1),
                Rect::new(21, 1, 8, 1)
            ]
        );
        let map = ScreenMap {
            tabs: Tab::ALL.into_iter().zip(cells).collect(),
            list: None,
        };
        assert_eq!(map.tab_at(0, 1), Some(Tab::Stack));
        assert_eq!(map.tab_at(8, 1), Some(Tab::Stack));
        assert_eq!(map.tab_at(9, 1), None, "the divider");
        assert_eq!(map.tab_at(12, 1), Some(Tab::Invoke));
        assert_eq!(map.tab_at(28, 1), Some(Tab::Logs));
        assert_eq!(map.tab_at(29, 1), None, "past the last tab");
        assert_eq!(map.tab_at(12, 0), None, "the header row");
    }

    #[test]
    fn tabs_past_a_narrow_edge_are_not_clickable() {
        let cells = tab_cells(Rect::new(0, 0, 14, 1), &titles());
        assert_eq!(cells, [Rect::new(0, 0, 9, 1), Rect::new(10, 0, 4, 1)]);
        assert!(tab_cells(Rect::new(0, 0, 0, 1), &titles()).is_empty());
    }

    #[test]
    fn a_row_of_a_scrolled_list_is_the_item_drawn_on_it() {
        // Items 30 to 34 of 33 drawn in five rows: the last two rows are empty.
        let list = ListRows::drawn(Rect::new(2, 5, 20, 5), 30, 33);
        assert_eq!(list.items, [30, 31, 32]);
        let map = ScreenMap {
            tabs: Vec::new(),
            list: Some(list),
        };
        assert_eq!(map.item_at(2, 5), Some(30));
        assert_eq!(map.item_at(21, 7), Some(32));
        assert_eq!(map.item_at(10, 8), None, "below the last item");
        assert_eq!(map.item_at(1, 6), None, "left of the list");
        assert_eq!(map.item_at(22, 6), None, "right of the list");
        assert_eq!(map.item_at(5, 4), None, "above: the border or the header");
        assert_eq!(ScreenMap::default().item_at(5, 5), None, "no list drawn");
    }
}
