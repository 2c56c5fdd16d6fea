//! The SVG plot of the soak: VmRSS against time, the publisher's incarnations on the left (a
//! saw-tooth: each one fills its transmit window, then is killed), the subscribers on the right
//! (the whole-run ones as lines, each churn incarnation as a short segment).

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::{Outcome, Role};

fn color(role: Role) -> RGBColor {
    match role {
        Role::Publisher => RGBColor(31, 119, 180),
        Role::LossySub => RGBColor(214, 39, 40),
        Role::SteadySub => RGBColor(44, 160, 44),
        Role::ChurnSub => RGBColor(255, 127, 14),
    }
}

fn err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("plotting: {e}"))
}

/// Draws the RSS plot of `out` into `path`.
pub fn draw(out: &Outcome, path: &Path) -> io::Result<()> {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    let end_min = out
        .procs
        .iter()
        .flat_map(|p| p.samples.iter().map(|s| s.0 / 60.0))
        .fold(1.0 / 60.0, f64::max);
    for (area, roles, title) in [
        (
            left,
            &[Role::Publisher][..],
            "publisher (one line per incarnation)",
        ),
        (
            right,
            &[Role::LossySub, Role::SteadySub, Role::ChurnSub][..],
            "subscribers",
        ),
    ] {
        let mibs: Vec<f64> = out
            .procs
            .iter()
            .filter(|p| roles.contains(&p.role))
            .flat_map(|p| p.samples.iter().map(|s| s.1 as f64 / 1024.0))
            .collect();
        let lo = mibs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = mibs.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = (hi - lo) * 0.1;
            ((lo - pad).max(0.0), hi + pad)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("VmRSS, MiB: {title}"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..end_min, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc("MiB")
            .draw()
            .map_err(err)?;
        for &role in roles {
            let c = color(role);
            let mut labelled = false;
            for p in out.procs.iter().filter(|p| p.role == role) {
                let series = chart
                    .draw_series(LineSeries::new(
                        p.samples.iter().map(|s| (s.0 / 60.0, s.1 as f64 / 1024.0)),
                        c.stroke_width(2),
                    ))
                    .map_err(err)?;
                if !labelled {
                    labelled = true;
                    series
                        .label(format!("{} (h{})", role.label(), role.host() + 1))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                        });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
