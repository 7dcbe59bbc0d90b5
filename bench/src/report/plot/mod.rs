//! The three kinds of chart of the report, drawn with plotters' SVG backend: a strip chart of
//! samples on a log time axis (strip.rs), paired horizontal bars (bars.rs) and lines
//! (lines.rs); here what they share. Text goes into the SVG as `<text>` for the viewer to
//! render, so no font is loaded here.

mod bars;
mod lines;
mod strip;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use bars::{bar_pairs, BarPair};
pub use lines::{lines, Series};
pub use strip::{strip_chart, Mark, Row};

/// Text `px` pixels high. plotters writes a font size of `size / 1.24` into the SVG.
pub(super) fn font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().into()
}

pub(super) fn caption(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24)
        .into_font()
        .style(FontStyle::Bold)
        .into()
}

pub(super) fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

pub(super) const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
pub(super) const AXIS: RGBColor = RGBColor(0x33, 0x33, 0x33);
pub(super) const STRIPE: RGBColor = RGBColor(0xf4, 0xf4, 0xf4);

/// What a drawing step returns: plotters' errors, boxed.
pub(super) type Drawn = Result<(), Box<dyn std::error::Error>>;

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws on an SVG canvas of `size` with `title` centred on top, and returns the SVG text.
/// `draw` gets the whole canvas (for text placed by pixel) and the area under the title.
pub(super) fn svg(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&Area, &Area) -> Drawn,
) -> Result<String, String> {
    let mut out = String::new();
    let drawn: Drawn = (|| {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.margin(10, 0, 0, 0).titled(title, caption(15.0))?;
        draw(&root, &body)?;
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| format!("chart {title:?}: {e}"))?;
    Ok(out)
}

/// A time in milliseconds as an axis or summary shows it.
pub(super) fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The vertical axis of rows: `n` rows of `h` units each (one unit a pixel, roughly), drawn
/// top to bottom. Integer units, so that plotters labels the rows' centres by itself.
#[derive(Clone, Copy)]
pub(super) struct Rows {
    pub(super) n: usize,
    pub(super) h: i32,
}

impl Rows {
    /// The centre of row `i`.
    pub(super) fn centre(self, i: usize) -> i32 {
        (self.n - i) as i32 * self.h - self.h / 2
    }

    /// The row centred on `y`, if any.
    pub(super) fn at(self, y: i32) -> Option<usize> {
        let top = y + self.h / 2;
        (top % self.h == 0 && top > 0 && top / self.h <= self.n as i32)
            .then(|| self.n - (top / self.h) as usize)
    }

    /// The full height, with `headroom` more units above the first row.
    pub(super) fn range(self, headroom: i32) -> std::ops::Range<i32> {
        0..self.n as i32 * self.h + headroom
    }

    pub(super) fn centres(self) -> Vec<i32> {
        (0..self.n).map(|i| self.centre(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rows;

    #[test]
    fn rows_run_top_to_bottom_and_each_centre_names_its_row() {
        let rows = Rows { n: 3, h: 34 };
        assert_eq!(rows.centres(), [85, 51, 17]);
        for i in 0..3 {
            assert_eq!(rows.at(rows.centre(i)), Some(i));
        }
        assert_eq!(rows.at(0), None, "a row's edge is no row");
        assert_eq!(rows.at(119), None, "above the first row");
        assert_eq!(rows.range(56), 0..158);
    }
}
