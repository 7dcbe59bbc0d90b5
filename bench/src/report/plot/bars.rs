//! Paired horizontal bars, one pair per group.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{anchored, font, svg, Rows, AXIS, GRID};

/// Two horizontal bars per group.
pub struct BarPair {
    pub label: String,
    pub a: f64,
    pub b: f64,
    /// Shown right of the group.
    pub note: String,
}

/// Horizontal bars, two per group (`names` says which is which, e.g. bare axum and
/// raft-elector), with each bar's value in `unit` and a note per group.
pub fn bar_pairs(
    title: &str,
    groups: &[BarPair],
    names: (&str, &str),
    unit: &str,
) -> Result<String, String> {
    let axis = Rows {
        n: groups.len(),
        h: 40,
    };
    // Room on top for the legend.
    let headroom = 56;
    let size = (900, 60 + axis.range(headroom).end as u32 + 50);
    let colors = (RGBColor(0x99, 0x99, 0x99), RGBColor(0x1f, 0x77, 0xb4));
    let max = groups.iter().map(|g| g.a.max(g.b)).fold(1.0_f64, f64::max);
    // Room right of the longest bar for its value.
    let x_max = max * 1.2;
    svg(size, title, |root, body| {
        let mut chart = ChartBuilder::on(body)
            .margin_top(8)
            .margin_right(100)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d(
                0.0..x_max,
                axis.range(headroom).with_key_points(axis.centres()),
            )?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| {
                axis.at(*v)
                    .map_or(String::new(), |i| groups[i].label.clone())
            })
            .x_label_style(font(11.0))
            .y_label_style(font(12.0))
            .x_desc(unit)
            .axis_desc_style(font(12.0))
            .draw()?;
        let (bar_h, gap) = (14, 1);
        let value = |v: f64, y: i32| {
            EmptyElement::at((v, y))
                + Text::new(
                    format!("{v:.0} {unit}"),
                    (4, 0),
                    anchored(font(10.0), HPos::Left, VPos::Center),
                )
        };
        for (k, (name, color)) in [(names.0, colors.0), (names.1, colors.1)]
            .into_iter()
            .enumerate()
        {
            // The first bar of a group above its centre, the second below.
            let top = |c: i32| if k == 0 { c + gap + bar_h } else { c - gap };
            chart
                .draw_series(groups.iter().enumerate().map(|(i, g)| {
                    let c = axis.centre(i);
                    let v = if k == 0 { g.a } else { g.b };
                    Rectangle::new([(0.0, top(c)), (v, top(c) - bar_h)], color.filled())
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            chart.draw_series(groups.iter().enumerate().map(|(i, g)| {
                let c = axis.centre(i);
                let v = if k == 0 { g.a } else { g.b };
                value(v, top(c) - bar_h / 2)
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(4)
            .label_font(font(12.0))
            .background_style(WHITE)
            .border_style(TRANSPARENT)
            .draw()?;
        for (i, g) in groups.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(x_max, axis.centre(i)));
            root.draw(&Text::new(
                g.note.clone(),
                (x + 12, y),
                anchored(font(11.0), HPos::Left, VPos::Center),
            ))?;
        }
        Ok(())
    })
}
