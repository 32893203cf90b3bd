use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::theme::Theme;
use crate::tui::app::{App, Level, LogLine};

/// The newest lines that fit, `log_scroll` lines back from the end.
pub fn draw(f: &mut Frame, area: Rect, app: &App, theme: Theme, block: Block) {
    let inner = block.inner(area);
    let height = inner.height as usize;
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = app.log[start..end].iter().map(|l| line(l, theme)).collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

pub fn line(l: &LogLine, theme: Theme) -> Line<'static> {
    let (mark, style) = match l.level {
        Level::Info => ("     ", theme.dim()),
        Level::Warn => ("WARN ", theme.warn()),
        Level::Error => ("ERROR", theme.bad()),
    };
    Line::from(vec![
        Span::styled(format!("{:>7.1}s ", l.at.as_secs_f64()), theme.dim()),
        Span::styled(mark, style),
        Span::raw(" "),
        Span::raw(l.text.clone()),
    ])
}
