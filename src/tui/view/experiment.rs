//! The experiment grid: per model, its parts (rows) by variants (columns); a cell shows the variant's
//! status while it is pending or running, and the part's size once the variant has been opened.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::results::status_mark;
use super::theme::Theme;
use crate::results::control::ControlStep;
use crate::tui::app::{App, Row, Status};

const CELL: usize = 14;

fn cell(row: &Row, part: Option<&str>, theme: Theme) -> Span<'static> {
    let (mark, style) = status_mark(row.status, theme);
    let size = part.and_then(|p| row.parts.iter().find(|x| short(&x.part) == p));
    let text = match size {
        Some(s)
            if matches!(
                row.status,
                Status::Done | Status::Measuring | Status::Evaluating
            ) =>
        {
            format!("{mark} {:.1} MB", s.bytes as f64 / 1e6)
        }
        _ => format!("{mark} {}", row.status.label()),
    };
    Span::styled(format!("{text:<CELL$}"), style)
}

/// A part's graph name without the `_model` every graph file carries.
fn short(part: &str) -> &str {
    part.strip_suffix("_model").unwrap_or(part)
}

/// The part names of a model's rows, in the order they first appear.
fn parts_of(rows: &[&Row]) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for r in rows {
        for p in &r.parts {
            if !parts.iter().any(|x| x == short(&p.part)) {
                parts.push(short(&p.part).to_string());
            }
        }
    }
    parts
}

fn part_width(parts: &[String]) -> usize {
    parts.iter().map(|p| p.len()).max().unwrap_or(0).max(11) + 1
}

/// Columns the grid needs to show every variant, borders included.
pub fn width(app: &App) -> u16 {
    let widest = (0..app.experiment.models.len())
        .map(|entry| {
            let rows: Vec<&Row> = app.rows.iter().filter(|r| r.entry == entry).collect();
            2 + part_width(&parts_of(&rows)) + CELL * rows.len()
        })
        .max()
        .unwrap_or(0);
    (widest + 2) as u16
}

/// Steps of accuracy control's trajectory shown under a model's grid (the newest).
const CONTROL_STEPS: usize = 6;

/// Accuracy control's trajectory as it grows: the newest steps and the bound on the time left.
fn control_lines(lines: &mut Vec<Line<'static>>, steps: &[ControlStep], eta: f64, theme: Theme) {
    let within = steps.iter().filter(|s| s.within_budget).count();
    lines.push(Line::from(vec![
        Span::styled("  accuracy control", theme.title()),
        Span::styled(
            format!(
                "  {} models validated, {within} within budget; ≤ {eta:.0} s left",
                steps.len()
            ),
            theme.dim(),
        ),
    ]));
    for s in steps.iter().skip(steps.len().saturating_sub(CONTROL_STEPS)) {
        let style = if s.within_budget {
            theme.good()
        } else {
            theme.bad()
        };
        lines.push(Line::from(vec![
            Span::raw(format!("  {:>3} ", s.step)),
            Span::styled(format!("drop {:+6.2}", s.drop), style),
            Span::raw(format!("  {:>2} float  {}", s.reverted, s.action.text())),
        ]));
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, theme: Theme, block: Block) {
    let mut lines = Vec::new();
    for (entry, m) in app.experiment.models.iter().enumerate() {
        let rows: Vec<&Row> = app.rows.iter().filter(|r| r.entry == entry).collect();
        let Some(first) = rows.first() else { continue };
        let items = if m.limit > 0 {
            format!("first {} of ", m.limit)
        } else {
            String::new()
        };
        lines.push(Line::from(vec![
            Span::styled(first.model.clone(), theme.title()),
            Span::styled(format!("  {items}{}", m.dataset.display()), theme.dim()),
        ]));
        let parts = parts_of(&rows);
        let width = part_width(&parts);
        let mut header = vec![Span::styled(format!("  {:<width$}", "part"), theme.dim())];
        for r in &rows {
            let selected = app.selected_row().is_some_and(|s| std::ptr::eq(s, *r));
            let style = if selected {
                theme.selected()
            } else {
                theme.title()
            };
            header.push(Span::styled(format!("{:<CELL$}", r.variant), style));
        }
        lines.push(Line::from(header));
        if parts.is_empty() {
            let mut line = vec![Span::raw(format!("  {:<width$}", "(all parts)"))];
            line.extend(rows.iter().map(|r| cell(r, None, theme)));
            lines.push(Line::from(line));
        }
        for p in &parts {
            let mut line = vec![Span::raw(format!("  {:<width$}", p))];
            line.extend(rows.iter().map(|r| cell(r, Some(p), theme)));
            lines.push(Line::from(line));
        }
        if let Some((steps, eta)) = app.control.get(&first.model) {
            control_lines(&mut lines, steps, *eta, theme);
        }
        lines.push(Line::raw(""));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}
