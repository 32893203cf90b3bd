//! Drawing. Reads the state, never changes it. Wide terminals show every pane; at 80×24 the results table
//! and the progress gauge stay and the other panes share one tabbed area (Tab switches).

mod detail;
mod experiment;
mod log;
mod results;
mod theme;

use std::time::{Duration, Instant};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph};
use ratatui::Frame;

use super::app::{App, Job, Overlay, Pane, Settings};
use super::keys::HELP;
pub use theme::Theme;

/// Below this size the panes collapse into one tabbed area.
const WIDE: (u16, u16) = (120, 34);

pub fn draw(f: &mut Frame, app: &App, now: Instant) {
    let theme = Theme { color: app.color };
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, app, theme, now);
    draw_footer(f, footer, app, theme);
    let drawn = results::layout(app).last().map_or(0, |l| l + 1) as u16;
    let table_height = (drawn + 2).min(body.height / 2).max(4);
    if area.width >= WIDE.0 && area.height >= WIDE.1 {
        let [table, gauge, middle, log_area] = Layout::vertical([
            Constraint::Length(table_height),
            Constraint::Length(3),
            Constraint::Min(6),
            Constraint::Length(8),
        ])
        .areas(body);
        let grid_width = experiment::width(app).min(middle.width * 11 / 20);
        let [grid, detail_area] =
            Layout::horizontal([Constraint::Length(grid_width), Constraint::Min(0)]).areas(middle);
        results::draw(f, table, app, theme, pane_block(app, Pane::Results, theme));
        draw_progress(f, gauge, app, theme, now);
        experiment::draw(
            f,
            grid,
            app,
            theme,
            pane_block(app, Pane::Experiment, theme),
        );
        detail::draw(
            f,
            detail_area,
            app,
            theme,
            pane_block(app, Pane::Detail, theme),
        );
        log::draw(f, log_area, app, theme, pane_block(app, Pane::Log, theme));
    } else {
        let [table, gauge, lower] = Layout::vertical([
            Constraint::Length(table_height),
            Constraint::Length(3),
            Constraint::Min(3),
        ])
        .areas(body);
        results::draw(f, table, app, theme, pane_block(app, Pane::Results, theme));
        draw_progress(f, gauge, app, theme, now);
        let shown = if app.focus == Pane::Results {
            Pane::Detail
        } else {
            app.focus
        };
        let block = tabbed_block(app, shown, theme);
        match shown {
            Pane::Experiment => experiment::draw(f, lower, app, theme, block),
            Pane::Log => log::draw(f, lower, app, theme, block),
            _ => detail::draw(f, lower, app, theme, block),
        }
    }
    match app.overlay {
        Some(Overlay::Help) => draw_help(f, area, theme),
        Some(Overlay::ConfirmQuit) => draw_confirm(f, area, theme),
        Some(Overlay::Settings { field }) => draw_settings(f, area, app, field, theme),
        None => {}
    }
}

fn pane_block(app: &App, pane: Pane, theme: Theme) -> Block<'static> {
    let focused = app.focus == pane;
    let style = if focused {
        theme.focused_border()
    } else {
        theme.dim()
    };
    let title = if focused {
        format!("[ {} ]", pane.title())
    } else {
        format!(" {} ", pane.title())
    };
    Block::bordered().border_style(style).title(title)
}

/// The collapsed area's border names every pane it can show, the shown one bracketed.
fn tabbed_block(app: &App, shown: Pane, theme: Theme) -> Block<'static> {
    let mut spans = Vec::new();
    for p in [Pane::Experiment, Pane::Detail, Pane::Log] {
        if p == shown {
            spans.push(Span::styled(
                format!("[ {} ]", p.title()),
                theme.focused_border(),
            ));
        } else {
            spans.push(Span::styled(format!(" {} ", p.title()), theme.dim()));
        }
    }
    let style = if app.focus == shown {
        theme.focused_border()
    } else {
        theme.dim()
    };
    Block::bordered()
        .border_style(style)
        .title(Line::from(spans))
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

fn draw_header(f: &mut Frame, area: Rect, app: &App, theme: Theme, now: Instant) {
    let s = &app.settings;
    let changed = if *s != app.original { " (changed)" } else { "" };
    let job = match app.job {
        Job::Idle => Span::styled("idle", theme.dim()),
        Job::Running { since } => Span::styled(
            format!("● running {}", clock(now.duration_since(since))),
            theme.active(),
        ),
        Job::Stopping { .. } => Span::styled("■ stopping …", theme.warn()),
    };
    // The job's state comes before the settings, so a narrow terminal cuts the settings.
    let line = Line::from(vec![
        Span::styled(" quantbench ", theme.title()),
        Span::raw(format!("{} · ", app.experiment.name)),
        job,
        Span::styled(
            format!(
                " · threads {} · warm-up {} · runs {} · passes {}{changed}",
                s.threads, s.warmup, s.runs, s.e2e_passes
            ),
            theme.dim(),
        ),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_footer(f: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let wide = area.width >= WIDE.0;
    let keys = if wide {
        "r run all · ⏎ run selected · x stop · s save · o settings · Tab pane · ? help · q quit"
    } else {
        "r run · ⏎ sel · x stop · s save · o set · Tab · ? · q"
    };
    let frame = format!(" frame {:.1} ms", app.frame.last.as_secs_f64() * 1e3);
    let pad =
        (area.width as usize).saturating_sub(keys.chars().count() + frame.chars().count() + 1);
    let line = Line::from(vec![
        Span::raw(format!(" {keys}")),
        Span::raw(" ".repeat(pad)),
        Span::styled(frame, theme.dim()),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_progress(f: &mut Frame, area: Rect, app: &App, theme: Theme, now: Instant) {
    let block = Block::bordered()
        .border_style(theme.dim())
        .title(" progress ");
    let Some(p) = &app.running else {
        // Idle: the newest log line, so what a key did (a save, a failure) shows whatever pane is open.
        let line = match (app.job.clone(), app.log.last()) {
            (Job::Idle, Some(l)) => log::line(l, theme),
            (Job::Idle, None) => Line::styled(
                "nothing running — r runs the experiment, ⏎ the selected row",
                theme.dim(),
            ),
            _ => Line::styled("starting …", theme.dim()),
        };
        f.render_widget(Paragraph::new(line).block(block), area);
        return;
    };
    let eta = p
        .eta(now)
        .map(|d| format!(" · ETA {}", clock(d)))
        .unwrap_or_default();
    let label = format!(
        "{} · {} {}/{}{eta}",
        p.task,
        p.stage.label(),
        p.done,
        p.total
    );
    let ratio = if p.total == 0 {
        0.0
    } else {
        (p.done as f64 / p.total as f64).clamp(0.0, 1.0)
    };
    let gauge = Gauge::default()
        .block(block)
        .gauge_style(theme.active())
        .ratio(ratio)
        .label(label);
    f.render_widget(gauge, area);
}

/// `lines` in a bordered box `w` wide, centred in `area` over whatever is below.
fn popup(f: &mut Frame, area: Rect, w: u16, title: &str, border: Style, lines: Vec<Line>) {
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = w.min(area.width);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(format!(" {title} "))
        .border_style(border);
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn draw_help(f: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<14}"), theme.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled("Esc or ? closes this help", theme.dim()));
    popup(f, area, 72, "keys", theme.focused_border(), lines);
}

fn draw_confirm(f: &mut Frame, area: Rect, theme: Theme) {
    let lines = vec![
        Line::raw("A run is in progress."),
        Line::styled("Stop it and quit? y / n", theme.title()),
    ];
    popup(f, area, 46, "quit", theme.warn(), lines);
}

fn draw_settings(f: &mut Frame, area: Rect, app: &App, field: usize, theme: Theme) {
    let mut lines = Vec::new();
    for (i, name) in Settings::FIELDS.iter().enumerate() {
        let value = app.settings.get(i);
        let was = app.original.get(i);
        let note = if value != was {
            format!("  (file: {was})")
        } else {
            String::new()
        };
        let style = if i == field {
            theme.selected()
        } else {
            Style::new()
        };
        lines.push(Line::styled(
            format!(" {name:<15} ‹ {value:>3} ›{note}"),
            style,
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " j/k choose · h/l change · Esc close",
        theme.dim(),
    ));
    lines.push(Line::styled(
        " Applies to the next run; saved reports record it.",
        theme.dim(),
    ));
    popup(
        f,
        area,
        56,
        "measurement settings",
        theme.focused_border(),
        lines,
    );
}

#[cfg(test)]
mod tests;
