//! The SVG plot: delivered rate against offered rate, every probe of every search, one panel
//! per message size and one row of panels per LAN (log–log; filled dots are gap-free probes,
//! crosses failed ones; the grey diagonal is "everything delivered").

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::{lan_label, Bench, Results, System};

fn color(sys: System) -> RGBColor {
    match sys {
        System::Udp => RGBColor(90, 90, 90),
        System::UdpGso => RGBColor(160, 160, 160),
        System::OpenPgm => RGBColor(214, 39, 40),
        System::Zmq => RGBColor(148, 103, 189),
        System::OursRaw => RGBColor(31, 119, 180),
        System::OursEpgm => RGBColor(44, 160, 44),
        System::OursRawV6 => RGBColor(23, 190, 207),
        System::OursEpgmV6 => RGBColor(188, 189, 34),
        System::PubSub => RGBColor(255, 127, 14),
    }
}

fn err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("plotting: {e}"))
}

/// Draws the plot of every LAN of `bench` into `path`.
pub fn draw(bench: &Bench, path: &Path) -> io::Result<()> {
    let rows = u32::try_from(bench.lans.len().max(1)).unwrap_or(1);
    let root = SVGBackend::new(path, (1200, 540 * rows)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, res) in root
        .split_evenly((bench.lans.len().max(1), 1))
        .into_iter()
        .zip(&bench.lans)
    {
        draw_lan(res, &area, bench.lans.len() > 1)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// One LAN's row: a panel per message size (captions name the LAN when `named`).
fn draw_lan(
    res: &Results,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    named: bool,
) -> io::Result<()> {
    let (left, right) = area.split_horizontally(600);
    let lan = if named {
        format!("{} LAN, ", lan_label(res.lan))
    } else {
        String::new()
    };
    for (area, size) in [(left, 64usize), (right, 1400)] {
        let searches: Vec<_> = res.searches.iter().filter(|s| s.size == size).collect();
        let mut pts: Vec<f64> = searches
            .iter()
            .flat_map(|s| s.outcome.probes.iter())
            .flat_map(|p| [p.offered, p.delivered])
            .filter(|v| *v > 0.0)
            .collect();
        pts.extend(
            res.blasts
                .iter()
                .filter(|(sz, _)| *sz == size)
                .flat_map(|(_, p)| [p.offered, p.delivered]),
        );
        let lo = pts.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pts.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo / 1.5, hi * 1.5)
        } else {
            (1e3, 1e7)
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("{lan}{size} B messages: delivered vs offered (msg/s)"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("offered msg/s (sender)")
            .y_desc("delivered msg/s (worse receiver)")
            .x_label_formatter(&|v| format!("{:.0}k", v / 1e3))
            .y_label_formatter(&|v| format!("{:.0}k", v / 1e3))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, hi)],
                RGBColor(200, 200, 200),
            ))
            .map_err(err)?;
        for s in &searches {
            let c = color(s.system);
            let mut probes: Vec<_> = s
                .outcome
                .probes
                .iter()
                .filter(|p| p.offered > 0.0 && p.delivered > 0.0)
                .collect();
            probes.sort_by(|a, b| a.offered.total_cmp(&b.offered));
            chart
                .draw_series(LineSeries::new(
                    probes.iter().map(|p| (p.offered, p.delivered)),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(s.system.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(probes.iter().map(|p| {
                    if p.ok {
                        Circle::new((p.offered, p.delivered), 4, c.filled()).into_dyn()
                    } else {
                        Cross::new((p.offered, p.delivered), 5, c.stroke_width(2)).into_dyn()
                    }
                }))
                .map_err(err)?;
        }
        for (_, p) in res.blasts.iter().filter(|(sz, _)| *sz == size) {
            if p.offered > 0.0 && p.delivered > 0.0 {
                let c = color(System::Udp);
                chart
                    .draw_series([TriangleMarker::new((p.offered, p.delivered), 7, c.filled())])
                    .map_err(err)?
                    .label("plain UDP blast (unpaced)")
                    .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 5, c.filled()));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
