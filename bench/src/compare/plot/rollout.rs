//! The rollout plot: one run of a rollout scenario over time, in three
//! panels on one time axis (seconds from the load's start). On top, the
//! canary's weight as the sampler read it, with each decision of the agent
//! marked where it was seen (step, hold, rollback); below, for each
//! decision's interval, the canary's and the stable cluster's error rate,
//! then their p99 (log scale). A dashed vertical line marks the moment the
//! canary's origin began to misbehave, and a dotted one the end of the
//! warm-up.

use std::ops::Range;
use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{
    linear_ticks, log_ticks, number_label, Axis, DrawResult, PlotError, Scale, LEGEND_LINE,
    LINEAR_HEADROOM, LOG_HEADROOM, MARKER_RADIUS, SOLID_WIDTH,
};

/// Width and height: three panels of a third of the usual plot's height
/// each, and the title.
const SIZE: (u32, u32) = (800, 860);
/// The weight axis reaches a little past 100% so that a weight of 100
/// does not run along the frame.
const WEIGHT_TOP: f64 = 105.0;
/// The error-rate axis shows at least this much (percent), so that a run
/// without errors has a readable axis instead of a flat line on its top.
const MIN_ERROR_TOP: f64 = 1.0;
/// The figure panels' data fill the lower part of the panel, this share of
/// the axis: the legend takes the upper left, where the first decisions
/// would otherwise hide under it.
const DATA_SHARE: f64 = 0.45;
/// Marker size of the decisions, pixels.
const MARK: u32 = 6;

const STABLE: RGBColor = RGBColor(31, 119, 180);
const CANARY: RGBColor = RGBColor(255, 127, 14);
const STEP: RGBColor = RGBColor(44, 160, 44);
const HOLD: RGBColor = RGBColor(90, 90, 90);
const ROLLBACK: RGBColor = RGBColor(214, 39, 40);
const FAULT: RGBColor = RGBColor(148, 103, 189);

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// The canary's weight went up.
    Step,
    /// It stayed.
    Hold,
    /// It went to 0.
    Rollback,
}

/// One side's figures over a decision's interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Side {
    /// Error rate, percent.
    pub error_pct: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// One decision, where the sampler saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    /// Seconds from the load's start.
    pub t: f64,
    /// What it did.
    pub kind: MarkKind,
    /// The canary's weight after it, percent.
    pub weight: f64,
    /// The canary's figures over its interval.
    pub canary: Side,
    /// The stable cluster's.
    pub stable: Side,
}

/// One run's rollout.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    /// (seconds, canary weight %) at each poll.
    pub weight: Vec<(f64, f64)>,
    /// The decisions taken during the load.
    pub marks: Vec<Mark>,
    /// When the canary's origin began to misbehave, seconds.
    pub fault_at: Option<f64>,
    /// When the measured window began (the end of the warm-up), seconds.
    pub window_at: Option<f64>,
    /// When the load ended, seconds.
    pub end: f64,
}

/// Writes the rollout plot of `r` to `path`.
pub fn rollout(path: &Path, title: &str, r: &Rollout) -> Result<(), PlotError> {
    let svg = render(title, r).map_err(|source| PlotError::Draw {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, svg).map_err(|source| PlotError::Write {
        path: path.to_owned(),
        source,
    })
}

fn render(title: &str, r: &Rollout) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let area = root.titled(title, ("sans-serif", 20))?;
        let panels = area.split_evenly((3, 1));
        let finite = |v: f64| v.is_finite() && v.abs() <= super::MAX_COORDINATE;
        let end = [r.end]
            .into_iter()
            .chain(r.weight.iter().map(|p| p.0))
            .chain(r.marks.iter().map(|m| m.t))
            .filter(|t| finite(*t))
            .fold(1.0_f64, f64::max);
        let time = Axis {
            ticks: linear_ticks(&(0.0..end)),
            range: 0.0..end * (1.0 + LINEAR_HEADROOM),
            scale: Scale::Linear,
        };
        weight_panel(&panels[0], &time, r)?;
        let errors = |s: &Side| s.error_pct;
        let top = r
            .marks
            .iter()
            .flat_map(|m| [m.canary.error_pct, m.stable.error_pct])
            .flatten()
            .filter(|v| finite(*v))
            .fold(MIN_ERROR_TOP, f64::max);
        let error_axis = Axis {
            ticks: linear_ticks(&(0.0..top / DATA_SHARE)),
            range: 0.0..top / DATA_SHARE,
            scale: Scale::Linear,
        };
        figure_panel(
            &panels[1],
            &time,
            &error_axis,
            "error rate per interval (%)",
            r,
            errors,
        )?;
        let p99 = |s: &Side| s.p99_ms.filter(|v| *v > 0.0);
        let latencies: Vec<f64> = r
            .marks
            .iter()
            .flat_map(|m| [p99(&m.canary), p99(&m.stable)])
            .flatten()
            .filter(|v| finite(*v))
            .collect();
        let p99_axis = log_axis(&latencies);
        figure_panel(
            &panels[2],
            &time,
            &p99_axis,
            "p99 per interval (ms, log scale)",
            r,
            p99,
        )?;
        root.present()?;
    }
    Ok(svg)
}

/// A log axis over `values` with headroom, or from 0.1 ms without any,
/// room left above for the legend.
fn log_axis(values: &[f64]) -> Axis {
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(l, h), &v| (l.min(v), h.max(v)));
    let (low, high) = if high > 0.0 {
        (low / LOG_HEADROOM, high * LOG_HEADROOM)
    } else {
        (0.1, 10.0)
    };
    // The data in the lower DATA_SHARE of the axis, in log terms.
    let range: Range<f64> = low..low * (high / low).powf(1.0 / DATA_SHARE);
    Axis {
        ticks: log_ticks(&range),
        range,
        scale: Scale::Log,
    }
}

type Panel<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type PanelChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// A panel's frame, grid and labels.
fn chart<'a, 'b>(
    panel: &'a Panel<'b>,
    time: &Axis,
    y: &Axis,
    y_desc: &str,
) -> DrawResult<PanelChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(panel)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(time.clone(), y.clone())?;
    chart
        .configure_mesh()
        .x_desc("seconds from the start of the load")
        .y_desc(y_desc)
        .x_label_formatter(&number_label)
        .y_label_formatter(&number_label)
        .draw()?;
    Ok(chart)
}

/// The vertical lines of the end of the warm-up and of the canary's fault.
fn moments(chart: &mut PanelChart<'_, '_>, r: &Rollout, y: &Range<f64>) -> DrawResult<()> {
    if let Some(t) = r.window_at.filter(|t| *t > 0.0) {
        let style = HOLD.stroke_width(1);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(t, y.start), (t, y.end)],
                2,
                4,
                style,
            )))?
            .label("measured window begins")
            .legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + LEGEND_LINE, y)], 2, 4, style)
            });
    }
    if let Some(t) = r.fault_at {
        let style = FAULT.stroke_width(SOLID_WIDTH);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(t, y.start), (t, y.end)],
                6,
                4,
                style,
            )))?
            .label("canary origin misbehaves")
            .legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + LEGEND_LINE, y)], 6, 4, style)
            });
    }
    Ok(())
}

/// The canary's weight over time, as steps, with the decisions marked.
fn weight_panel(panel: &Panel<'_>, time: &Axis, r: &Rollout) -> DrawResult<()> {
    let y = Axis {
        ticks: vec![
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
        ],
        range: 0.0..WEIGHT_TOP,
        scale: Scale::Linear,
    };
    let mut chart = chart(panel, time, &y, "canary weight (%)")?;
    moments(&mut chart, r, &y.range)?;
    // A weight holds until the next poll read another: a step line.
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(r.weight.len() * 2);
    for &(t, w) in r
        .weight
        .iter()
        .filter(|(t, w)| t.is_finite() && w.is_finite())
    {
        if let Some(&(_, before)) = steps.last() {
            steps.push((t, before));
        }
        steps.push((t, w));
    }
    let style = CANARY.stroke_width(SOLID_WIDTH);
    chart
        .draw_series(LineSeries::new(steps, style))?
        .label("canary weight")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + LEGEND_LINE, y)], style));
    for (kind, label) in [
        (MarkKind::Step, "step"),
        (MarkKind::Hold, "hold"),
        (MarkKind::Rollback, "rollback"),
    ] {
        let points: Vec<(f64, f64)> = r
            .marks
            .iter()
            .filter(|m| m.kind == kind && m.t.is_finite() && m.weight.is_finite())
            .map(|m| (m.t, m.weight.clamp(0.0, 100.0)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(points.into_iter().map(|p| mark(p, kind)))?
            .label(label)
            .legend(move |(x, y)| mark_element((x + LEGEND_LINE / 2, y), kind));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// One decision's mark at a point of the chart.
fn mark<DB: DrawingBackend>(at: (f64, f64), kind: MarkKind) -> DynElement<'static, DB, (f64, f64)> {
    match kind {
        MarkKind::Step => TriangleMarker::new(at, MARK, STEP.filled()).into_dyn(),
        MarkKind::Hold => Circle::new(at, MARK / 2, HOLD.filled()).into_dyn(),
        MarkKind::Rollback => Cross::new(at, MARK, ROLLBACK.stroke_width(SOLID_WIDTH)).into_dyn(),
    }
}

/// The same mark at a pixel of the legend.
fn mark_element<DB: DrawingBackend>(
    at: (i32, i32),
    kind: MarkKind,
) -> DynElement<'static, DB, (i32, i32)> {
    match kind {
        MarkKind::Step => TriangleMarker::new(at, MARK, STEP.filled()).into_dyn(),
        MarkKind::Hold => Circle::new(at, MARK / 2, HOLD.filled()).into_dyn(),
        MarkKind::Rollback => Cross::new(at, MARK, ROLLBACK.stroke_width(SOLID_WIDTH)).into_dyn(),
    }
}

/// The canary's and the stable cluster's figure `of` at each decision.
fn figure_panel(
    panel: &Panel<'_>,
    time: &Axis,
    y: &Axis,
    y_desc: &str,
    r: &Rollout,
    of: impl Fn(&Side) -> Option<f64>,
) -> DrawResult<()> {
    let mut chart = chart(panel, time, y, y_desc)?;
    moments(&mut chart, r, &y.range)?;
    let low = y.range.start;
    for (label, colour, side) in [
        ("canary", CANARY, (|m: &Mark| m.canary) as fn(&Mark) -> Side),
        ("stable", STABLE, |m: &Mark| m.stable),
    ] {
        let points: Vec<(f64, f64)> = r
            .marks
            .iter()
            .filter(|m| m.t.is_finite())
            .filter_map(|m| {
                let v = of(&side(m)).filter(|v| v.is_finite())?;
                Some((m.t, v.max(low)))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let style = colour.stroke_width(SOLID_WIDTH);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(label)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (LEGEND_LINE, 0)], style)
                    + Circle::new((LEGEND_LINE / 2, 0), MARKER_RADIUS, style.filled())
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, MARKER_RADIUS, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_svg;
    use super::*;

    fn side(error_pct: f64, p99_ms: f64) -> Side {
        Side {
            error_pct: Some(error_pct),
            p99_ms: Some(p99_ms),
        }
    }

    #[test]
    fn the_climb_and_the_rollback_are_drawn_with_their_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout.svg");
        let weight = [
            (0.0, 5.0),
            (2.0, 10.0),
            (4.0, 25.0),
            (6.0, 50.0),
            (8.2, 0.0),
            (10.0, 0.0),
        ];
        let mark = |t: f64, kind: MarkKind, weight: f64, canary: Side| Mark {
            t,
            kind,
            weight,
            canary,
            stable: side(0.0, 1.2),
        };
        let r = Rollout {
            weight: weight.to_vec(),
            marks: vec![
                mark(2.0, MarkKind::Step, 10.0, side(0.0, 1.3)),
                mark(4.0, MarkKind::Step, 25.0, side(0.0, 1.4)),
                mark(6.0, MarkKind::Hold, 25.0, side(0.0, 1.2)),
                mark(8.2, MarkKind::Rollback, 0.0, side(5.1, 1.5)),
            ],
            fault_at: Some(7.0),
            window_at: Some(1.0),
            end: 10.0,
        };
        rollout(&path, "rollout-demo: r1", &r).unwrap();
        let texts = read_svg(&path);
        for wanted in [
            "rollout-demo: r1",
            "canary weight (%)",
            "error rate per interval (%)",
            "p99 per interval (ms, log scale)",
            "canary weight",
            "step",
            "hold",
            "rollback",
            "canary",
            "stable",
            "canary origin misbehaves",
            "measured window begins",
        ] {
            assert!(
                texts.iter().any(|t| t == wanted),
                "no {wanted:?} in {texts:?}"
            );
        }
        let svg = std::fs::read_to_string(&path).unwrap();
        for RGBColor(r, g, b) in [CANARY, STABLE, STEP, HOLD, ROLLBACK, FAULT] {
            let hex = format!("#{r:02X}{g:02X}{b:02X}");
            assert!(svg.contains(&hex), "{hex} is drawn");
        }
    }

    #[test]
    fn a_run_without_decisions_still_draws_its_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.svg");
        rollout(&path, "nothing", &Rollout::default()).unwrap();
        let texts = read_svg(&path);
        assert!(texts.iter().any(|t| t == "canary weight (%)"), "{texts:?}");
        assert!(!texts.iter().any(|t| t == "rollback"), "{texts:?}");
        // Figures that are not numbers are left out, not drawn.
        let r = Rollout {
            weight: vec![(f64::NAN, 5.0), (1.0, 5.0)],
            marks: vec![Mark {
                t: 1.0,
                kind: MarkKind::Hold,
                weight: 5.0,
                canary: side(f64::INFINITY, f64::NAN),
                stable: Side::default(),
            }],
            fault_at: None,
            window_at: None,
            end: 2.0,
        };
        rollout(&path, "odd", &r).unwrap();
        read_svg(&path);
    }
}
