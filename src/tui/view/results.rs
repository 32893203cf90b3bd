//! The results table: one row per model and variant, filled as numbers arrive. Columns drop by priority
//! when the terminal is narrow.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Text;
use ratatui::widgets::{Block, Cell, Row as TableRow, Table, TableState};
use ratatui::Frame;

use super::theme::Theme;
use crate::tui::app::{App, Row, Status};

type Render = fn(&App, &Row, Theme) -> (String, Style);

struct Column {
    header: &'static str,
    width: u16,
    /// Lower is kept longer.
    priority: u8,
    render: Render,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "model",
        width: 16,
        priority: 9,
        render: model,
    },
    Column {
        header: "variant",
        width: 8,
        priority: 0,
        render: variant,
    },
    Column {
        header: "status",
        width: 13,
        priority: 1,
        render: status,
    },
    Column {
        header: "size MB",
        width: 7,
        priority: 3,
        render: size,
    },
    Column {
        header: "rate",
        width: 5,
        priority: 5,
        render: rate,
    },
    Column {
        header: "enc ms",
        width: 7,
        priority: 4,
        render: encoder,
    },
    Column {
        header: "step ms",
        width: 7,
        priority: 6,
        render: step,
    },
    Column {
        header: "e2e ms ±sd",
        width: 12,
        priority: 7,
        render: end_to_end,
    },
    Column {
        header: "e2e ×",
        width: 6,
        priority: 2,
        render: e2e_speedup,
    },
    Column {
        header: "enc ×",
        width: 6,
        priority: 8,
        render: encoder_speedup,
    },
    Column {
        header: "step ×",
        width: 6,
        priority: 8,
        render: step_speedup,
    },
    Column {
        header: "WER",
        width: 7,
        priority: 1,
        render: wer,
    },
    Column {
        header: "drop",
        width: 6,
        priority: 2,
        render: drop,
    },
    Column {
        header: "gate",
        width: 6,
        priority: 1,
        render: gate,
    },
];

/// The columns that fit in `width`, in table order.
fn fitting(width: u16) -> Vec<&'static Column> {
    let mut by_priority: Vec<&Column> = COLUMNS.iter().collect();
    by_priority.sort_by_key(|c| c.priority);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for c in by_priority {
        let need = c.width + u16::from(!keep.is_empty());
        if used + need <= width {
            used += need;
            keep.push(c.header);
        }
    }
    COLUMNS
        .iter()
        .filter(|c| keep.contains(&c.header))
        .collect()
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, theme: Theme, block: Block) {
    let columns = fitting(block.inner(area).width);
    let header = TableRow::new(columns.iter().map(|c| Cell::from(c.header))).style(theme.title());
    let rows = app.rows.iter().map(|r| {
        TableRow::new(columns.iter().map(|c| {
            let (text, style) = (c.render)(app, r, theme);
            Cell::from(Text::from(text)).style(style)
        }))
    });
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| Constraint::Length(c.width))
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▸");
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
}

fn plain(s: impl Into<String>) -> (String, Style) {
    (s.into(), Style::new())
}

fn none(theme: Theme) -> (String, Style) {
    ("—".into(), theme.dim())
}

fn model(_: &App, r: &Row, _: Theme) -> (String, Style) {
    plain(r.model.clone())
}

fn variant(_: &App, r: &Row, _: Theme) -> (String, Style) {
    plain(r.variant.clone())
}

pub fn status_mark(s: Status, theme: Theme) -> (&'static str, Style) {
    match s {
        Status::Pending => ("·", theme.dim()),
        Status::Done => ("✓", theme.good()),
        Status::Failed => ("✗", theme.bad()),
        Status::Stopped => ("■", theme.warn()),
        _ => ("▶", theme.active()),
    }
}

fn status(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let (mark, style) = status_mark(r.status, theme);
    (format!("{mark} {}", r.status.label()), style)
}

fn size(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    r.bytes()
        .map_or_else(|| none(theme), |b| plain(format!("{:.1}", b as f64 / 1e6)))
}

fn rate(app: &App, r: &Row, theme: Theme) -> (String, Style) {
    let base = app.baseline_of(r).and_then(Row::bytes);
    match (r.bytes(), base) {
        (Some(b), Some(f)) if f > 0 => plain(format!("{:.0}%", 100.0 * b as f64 / f as f64)),
        _ => none(theme),
    }
}

fn encoder(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let median = r
        .result
        .as_ref()
        .map(|m| m.latency.encoder_ms.median)
        .or(r.encoder.as_ref().map(|s| s.summary.median));
    median.map_or_else(|| none(theme), |m| plain(format!("{m:.1}")))
}

fn step(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let median = r
        .result
        .as_ref()
        .map(|m| m.latency.decoder_step_ms.median)
        .or(r.decoder_step.as_ref().map(|s| s.summary.median));
    median.map_or_else(|| none(theme), |m| plain(format!("{m:.2}")))
}

fn end_to_end(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    r.result.as_ref().map_or_else(
        || none(theme),
        |m| {
            let s = &m.latency.end_to_end_ms;
            plain(format!("{:.1}±{:.0}", s.mean, s.stddev))
        },
    )
}

fn speedup(value: Option<f64>, r: &Row, theme: Theme) -> (String, Style) {
    match value {
        _ if r.is_baseline() => ("base".into(), theme.dim()),
        Some(x) => plain(format!("{x:.2}×")),
        None => none(theme),
    }
}

fn e2e_speedup(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let v = r.result.as_ref().and_then(|m| m.vs_fp32.as_ref());
    speedup(v.map(|c| c.end_to_end_speedup), r, theme)
}

fn encoder_speedup(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let v = r.result.as_ref().and_then(|m| m.vs_fp32.as_ref());
    let live = r.encoder.as_ref().and_then(|s| s.speedup);
    speedup(v.map(|c| c.encoder_speedup).or(live), r, theme)
}

fn step_speedup(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let v = r.result.as_ref().and_then(|m| m.vs_fp32.as_ref());
    let live = r.decoder_step.as_ref().and_then(|s| s.speedup);
    speedup(v.map(|c| c.decoder_step_speedup).or(live), r, theme)
}

fn wer(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    match (&r.result, r.running_wer()) {
        (Some(m), _) => plain(format!("{:.2}%", m.accuracy.wer * 100.0)),
        // Still transcribing: the rate so far, marked as partial.
        (None, Some(w)) => (format!("~{:.1}%", w * 100.0), theme.dim()),
        (None, None) => none(theme),
    }
}

fn drop(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    if r.is_baseline() {
        return ("base".into(), theme.dim());
    }
    let v = r.result.as_ref().and_then(|m| m.vs_fp32.as_ref());
    v.map_or_else(
        || none(theme),
        |c| plain(format!("{:+.2}", c.wer_drop_points)),
    )
}

fn gate(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    if r.is_baseline() {
        return ("base".into(), theme.dim());
    }
    match &r.result {
        Some(m) if m.verdicts.is_empty() => ("none".into(), theme.dim()),
        Some(m) if m.verdicts.iter().all(|v| v.pass) => ("✓ pass".into(), theme.good()),
        Some(_) => ("✗ FAIL".into(), theme.bad()),
        None => none(theme),
    }
}

#[cfg(test)]
mod tests {
    use super::fitting;

    #[test]
    fn narrow_tables_keep_the_essential_columns() {
        let headers = |w| fitting(w).iter().map(|c| c.header).collect::<Vec<_>>();
        let narrow = headers(78);
        for must in ["variant", "status", "e2e ×", "WER", "drop", "gate"] {
            assert!(narrow.contains(&must), "{must} missing from {narrow:?}");
        }
        assert!(!narrow.contains(&"model"));
        assert_eq!(headers(400).len(), super::COLUMNS.len());
        assert_eq!(headers(10), vec!["variant"]);
    }
}
