//! SVG plots of a `compare` run: latency against offered load, the
//! latency spectrum (latency at each percentile) of one run, and a
//! rollout over time ([`rollout()`]).
//!
//! Both plots put latency on a log axis: at the tail the systems differ by
//! orders of magnitude, and a linear axis would press every median flat
//! against the floor. The SVG backend writes text as `<text>` elements that
//! whatever displays the file lays out, so no font library is linked.
//!
//! A system keeps its colour from one plot to the next (fixed for the four
//! systems of a comparison, taken from its name for any other), so the plots
//! of a run can be read side by side.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use self::rollout::{rollout, Mark, MarkKind, Rollout, Side};

mod rollout;

/// Width and height of every plot, in pixels: room for eight legend lines
/// beside the curves, and a 16:10 shape that fits a report page.
const SIZE: (u32, u32) = (800, 500);

/// The lowest latency a log axis shows, in µs. The load generator's
/// histograms start at 1 µs, and a log axis cannot reach zero.
const MIN_LATENCY_US: f64 = 1.0;

/// How far right the spectrum places a quantile, in nines (six nines is
/// 99.9999%). Quantile 1 (the maximum) lies infinitely far right on a nines
/// axis; it is drawn here, one step past 99.999%.
const MAX_NINES: f64 = 6.0;

/// The spectrum's x axis always reaches 99.999%, so spectra of different
/// runs share their axis whether or not a run was long enough to reach it.
const MIN_SPECTRUM_NINES: f64 = 5.0;

/// Factor of empty space below the lowest and above the highest latency, so
/// that no curve runs along the frame.
const LOG_HEADROOM: f64 = 1.5;

/// Share of the x span left empty right of the last point, for the same
/// reason.
const LINEAR_HEADROOM: f64 = 0.05;

/// Coordinates beyond this magnitude are not measurements (a trillion
/// requests per second, eleven days in µs): such points are left out, which
/// keeps every range and tick computation finite.
const MAX_COORDINATE: f64 = 1e12;

/// About how many ticks an axis gets; the exact count depends on the range.
const TARGET_TICKS: f64 = 8.0;

/// Line widths, dashes and markers, in pixels: p50 thinner and dashed so
/// that it reads as secondary to p99 in the same colour.
const SOLID_WIDTH: u32 = 2;
const DASHED_WIDTH: u32 = 1;
const DASH: u32 = 6;
const DASH_GAP: u32 = 4;
const MARKER_RADIUS: u32 = 3;
const LEGEND_LINE: i32 = 20;

/// One system's curve: `points` are (x, y) pairs in drawing order.
#[derive(Debug, Clone)]
pub struct Series {
    /// The system measured: `direct`, `ringway`, `nginx`, `haproxy`, ...
    pub system: String,
    /// (x, y) pairs in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed while drawing the document in memory.
    #[error("plot {path}: drawing the SVG failed: {source}")]
    Draw {
        /// The file the plot was meant for.
        path: PathBuf,
        /// Why.
        source: DrawingAreaErrorKind<io::Error>,
    },
    /// The finished document could not be written.
    #[error("plot {path}: cannot write the file: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Latency against offered load: x = offered rate (requests/s, linear),
/// y = latency in µs (log scale).
///
/// One colour per system; p50 is a thin dashed line, p99 a solid line with a
/// point at each measurement. The legend reads "ringway p99", "ringway p50",
/// ... in the order the systems first appear in `p99`, then in `p50`.
pub fn latency_vs_load(
    path: &Path,
    title: &str,
    p50: &[Series],
    p99: &[Series],
) -> Result<(), PlotError> {
    let mut systems: Vec<&str> = Vec::new();
    for series in p99.iter().chain(p50) {
        if !systems.contains(&series.system.as_str()) {
            systems.push(&series.system);
        }
    }
    let mut curves = Vec::new();
    for system in systems {
        for series in p99.iter().filter(|s| s.system == system) {
            curves.push(Curve {
                label: format!("{system} p99"),
                colour: colour(system),
                line: Line::Solid,
                markers: true,
                points: latency_points(&series.points, |rate| rate),
            });
        }
        for series in p50.iter().filter(|s| s.system == system) {
            curves.push(Curve {
                label: format!("{system} p50"),
                colour: colour(system),
                line: Line::Dashed,
                markers: false,
                points: latency_points(&series.points, |rate| rate),
            });
        }
    }
    curves.retain(|c| !c.points.is_empty());

    let range = load_range(&curves);
    let axes = Axes {
        x: Axis {
            ticks: linear_ticks(&range),
            range,
            scale: Scale::Linear,
        },
        x_desc: "offered load (requests/s)",
        x_label: number_label,
    };
    save(path, title, &axes, &curves)
}

/// Latency percentile spectrum: points are (quantile in 0..1, latency µs).
///
/// The x axis counts nines (x = -log10(1 - q)), so 50%, 90%, 99%, 99.9%,
/// 99.99% and 99.999% are evenly spaced and labelled so; y = latency in µs
/// (log scale). One line per system. Quantile 1 (the maximum) is drawn at
/// six nines (99.9999%), quantiles outside 0..1 at the nearer end.
pub fn spectrum(path: &Path, title: &str, series: &[Series]) -> Result<(), PlotError> {
    let curves: Vec<Curve> = series
        .iter()
        .map(|s| Curve {
            label: s.system.clone(),
            colour: colour(&s.system),
            line: Line::Solid,
            markers: false,
            points: latency_points(&s.points, nines),
        })
        .filter(|c| !c.points.is_empty())
        .collect();

    let highest = curves
        .iter()
        .flat_map(|c| &c.points)
        .map(|&(x, _)| x)
        .fold(MIN_SPECTRUM_NINES, f64::max);
    let range = 0.0..highest * (1.0 + LINEAR_HEADROOM);
    // 50% sits at log10(2) nines, each later tick one nine further.
    let ticks = [0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0]
        .into_iter()
        .map(nines)
        .filter(|t| range.contains(t))
        .collect();
    let axes = Axes {
        x: Axis {
            range,
            scale: Scale::Linear,
            ticks,
        },
        x_desc: "percentile (evenly spaced nines)",
        x_label: percentile_label,
    };
    save(path, title, &axes, &curves)
}

/// One line of a plot, its points already checked and mapped to the axes.
struct Curve {
    label: String,
    colour: RGBColor,
    line: Line,
    /// A filled point at each measurement.
    markers: bool,
    points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy)]
enum Line {
    Solid,
    Dashed,
}

/// The x axis of a plot; y is always latency on a log scale.
struct Axes {
    x: Axis,
    x_desc: &'static str,
    x_label: fn(&f64) -> String,
}

/// One axis: its range, its scale, and where its ticks go. Ticks are placed
/// by this module rather than by plotters, whose log axis puts none on a
/// range that holds no power of ten.
#[derive(Clone)]
struct Axis {
    range: Range<f64>,
    scale: Scale,
    ticks: Vec<f64>,
}

#[derive(Clone, Copy)]
enum Scale {
    Linear,
    Log,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let position = |v: f64| match self.scale {
            Scale::Linear => v,
            Scale::Log => v.ln(),
        };
        let (start, end) = (position(self.range.start), position(self.range.end));
        let share = (position(*value) - start) / (end - start);
        // `as` saturates (NaN becomes 0) and the add saturates: a value off
        // the axis lands off the plot, never in an overflow.
        let offset = (share * (f64::from(limit.1) - f64::from(limit.0))).round() as i32;
        limit.0.saturating_add(offset)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light points are the faint grid lines between ticks: none.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<Axis, Axis>>;

type DrawResult<T> = Result<T, DrawingAreaErrorKind<io::Error>>;

/// Draws the plot into memory, then writes it: a drawing that fails half
/// way leaves no file behind.
fn save(path: &Path, title: &str, axes: &Axes, curves: &[Curve]) -> Result<(), PlotError> {
    let svg = render(title, axes, curves).map_err(|source| PlotError::Draw {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, svg).map_err(|source| PlotError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The SVG document of one plot; "no data" in place of the chart when no
/// curve has a point to draw.
fn render(title: &str, axes: &Axes, curves: &[Curve]) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let area = root.titled(title, ("sans-serif", 20))?;
        if curves.is_empty() {
            let (width, height) = area.dim_in_pixel();
            let centre = (width as i32 / 2, height as i32 / 2);
            let style = TextStyle::from(("sans-serif", 16).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center));
            area.draw(&Text::new("no data", centre, style))?;
        } else {
            draw_chart(&area, axes, curves)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// The axes, their grid and labels, the curves and the legend.
fn draw_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    axes: &Axes,
    curves: &[Curve],
) -> DrawResult<()> {
    let range = latency_range(curves);
    let y = Axis {
        ticks: log_ticks(&range),
        range,
        scale: Scale::Log,
    };
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(axes.x.clone(), y)?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc("latency (µs, log scale)")
        .x_label_formatter(&axes.x_label)
        .y_label_formatter(&number_label)
        .draw()?;
    for curve in curves {
        draw_curve(&mut chart, curve)?;
    }
    // Latency rises to the right in both plots, so the upper left is where
    // the legend hides the least.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// One curve and its legend entry.
fn draw_curve(chart: &mut Chart<'_>, curve: &Curve) -> DrawResult<()> {
    let points = curve.points.iter().copied();
    let anno = match curve.line {
        Line::Solid => chart.draw_series(LineSeries::new(
            points,
            curve.colour.stroke_width(SOLID_WIDTH),
        ))?,
        Line::Dashed => chart.draw_series(DashedLineSeries::new(
            points,
            DASH,
            DASH_GAP,
            curve.colour.stroke_width(DASHED_WIDTH),
        ))?,
    };
    anno.label(curve.label.as_str());
    // The legend shows a short stretch of the curve as drawn.
    match (curve.line, curve.markers) {
        (Line::Solid, true) => {
            let style = curve.colour.stroke_width(SOLID_WIDTH);
            anno.legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (LEGEND_LINE, 0)], style)
                    + Circle::new((LEGEND_LINE / 2, 0), MARKER_RADIUS, style.filled())
            });
        }
        (Line::Solid, false) => {
            let style = curve.colour.stroke_width(SOLID_WIDTH);
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + LEGEND_LINE, y)], style));
        }
        (Line::Dashed, _) => {
            let style = curve.colour.stroke_width(DASHED_WIDTH);
            anno.legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + LEGEND_LINE, y)], DASH, DASH_GAP, style)
            });
        }
    }
    // A lone point is a line of length zero, which draws nothing.
    if curve.markers || curve.points.len() == 1 {
        let fill = curve.colour.filled();
        chart.draw_series(
            curve
                .points
                .iter()
                .map(|&point| Circle::new(point, MARKER_RADIUS, fill)),
        )?;
    }
    Ok(())
}

/// The points of `measured` that are measurements, x mapped by `map_x` and
/// latency raised to the floor of the log axis.
fn latency_points(measured: &[(f64, f64)], map_x: fn(f64) -> f64) -> Vec<(f64, f64)> {
    let plausible = |v: f64| v.is_finite() && v.abs() <= MAX_COORDINATE;
    measured
        .iter()
        .filter(|&&(x, y)| plausible(x) && plausible(y))
        .map(|&(x, y)| (map_x(x), y.max(MIN_LATENCY_US)))
        .collect()
}

/// How many nines quantile `q` has: 0.9 -> 1, 0.999 -> 3, 0.5 -> 0.301,
/// at most [`MAX_NINES`].
fn nines(q: f64) -> f64 {
    // q = 1 gives log10(0) = -inf, which `min` brings back to MAX_NINES.
    (-(1.0 - q.clamp(0.0, 1.0)).log10()).min(MAX_NINES)
}

/// The offered rates of all curves, from zero (a rate axis that starts
/// elsewhere makes small differences in load look large).
fn load_range(curves: &[Curve]) -> Range<f64> {
    let (low, high) = curves
        .iter()
        .flat_map(|c| &c.points)
        .fold((0.0_f64, 0.0_f64), |(low, high), &(x, _)| {
            (low.min(x), high.max(x))
        });
    let span = high - low;
    if span > 0.0 {
        low..high + LINEAR_HEADROOM * span
    } else {
        low..low + 1.0
    }
}

/// The latencies of all curves with [`LOG_HEADROOM`] either side, never
/// below [`MIN_LATENCY_US`].
fn latency_range(curves: &[Curve]) -> Range<f64> {
    let (low, high) = curves
        .iter()
        .flat_map(|c| &c.points)
        .fold((f64::INFINITY, MIN_LATENCY_US), |(low, high), &(_, y)| {
            (low.min(y), high.max(y))
        });
    let high = high * LOG_HEADROOM;
    // With no points at all `low` is infinite; `min` keeps the range the
    // right way round (and changes nothing otherwise: `high` is at least the
    // largest point).
    let low = (low / LOG_HEADROOM)
        .max(MIN_LATENCY_US)
        .min(high / LOG_HEADROOM);
    low..high
}

/// Round numbers across a linear range, about [`TARGET_TICKS`] of them,
/// spaced 1, 2 or 5 times a power of ten.
fn linear_ticks(range: &Range<f64>) -> Vec<f64> {
    let span = range.end - range.start;
    if !(span > 0.0 && span.is_finite()) {
        return vec![range.start];
    }
    let magnitude = 10_f64.powf((span / TARGET_TICKS).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= TARGET_TICKS)
        .unwrap_or(10.0 * magnitude);
    let first = (range.start / step).ceil() as i64;
    let last = (range.end / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Round numbers across a log range: powers of ten when the range spans
/// enough of them, else 1-2-5 in each decade, else every digit, so that a
/// narrow range still gets labels.
fn log_ticks(range: &Range<f64>) -> Vec<f64> {
    const MIN_TICKS: usize = 4;
    const MANTISSAS: [&[f64]; 3] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    let first = range.start.log10().floor() as i32;
    let last = range.end.log10().ceil() as i32;
    let mut ticks = Vec::new();
    for mantissas in MANTISSAS {
        ticks = (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10_f64.powi(e)))
            .filter(|t| range.contains(t))
            .collect();
        if ticks.len() >= MIN_TICKS {
            break;
        }
    }
    ticks
}

/// A number with at most two decimals and no trailing zeros: 50000, 0.25.
fn number_label(value: &f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The percentile at `nines` nines, with as many decimals as it has nines
/// past the second: 50%, 90%, 99%, 99.9%, 99.99%.
fn percentile_label(nines: &f64) -> String {
    let percent = 100.0 * (1.0 - 10_f64.powf(-nines));
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

/// The colour of a system, the same in every plot: the four systems of a
/// comparison have fixed, distinct colours; any other name takes one of the
/// rest of the palette by a hash of its name.
fn colour(system: &str) -> RGBColor {
    const DIRECT: RGBColor = RGBColor(90, 90, 90);
    const RINGWAY: RGBColor = RGBColor(31, 119, 180);
    const NGINX: RGBColor = RGBColor(44, 160, 44);
    const HAPROXY: RGBColor = RGBColor(214, 39, 40);
    const OTHERS: [RGBColor; 6] = [
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    let name = system.trim().to_ascii_lowercase();
    match name.as_str() {
        "direct" => DIRECT,
        "ringway" => RINGWAY,
        "nginx" => NGINX,
        "haproxy" => HAPROXY,
        _ => {
            // FNV-1a rather than std's hasher: std does not promise the same
            // hash from one release to the next, and a colour must not move.
            let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            // The remainder is below OTHERS.len(), so it fits a usize.
            OTHERS[(hash % OTHERS.len() as u64) as usize]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEMS: [&str; 4] = ["direct", "ringway", "nginx", "haproxy"];

    fn series(system: &str, points: &[(f64, f64)]) -> Series {
        Series {
            system: system.to_owned(),
            points: points.to_vec(),
        }
    }

    /// Reads a plot back, checks that it is one whole SVG document, and
    /// returns the text of its `<text>` elements.
    pub(super) fn read_svg(path: &Path) -> Vec<String> {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}: {svg:.80}", path.display());
        assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        // A coordinate that was not a number would be written as such.
        for bad in ["NaN", "inf"] {
            assert!(!svg.contains(bad), "{} contains {bad}", path.display());
        }
        let mut texts = Vec::new();
        for element in svg.split("</text>") {
            if let Some(open) = element.rfind("<text") {
                let body = &element[open..];
                let start = body.find('>').unwrap() + 1;
                texts.push(body[start..].trim().to_owned());
            }
        }
        texts
    }

    fn position(texts: &[String], wanted: &str) -> usize {
        texts
            .iter()
            .position(|t| t == wanted)
            .unwrap_or_else(|| panic!("no text {wanted:?} in {texts:?}"))
    }

    #[test]
    fn latency_vs_load_has_a_legend_line_per_system_and_percentile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.svg");
        let rates = [1000.0, 5000.0, 10_000.0, 20_000.0, 40_000.0];
        let curve = |base: f64| -> Vec<(f64, f64)> {
            rates.iter().map(|&r| (r, base + r / 100.0)).collect()
        };
        let p50: Vec<Series> = SYSTEMS
            .iter()
            .enumerate()
            .map(|(i, s)| series(s, &curve(20.0 * (i + 1) as f64)))
            .collect();
        let p99: Vec<Series> = SYSTEMS
            .iter()
            .enumerate()
            .map(|(i, s)| series(s, &curve(300.0 * (i + 1) as f64)))
            .collect();
        latency_vs_load(&path, "HTTP keep-alive", &p50, &p99).unwrap();

        let texts = read_svg(&path);
        position(&texts, "HTTP keep-alive");
        position(&texts, "offered load (requests/s)");
        position(&texts, "latency (µs, log scale)");
        let mut last = None;
        for system in SYSTEMS {
            let p99 = position(&texts, &format!("{system} p99"));
            let p50 = position(&texts, &format!("{system} p50"));
            assert!(p99 < p50, "{system}: p99 is listed before p50");
            assert!(last < Some(p99), "{system}: systems in the order given");
            last = Some(p50);
        }
        assert!(!texts.iter().any(|t| t == "no data"));
        let svg = std::fs::read_to_string(&path).unwrap();
        for system in SYSTEMS {
            let RGBColor(r, g, b) = colour(system);
            let hex = format!("#{r:02X}{g:02X}{b:02X}");
            assert!(svg.contains(&hex), "{system}'s colour {hex} is drawn");
        }
        // The largest offered rate is on the axis.
        assert!(texts.iter().any(|t| t == "40000"), "{texts:?}");
    }

    #[test]
    fn spectrum_labels_the_percentiles_and_the_systems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spectrum.svg");
        let quantiles = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0];
        let all: Vec<Series> = SYSTEMS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let points: Vec<(f64, f64)> = quantiles
                    .iter()
                    .enumerate()
                    .map(|(k, &q)| (q, (i + 1) as f64 * 50.0 * 2_f64.powi(k as i32)))
                    .collect();
                series(s, &points)
            })
            .collect();
        spectrum(&path, "spectrum at 20000 requests/s", &all).unwrap();

        let texts = read_svg(&path);
        let ticks = [
            "50%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%",
        ];
        let at: Vec<usize> = ticks.iter().map(|t| position(&texts, t)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "ticks left to right");
        for system in SYSTEMS {
            position(&texts, system);
        }
        position(&texts, "latency (µs, log scale)");
    }

    #[test]
    fn spectrum_axis_reaches_five_nines_for_a_short_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.svg");
        let short = series("ringway", &[(0.5, 80.0), (0.9, 95.0), (0.99, 130.0)]);
        spectrum(&path, "short", &[short]).unwrap();
        let texts = read_svg(&path);
        position(&texts, "99.999%");
        assert!(!texts.iter().any(|t| t == "99.9999%"), "{texts:?}");
    }

    #[test]
    fn nothing_to_draw_writes_a_plot_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let empty = [series("ringway", &[]), series("nginx", &[])];
        let garbage = [series("nginx", &[(f64::NAN, 10.0), (1.0, f64::INFINITY)])];
        let cases: [(&str, &[Series], &[Series]); 3] = [
            ("none", &[], &[]),
            ("empty", &empty, &empty),
            ("garbage", &garbage, &garbage),
        ];
        for (name, p50, p99) in cases {
            let path = dir.path().join(format!("load-{name}.svg"));
            latency_vs_load(&path, name, p50, p99).unwrap();
            let texts = read_svg(&path);
            position(&texts, name);
            position(&texts, "no data");

            let path = dir.path().join(format!("spectrum-{name}.svg"));
            spectrum(&path, name, p99).unwrap();
            let texts = read_svg(&path);
            position(&texts, name);
            position(&texts, "no data");
        }
    }

    #[test]
    fn a_single_point_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.svg");
        latency_vs_load(
            &path,
            "one rate",
            &[series("nginx", &[(5000.0, 90.0)])],
            &[series("nginx", &[(5000.0, 400.0)])],
        )
        .unwrap();
        let texts = read_svg(&path);
        position(&texts, "nginx p99");
        position(&texts, "nginx p50");
        let svg = std::fs::read_to_string(&path).unwrap();
        // Both points, and the marker in the p99 legend line.
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");

        let path = dir.path().join("one-spectrum.svg");
        spectrum(
            &path,
            "one quantile",
            &[series("haproxy", &[(0.99, 250.0)])],
        )
        .unwrap();
        position(&read_svg(&path), "haproxy");
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn latencies_below_one_microsecond_and_quantile_one_stay_on_the_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.svg");
        let points = [(0.0, 0.0), (0.5, -3.0), (0.9, 0.2), (1.0, 5.0), (1.5, 7.0)];
        spectrum(&path, "floor", &[series("direct", &points)]).unwrap();
        let texts = read_svg(&path);
        position(&texts, "direct");
        // Every latency tick is a whole number of µs, at least one.
        let y_ticks: Vec<f64> = texts.iter().filter_map(|t| t.parse().ok()).collect();
        assert!(!y_ticks.is_empty(), "{texts:?}");
        assert!(y_ticks.iter().all(|&t| t >= MIN_LATENCY_US), "{y_ticks:?}");

        assert_eq!(nines(1.0), 6.0);
        assert_eq!(nines(7.0), 6.0);
        assert_eq!(nines(-1.0), 0.0);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn latency_range_has_headroom_and_a_floor() {
        let curve = |points: &[(f64, f64)]| Curve {
            label: String::new(),
            colour: colour("ringway"),
            line: Line::Solid,
            markers: false,
            points: latency_points(points, |x| x),
        };
        let range = latency_range(&[curve(&[(0.0, 100.0), (1.0, 1000.0)])]);
        assert!(
            range.start < 100.0 && range.start >= MIN_LATENCY_US,
            "{range:?}"
        );
        assert!(range.end > 1000.0, "{range:?}");
        let range = latency_range(&[curve(&[(0.0, 0.0), (1.0, -5.0)])]);
        assert_eq!(range.start, MIN_LATENCY_US);
        assert!(range.end > range.start, "{range:?}");
        let range = latency_range(&[]);
        assert!(range.start >= MIN_LATENCY_US && range.end > range.start);
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(
            log_ticks(&(1.0..1.5e6)),
            [1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6]
        );
        assert_eq!(log_ticks(&(8.0..120.0)), [10.0, 20.0, 50.0, 100.0]);
        // No power of ten inside: still labelled.
        let narrow = log_ticks(&(120.0..450.0));
        assert_eq!(narrow, [200.0, 300.0, 400.0]);
        let linear = linear_ticks(&(0.0..105_000.0));
        assert_eq!(
            linear,
            [0.0, 20_000.0, 40_000.0, 60_000.0, 80_000.0, 100_000.0]
        );
        assert_eq!(number_label(&0.6000000001), "0.6");
        assert_eq!(number_label(&50_000.0), "50000");
        let labels: Vec<String> = [0.5, 0.9, 0.99, 0.999, 0.99999]
            .into_iter()
            .map(|q| percentile_label(&nines(q)))
            .collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.999%"]);
    }

    #[test]
    fn colours_are_fixed_per_system() {
        let fixed: Vec<RGBColor> = SYSTEMS.iter().map(|s| colour(s)).collect();
        for (i, a) in fixed.iter().enumerate() {
            for b in &fixed[i + 1..] {
                assert_ne!(a, b, "the four systems have distinct colours");
            }
        }
        assert_eq!(colour("HAProxy"), colour("haproxy"));
        let other = colour("envoy");
        assert_eq!(other, colour("envoy"), "the same name, the same colour");
        assert!(!fixed.contains(&other), "others do not take a fixed colour");
    }

    #[test]
    fn an_unwritable_path_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("plot.svg");
        let err = spectrum(&path, "t", &[series("ringway", &[(0.5, 10.0)])]).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}
