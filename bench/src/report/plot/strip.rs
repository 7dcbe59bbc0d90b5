//! A strip chart: every sample as a dot on a log time axis, one row per series.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{anchored, fmt_ms, font, svg, Rows, AXIS, GRID, STRIPE};
use crate::stats;

/// One row of a strip chart.
pub struct Row {
    pub label: String,
    pub samples: Vec<f64>,
    pub color: RGBColor,
}

/// A shaded band or (from == to) a dashed line across all rows.
pub struct Mark {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
}

/// Every sample as a dot on a logarithmic time axis (`lo`..`hi` ms), one row per series,
/// with the median as a bar and a summary on the right.
pub fn strip_chart(
    title: &str,
    rows: &[Row],
    marks: &[Mark],
    lo: f64,
    hi: f64,
) -> Result<String, String> {
    let axis = Rows {
        n: rows.len(),
        h: 34,
    };
    let size = (1060, 60 + axis.range(0).end as u32 + 60);
    svg(size, title, |root, body| {
        let ticks: Vec<f64> = std::iter::successors(Some(1.0_f64), |t| Some(t * 10.0))
            .take_while(|&t| t <= hi)
            .flat_map(|t| [t, 3.0 * t])
            .filter(|&v| v >= lo && v <= hi)
            .collect();
        let mut chart = ChartBuilder::on(body)
            .margin_top(30)
            .margin_right(250)
            .x_label_area_size(50)
            .y_label_area_size(250)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(ticks),
                axis.range(0).with_key_points(axis.centres()),
            )?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .axis_style(AXIS)
            .x_label_formatter(&|v| fmt_ms(*v))
            .y_label_formatter(&|v| axis.at(*v).map_or(String::new(), |i| rows[i].label.clone()))
            .x_label_style(font(11.0))
            .y_label_style(font(12.0))
            .x_desc("time until every surviving peer names the new leader (log scale; one dot per trial, bar = median)")
            .axis_desc_style(font(12.0))
            .draw()?;
        let clamp = |v: f64| v.clamp(lo, hi);
        // Stripes and marks first, behind the dots.
        chart.draw_series((0..axis.n).filter(|i| i % 2 == 1).map(|i| {
            let c = axis.centre(i);
            Rectangle::new(
                [(lo, c - axis.h / 2), (hi, c + axis.h / 2)],
                STRIPE.mix(0.6).filled(),
            )
        }))?;
        for (k, m) in marks.iter().enumerate() {
            let (from, to) = (clamp(m.from), clamp(m.to));
            if from == to {
                chart.draw_series(DashedLineSeries::new(
                    [(from, 0), (from, axis.range(0).end)],
                    5,
                    3,
                    m.color.stroke_width(1),
                ))?;
            } else {
                chart.draw_series([Rectangle::new(
                    [(from, 0), (to, axis.range(0).end)],
                    m.color.mix(0.15).filled(),
                )])?;
            }
            // The label above the plot, every other one higher so that neighbours do not
            // overlap.
            let (x, y) = chart.backend_coord(&((from * to).sqrt(), axis.range(0).end));
            let style = anchored(font(10.0), HPos::Center, VPos::Bottom).color(&m.color);
            root.draw(&Text::new(
                m.label.clone(),
                (x, y - 4 - 11 * (k % 2) as i32),
                style,
            ))?;
        }
        for (r, row) in rows.iter().enumerate() {
            let c = axis.centre(r);
            // Spread the dots of a row over ±6 px, the same way on every run.
            let jitter = |k: usize| ((k * 7919) % 13) as i32 - 6;
            chart.draw_series(row.samples.iter().enumerate().map(|(k, &v)| {
                Circle::new((clamp(v), c + jitter(k)), 3, row.color.mix(0.55).filled())
            }))?;
            let mut sorted = row.samples.clone();
            sorted.sort_by(f64::total_cmp);
            if sorted.is_empty() {
                continue;
            }
            let med = stats::median(&sorted);
            let p99 = stats::percentile(&sorted, 0.99);
            let half = 11;
            chart.draw_series([PathElement::new(
                [(clamp(med), c - half), (clamp(med), c + half)],
                BLACK.stroke_width(3),
            )])?;
            let (x, y) = chart.backend_coord(&(hi, c));
            let summary = format!(
                "median {} · p99 {} · n={}",
                fmt_ms(med),
                fmt_ms(p99),
                sorted.len()
            );
            root.draw(&Text::new(
                summary,
                (x + 12, y),
                anchored(font(11.0), HPos::Left, VPos::Center),
            ))?;
        }
        Ok(())
    })
}
