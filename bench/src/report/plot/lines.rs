//! Lines of y over x, one per series.

use plotters::prelude::*;

use super::{font, svg, AXIS, GRID};

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// Lines of y over x from 0, one per series, each point marked.
pub fn lines(
    title: &str,
    series: &[Series],
    x_label: &str,
    y_label: &str,
) -> Result<String, String> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(1.0_f64, f64::max);
    let y_max = all.map(|p| p.1).fold(1.0_f64, f64::max) * 1.15;
    svg((790, 370), title, |_, body| {
        let mut chart = ChartBuilder::on(body)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_style(font(11.0))
            .y_label_style(font(11.0))
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style(font(12.0))
            .draw()?;
        for s in series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 1), (x + 14, y + 2)], color.filled())
                });
            chart.draw_series(
                s.points
                    .iter()
                    .map(|&p| Circle::new(p, 2.5, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(11.0))
            .background_style(WHITE.mix(0.8))
            .border_style(GRID)
            .draw()?;
        Ok(())
    })
}
