//! Detail of the selected row: its raw latency runs as sparklines, its worst utterances with the differing
//! words marked, and for INT8 rows how the model was quantized.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::results::status_mark;
use super::theme::Theme;
use crate::measure::stats::Summary;
use crate::measure::wer::MarkedWords;
use crate::tui::app::{App, Row};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as bars scaled between their minimum and maximum.
fn sparkline(samples: &[f64], width: usize) -> String {
    let tail = &samples[samples.len().saturating_sub(width)..];
    let (lo, hi) = tail
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    tail.iter()
        .map(|&x| {
            let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
            BARS[((t * 7.0).round() as usize).min(7)]
        })
        .collect()
}

/// Stats and a sparkline of the raw runs; `summary` alone when the raw runs were not kept (older reports).
fn series_line(
    name: &str,
    summary: Option<&Summary>,
    samples: &[f64],
    width: usize,
    theme: Theme,
) -> Line<'static> {
    let Some(s) = Summary::of(samples).or(summary.cloned()) else {
        return Line::from(vec![
            Span::raw(format!("  {name:<13}")),
            Span::styled("not measured yet", theme.dim()),
        ]);
    };
    let stats = format!(
        "  {name:<13}n {:<3} min {:>7.2} med {:>7.2} max {:>7.2}  ",
        s.runs, s.min, s.median, s.max
    );
    let room = width.saturating_sub(stats.chars().count());
    Line::from(vec![
        Span::raw(stats),
        Span::styled(sparkline(samples, room), theme.active()),
    ])
}

fn marked(label: &str, words: &MarkedWords, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("     {label}  "), theme.dim())];
    for (i, (w, differs)) in words.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        if *differs {
            // Without colour the brackets carry the mark.
            let text = if theme.color {
                w.clone()
            } else {
                format!("[{w}]")
            };
            spans.push(Span::styled(text, theme.differs()));
        } else {
            spans.push(Span::raw(w.clone()));
        }
    }
    Line::from(spans)
}

fn runs<'a>(from_result: Option<&'a Vec<f64>>, live: Option<&'a Vec<f64>>) -> &'a [f64] {
    from_result
        .filter(|v| !v.is_empty())
        .or(live)
        .map_or(&[], |v| v.as_slice())
}

pub fn lines(row: &Row, width: usize, theme: Theme) -> Vec<Line<'static>> {
    let (mark, style) = status_mark(row.status, theme);
    let mut out = vec![Line::from(vec![
        Span::styled(format!("{} {}  ", row.model, row.variant), theme.title()),
        Span::styled(format!("{mark} {}", row.status.label()), style),
    ])];
    out.push(Line::styled("latency runs (ms)", theme.title()));
    let lat = row.result.as_ref().map(|m| &m.latency);
    let encoder = runs(
        lat.map(|l| &l.encoder_runs_ms),
        row.encoder.as_ref().map(|s| &s.samples_ms),
    );
    let step = runs(
        lat.map(|l| &l.decoder_step_runs_ms),
        row.decoder_step.as_ref().map(|s| &s.samples_ms),
    );
    let e2e = runs(lat.map(|l| &l.end_to_end_runs_ms), None);
    out.push(series_line(
        "encoder",
        lat.map(|l| &l.encoder_ms),
        encoder,
        width,
        theme,
    ));
    out.push(series_line(
        "decoder step",
        lat.map(|l| &l.decoder_step_ms),
        step,
        width,
        theme,
    ));
    out.push(series_line(
        "end to end",
        lat.map(|l| &l.end_to_end_ms),
        e2e,
        width,
        theme,
    ));

    let worst = row.worst(3);
    out.push(Line::styled(
        format!(
            "worst utterances ({} transcribed, normalised text)",
            row.utterances.len()
        ),
        theme.title(),
    ));
    if worst.is_empty() {
        out.push(Line::styled("  no word errors so far", theme.dim()));
    }
    for u in worst {
        out.push(Line::from(vec![
            Span::styled(format!("  {:>2} errors ", u.word_errors), theme.bad()),
            Span::raw(u.audio.clone()),
        ]));
        out.push(marked("ref", &u.reference, theme));
        out.push(marked("hyp", &u.hypothesis, theme));
    }

    if let Some(q) = &row.quantization {
        out.push(Line::styled(
            format!("quantized: {} recipe, {:.1} s", q.recipe.name(), q.seconds),
            theme.title(),
        ));
        let name_width = q.parts.iter().map(|p| p.file.len()).max().unwrap_or(0);
        for p in &q.parts {
            let mut ops: Vec<String> = p
                .ops
                .iter()
                .filter(|(_, c)| c.quantized > 0)
                .map(|(op, c)| format!("{op} {}/{}", c.quantized, c.total))
                .collect();
            let float: usize = p
                .ops
                .values()
                .filter(|c| c.quantized == 0)
                .map(|c| c.total)
                .sum();
            ops.push(format!("{float} other ops float"));
            out.push(Line::raw(format!(
                "  {:<name_width$} {}",
                p.file.trim_end_matches(".onnx"),
                ops.join(" · ")
            )));
            if !p.left_in_float.is_empty() {
                out.push(Line::styled(
                    format!(
                        "  {:<name_width$} {} kept float on purpose",
                        "",
                        p.left_in_float.len()
                    ),
                    theme.dim(),
                ));
            }
        }
        if let (Some(sha), Some(n)) = (&q.calibration_sha256, q.calibration_clips) {
            out.push(Line::styled(
                format!(
                    "  calibration: {n} clips, set sha256 {}",
                    &sha[..12.min(sha.len())]
                ),
                theme.dim(),
            ));
        }
    }
    out
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, theme: Theme, block: Block) {
    let width = block.inner(area).width as usize;
    let lines = app
        .selected_row()
        .map(|r| lines(r, width, theme))
        .unwrap_or_default();
    let top = app.detail_scroll.min(lines.len().saturating_sub(1)) as u16;
    f.render_widget(Paragraph::new(lines).block(block).scroll((top, 0)), area);
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparkline_scales_between_extremes_and_keeps_the_newest() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 10), "▁▅█");
        assert_eq!(sparkline(&[9.0, 1.0, 1.0, 8.0], 2), "▁█");
        assert_eq!(sparkline(&[4.0, 4.0], 5), "▁▁");
        assert_eq!(sparkline(&[], 5), "");
    }
}
