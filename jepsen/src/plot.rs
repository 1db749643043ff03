//! The run's picture: every completed operation as a point at its start
//! time and latency (ok green, fail red, info orange; reads as dots,
//! changes as crosses), on a log latency axis, with each nemesis interval
//! shaded and named. Written as PNG with plotters; text uses DejaVu Sans
//! (Debian's fonts-dejavu-core), found at run time.

use std::path::Path;

use plotters::prelude::*;

use crate::history::{Event, EventType};
use crate::nemesis::Interval;

/// Where the font is looked for.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Why no plot was drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no font for the plot's text (install fonts-dejavu-core; looked in {0:?})")]
    NoFont([&'static str; 2]),
    #[error("cannot draw the plot: {0}")]
    Draw(String),
}

/// Registers DejaVu Sans as plotters' "sans-serif", once.
fn font() -> Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let Some(bytes) = FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()) else {
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::NoFont(FONT_PATHS))
    }
}

/// One point: start (s), latency (ms), how it ended, whether it read.
struct Point {
    start: f64,
    latency_ms: f64,
    kind: EventType,
    read: bool,
}

fn points(events: &[Event]) -> Vec<Point> {
    let mut open = std::collections::HashMap::new();
    let mut points = Vec::new();
    for event in events {
        if event.kind == EventType::Invoke {
            open.insert(event.process, event.time_ns);
        } else if let Some(start) = open.remove(&event.process) {
            points.push(Point {
                start: start as f64 / 1e9,
                latency_ms: (event.time_ns.saturating_sub(start) as f64 / 1e6).max(0.1),
                kind: event.kind,
                read: event.f == "read",
            });
        }
    }
    points
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Draws `events` and `intervals` into `path` (PNG), titled `title`.
pub fn timeline(
    path: &Path,
    title: &str,
    events: &[Event],
    intervals: &[Interval],
) -> Result<(), PlotError> {
    font()?;
    let points = points(events);
    let end = events
        .last()
        .map_or(1.0, |e| e.time_ns as f64 / 1e9)
        .max(1.0);
    let top = points.iter().map(|p| p.latency_ms).fold(10.0, f64::max) * 2.0;
    let root = BitMapBackend::new(path, (1400, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, (0.1..top).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("latency (ms)")
        .draw()
        .map_err(draw_err)?;
    let shade = RGBColor(120, 120, 220).mix(0.18);
    chart
        .draw_series(intervals.iter().map(|i| {
            let (s, e) = (i.start_ns as f64 / 1e9, i.end_ns as f64 / 1e9);
            Rectangle::new([(s, 0.1), (e, top)], shade.filled())
        }))
        .map_err(draw_err)?;
    chart
        .draw_series(intervals.iter().map(|i| {
            let label = serde_json::to_value(i.fault)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Text::new(
                label,
                (i.start_ns as f64 / 1e9, top / 1.6),
                ("sans-serif", 13),
            )
        }))
        .map_err(draw_err)?;
    for (kind, color) in [
        (EventType::Ok, GREEN.mix(0.6)),
        (EventType::Info, RGBColor(230, 140, 0).mix(0.9)),
        (EventType::Fail, RED.mix(0.9)),
    ] {
        let of_kind = points.iter().filter(|p| p.kind == kind);
        chart
            .draw_series(
                of_kind
                    .clone()
                    .filter(|p| p.read)
                    .map(|p| Circle::new((p.start, p.latency_ms), 2, color.filled())),
            )
            .map_err(draw_err)?;
        chart
            .draw_series(
                of_kind
                    .filter(|p| !p.read)
                    .map(|p| Cross::new((p.start, p.latency_ms), 3, color)),
            )
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)
}
