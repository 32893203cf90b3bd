//! Detail of the selected row: each series' statistics, runs (sparkline) and histogram with the median and
//! its interval marked; its accuracy (per answer type for BLIP), warnings and worst items as the engine
//! laid them out; for INT8 rows how the model was quantized.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::results::status_mark;
use super::theme::Theme;
use crate::measure::stats::Ratio;
use crate::measure::wer::MarkedWords;
use crate::results::Series;
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

/// A series: its statistics and speedup, its runs in order as a sparkline, and its histogram with the
/// median (▲) and the median's 95 % interval ([ ]) marked under it.
fn series_lines(
    name: &str,
    series: Option<&Series>,
    speedup: Option<Ratio>,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let Some(s) = series else {
        return vec![Line::from(vec![
            Span::raw(format!("  {name:<13}")),
            Span::styled("not measured yet", theme.dim()),
        ])];
    };
    let st = &s.stats;
    let mut text = format!(
        "  {name:<13}n {:<3} med {:.2} [{:.2}, {:.2}] p90 {:.2}",
        st.n, st.median_ms, st.ci95_median_ms[0], st.ci95_median_ms[1], st.p90_ms
    );
    if let Some(x) = speedup {
        text += &format!("  {:.2}× [{:.2}, {:.2}]", x.median, x.ci95[0], x.ci95[1]);
    }
    if let Some(t) = s.ms_per_token {
        text += &format!("  {t:.2} ms/token");
    }
    if st.outliers > 0 {
        text += &format!("  {} outliers", st.outliers);
    }
    let room = width.saturating_sub(16);
    let mut out = vec![
        Line::raw(text),
        Line::from(vec![
            Span::styled("    runs      ", theme.dim()),
            Span::styled(sparkline(&st.runs_ms, room), theme.active()),
        ]),
    ];
    if let Some(h) = &s.histogram {
        let max = h.counts.iter().copied().max().unwrap_or(0).max(1);
        let bars: String = h
            .counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    ' '
                } else {
                    BARS[(c * 7).div_ceil(max).min(7)]
                }
            })
            .collect();
        let mut marks = vec![' '; h.counts.len()];
        let (lo, hi) = (
            h.bin_of(st.ci95_median_ms[0]),
            h.bin_of(st.ci95_median_ms[1]),
        );
        marks[lo] = '[';
        marks[hi] = if hi == lo { '|' } else { ']' };
        marks[h.bin_of(st.median_ms)] = '▲';
        out.push(Line::from(vec![
            Span::styled(format!("    {:<10}", format!("{:.1}", h.lo)), theme.dim()),
            Span::styled(bars, theme.active()),
            Span::styled(format!(" {:.1}", h.hi), theme.dim()),
        ]));
        out.push(Line::from(vec![
            Span::raw("              "),
            Span::styled(marks.into_iter().collect::<String>(), theme.title()),
        ]));
    }
    out
}

fn marked(label: &str, words: &MarkedWords, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("     {label:<3}  "), theme.dim())];
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

pub fn lines(row: &Row, width: usize, theme: Theme) -> Vec<Line<'static>> {
    let (mark, style) = status_mark(row.status, theme);
    let mut out = vec![Line::from(vec![
        Span::styled(
            format!("{} {} ({})  ", row.model, row.variant, row.kind.name()),
            theme.title(),
        ),
        Span::styled(format!("{mark} {}", row.status.label()), style),
    ])];
    out.push(Line::styled("latency series (ms)", theme.title()));
    for spec in row.kind.series() {
        let long = spec.name == "long_form";
        if long && row.series(spec.name).is_none() && row.segments.segments.is_empty() {
            continue;
        }
        out.extend(series_lines(
            spec.name,
            row.series(spec.name),
            row.speedup(spec.name),
            width,
            theme,
        ));
    }
    let metric = row.kind.metric();
    match (&row.result, row.running) {
        (Some(r), _) => {
            let a = &r.accuracy;
            let text = match (a.value, &a.not_applicable) {
                (Some(v), _) => {
                    let mut t = format!(
                        "{} {:.2} % on {} items",
                        metric.label(),
                        v * 100.0,
                        a.n.unwrap_or(0)
                    );
                    let mut extra: Vec<String> = a
                        .by_type
                        .iter()
                        .map(|(k, x)| format!("{k} {:.2} %", x * 100.0))
                        .collect();
                    extra.extend(
                        a.secondary
                            .iter()
                            .map(|(k, x)| format!("{} {:.2} %", k.replace('_', " "), x * 100.0)),
                    );
                    if !extra.is_empty() {
                        t += &format!(" ({})", extra.join(", "));
                    }
                    t
                }
                (None, Some(why)) => format!("{}: n/a — {why}", metric.label()),
                _ => format!("{}: —", metric.label()),
            };
            out.push(Line::styled(text, theme.title()));
            for w in &r.warnings {
                out.push(Line::styled(format!("  ⚠ {w}"), theme.warn()));
            }
            let what = match row.kind {
                crate::results::Kind::Whisper => "worst utterances (normalised text)",
                crate::results::Kind::Blip => "wrong answers",
            };
            out.push(Line::styled(what, theme.title()));
            if r.worst.is_empty() {
                out.push(Line::styled("  none", theme.dim()));
            }
            for w in &r.worst {
                out.push(Line::from(vec![
                    Span::styled(format!("  {} ", w.cost), theme.bad()),
                    Span::raw(w.item.clone()),
                ]));
                for (label, words) in &w.lines {
                    out.push(marked(label, words, theme));
                }
            }
        }
        (None, Some(run)) => out.push(Line::styled(
            format!(
                "{} so far {} ({} of {} items)",
                metric.label(),
                run.value
                    .map_or("—".into(), |v| format!("{:.2} %", v * 100.0)),
                run.done,
                run.total
            ),
            theme.dim(),
        )),
        (None, None) => out.push(Line::styled(
            format!("{}: not evaluated yet", metric.label()),
            theme.dim(),
        )),
    }

    out.extend(long_form_lines(row, theme));

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

/// `m:ss.s`.
fn clock(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    format!("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10)
}

/// The long-form outcome of a finished row, and the segments of the recording being transcribed (as they
/// are decoded) or, once done, of the last recording.
fn long_form_lines(row: &Row, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let done = row.result.as_ref().and_then(|r| r.long_form.as_ref());
    if let Some(l) = done {
        let mut text = format!(
            "long-form: {} recordings, {:.0} s of audio, {:.1}× real time, WER {:.2} %, segment starts at {}/{} joins",
            l.recordings.len(),
            l.audio_seconds,
            l.real_time_factor,
            l.wer * 100.0,
            l.joins_met,
            l.joins
        );
        if let Some(v) = &l.vs_fp32 {
            text += &format!(
                "; vs FP32 {:.2}× faster, WER {:+.2} pts",
                v.real_time_factor_speedup, v.wer_drop_points
            );
        }
        out.push(Line::styled(text, theme.title()));
        if let Some(v) = &l.vs_fp32 {
            let t = &v.timing;
            let secs = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.2} s"));
            out.push(Line::raw(format!(
                "  {} of {} segments aligned with FP32's ({} same text), mean |Δstart| {}, |Δend| {}",
                t.aligned,
                t.baseline_segments,
                v.same_text_segments,
                secs(t.mean_abs_start_s),
                secs(t.mean_abs_end_s)
            )));
        }
    }
    let (recording, segments) = if !row.segments.segments.is_empty() {
        (&row.segments.recording, &row.segments.segments)
    } else if let Some(r) = done.and_then(|l| l.recordings.last()) {
        (&r.name, &r.segments)
    } else {
        return out;
    };
    out.push(Line::styled(
        format!("segments of {recording}"),
        theme.title(),
    ));
    for s in segments {
        out.push(Line::from(vec![
            Span::styled(
                format!("  {} → {}  ", clock(s.start), clock(s.end)),
                theme.dim(),
            ),
            Span::raw(s.text.clone()),
        ]));
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
    use super::{clock, sparkline};

    #[test]
    fn clock_shows_minutes_seconds_and_tenths() {
        assert_eq!(clock(0.0), "0:00.0");
        assert_eq!(clock(61.26), "1:01.3");
        assert_eq!(clock(599.96), "10:00.0");
    }

    #[test]
    fn sparkline_scales_between_extremes_and_keeps_the_newest() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 10), "▁▅█");
        assert_eq!(sparkline(&[9.0, 1.0, 1.0, 8.0], 2), "▁█");
        assert_eq!(sparkline(&[4.0, 4.0], 5), "▁▁");
        assert_eq!(sparkline(&[], 5), "");
    }
}
