//! The results table: rows grouped under their model, each group headed by a line that names the model
//! and its kind's columns (Whisper: enc/step/e2e; BLIP: vision/vqa/caption; WER or VQA accuracy). Columns
//! drop by priority when the terminal is narrow.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Text;
use ratatui::widgets::{Block, Cell, Row as TableRow, Table, TableState};
use ratatui::Frame;

use super::theme::Theme;
use crate::results::Kind;
use crate::tui::app::{App, Row, Status};

type Render = fn(&App, &Row, Theme) -> (String, Style);

/// What a column shows: a fixed field, or the n-th series of the row's kind.
#[derive(Clone, Copy)]
enum Field {
    Name,
    Status,
    Size,
    Rate,
    Median(usize),
    Speedup(usize),
    Accuracy,
    Drop,
    Gate,
}

struct Column {
    field: Field,
    width: u16,
    /// Lower is kept longer.
    priority: u8,
}

const COLUMNS: &[Column] = &[
    Column {
        field: Field::Name,
        width: 16,
        priority: 0,
    },
    Column {
        field: Field::Status,
        width: 13,
        priority: 1,
    },
    Column {
        field: Field::Size,
        width: 7,
        priority: 3,
    },
    Column {
        field: Field::Rate,
        width: 5,
        priority: 5,
    },
    Column {
        field: Field::Median(0),
        width: 8,
        priority: 6,
    },
    Column {
        field: Field::Speedup(0),
        width: 6,
        priority: 8,
    },
    Column {
        field: Field::Median(1),
        width: 8,
        priority: 7,
    },
    Column {
        field: Field::Speedup(1),
        width: 6,
        priority: 2,
    },
    Column {
        field: Field::Median(2),
        width: 9,
        priority: 4,
    },
    Column {
        field: Field::Speedup(2),
        width: 6,
        priority: 2,
    },
    Column {
        field: Field::Accuracy,
        width: 7,
        priority: 1,
    },
    Column {
        field: Field::Drop,
        width: 6,
        priority: 2,
    },
    Column {
        field: Field::Gate,
        width: 6,
        priority: 1,
    },
];

/// The column headings of a kind's group line.
fn heading(field: Field, kind: Kind) -> String {
    let label = |i: usize| kind.series().get(i).map_or("", |s| s.label);
    match field {
        Field::Name => String::new(),
        Field::Status => format!("({})", kind.name()),
        Field::Size => "size MB".into(),
        Field::Rate => "rate".into(),
        Field::Median(i) => format!("{} ms", label(i)),
        Field::Speedup(i) => format!("{} ×", label(i)),
        Field::Accuracy => match kind {
            Kind::Whisper => "WER".into(),
            Kind::Blip => "VQA".into(),
        },
        Field::Drop => "drop".into(),
        Field::Gate => "gate".into(),
    }
}

/// The columns that fit in `width`, in table order.
fn fitting(width: u16) -> Vec<&'static Column> {
    let mut by_priority: Vec<(usize, &Column)> = COLUMNS.iter().enumerate().collect();
    by_priority.sort_by_key(|(_, c)| c.priority);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for (i, c) in by_priority {
        let need = c.width + u16::from(!keep.is_empty());
        if used + need <= width {
            used += need;
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| &COLUMNS[i]).collect()
}

/// Where each row of `app.rows` sits in the drawn table (group lines included).
pub fn layout(app: &App) -> Vec<usize> {
    let mut at = Vec::new();
    let mut line = 0;
    for (i, r) in app.rows.iter().enumerate() {
        if i == 0 || app.rows[i - 1].model != r.model {
            line += 1;
        }
        at.push(line);
        line += 1;
    }
    at
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, theme: Theme, block: Block) {
    let columns = fitting(block.inner(area).width);
    let mut lines = Vec::new();
    for (i, r) in app.rows.iter().enumerate() {
        if i == 0 || app.rows[i - 1].model != r.model {
            lines.push(
                TableRow::new(columns.iter().map(|c| match c.field {
                    Field::Name => Cell::from(r.model.clone()),
                    field => Cell::from(heading(field, r.kind)),
                }))
                .style(theme.title()),
            );
        }
        lines.push(TableRow::new(columns.iter().map(|c| {
            let (text, style) = render(c.field)(app, r, theme);
            Cell::from(Text::from(text)).style(style)
        })));
    }
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| Constraint::Length(c.width))
        .collect();
    let table = Table::new(lines, widths)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▸");
    let selected = layout(app).get(app.selected).copied();
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
}

fn render(field: Field) -> Render {
    match field {
        Field::Name => variant,
        Field::Status => status,
        Field::Size => size,
        Field::Rate => rate,
        Field::Median(0) => median::<0>,
        Field::Median(1) => median::<1>,
        Field::Median(_) => median::<2>,
        Field::Speedup(0) => speedup::<0>,
        Field::Speedup(1) => speedup::<1>,
        Field::Speedup(_) => speedup::<2>,
        Field::Accuracy => accuracy,
        Field::Drop => drop,
        Field::Gate => gate,
    }
}

fn plain(s: impl Into<String>) -> (String, Style) {
    (s.into(), Style::new())
}

fn none(theme: Theme) -> (String, Style) {
    ("—".into(), theme.dim())
}

fn variant(_: &App, r: &Row, _: Theme) -> (String, Style) {
    plain(format!(" {}", r.variant))
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

fn series_name(r: &Row, i: usize) -> Option<&'static str> {
    r.kind.series().get(i).map(|s| s.name)
}

fn median<const I: usize>(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    let s = series_name(r, I).and_then(|n| r.series(n));
    s.map_or_else(
        || none(theme),
        |s| {
            let m = s.stats.median_ms;
            plain(if m < 10.0 {
                format!("{m:.2}")
            } else {
                format!("{m:.1}")
            })
        },
    )
}

fn speedup<const I: usize>(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    if r.is_baseline() {
        return ("base".into(), theme.dim());
    }
    match series_name(r, I).and_then(|n| r.speedup(n)) {
        Some(x) => plain(format!("{:.2}×", x.median)),
        None => none(theme),
    }
}

fn accuracy(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    if let Some(res) = &r.result {
        return match (res.accuracy.value, &res.accuracy.not_applicable) {
            (Some(v), _) => plain(format!("{:.2}%", v * 100.0)),
            (None, Some(_)) => ("n/a".into(), theme.dim()),
            _ => none(theme),
        };
    }
    match r.running.and_then(|x| x.value) {
        // Still evaluating: the value so far, marked as partial.
        Some(v) => (format!("~{:.1}%", v * 100.0), theme.dim()),
        None => none(theme),
    }
}

fn drop(_: &App, r: &Row, theme: Theme) -> (String, Style) {
    if r.is_baseline() {
        return ("base".into(), theme.dim());
    }
    let d = r
        .result
        .as_ref()
        .and_then(|m| m.vs_fp32.as_ref())
        .and_then(|c| c.accuracy_drop_points);
    d.map_or_else(|| none(theme), |d| plain(format!("{d:+.2}")))
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
    use super::{fitting, heading, Field};
    use crate::results::Kind;

    #[test]
    fn narrow_tables_keep_the_essential_columns() {
        let fields = |w| {
            fitting(w)
                .iter()
                .map(|c| heading(c.field, Kind::Whisper))
                .collect::<Vec<_>>()
        };
        let narrow = fields(78);
        for must in ["(whisper)", "e2e ×", "step ×", "WER", "drop", "gate"] {
            assert!(
                narrow.iter().any(|h| h == must),
                "{must} missing from {narrow:?}"
            );
        }
        assert_eq!(fitting(400).len(), super::COLUMNS.len());
        assert!(fitting(10).iter().map(|c| c.width).sum::<u16>() <= 10);
        assert_eq!(heading(Field::Median(1), Kind::Blip), "vqa ms");
        assert_eq!(heading(Field::Accuracy, Kind::Blip), "VQA");
    }
}
