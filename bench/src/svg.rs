//! Small hand-written SVG charts: no plotting library, no fonts to load.

use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(w: f64, h: f64, title: &str) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    s
}

fn fmt_ms(ms: f64) -> String {
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

/// One row of a strip chart.
pub struct Row {
    pub label: String,
    pub samples: Vec<f64>,
    pub color: &'static str,
}

/// A shaded band or (from == to) a dashed line across all rows.
pub struct Mark {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub color: &'static str,
}

/// Every sample as a dot on a logarithmic time axis, one row per series, with the median
/// as a bar and a summary on the right.
pub fn strip_chart(title: &str, rows: &[Row], marks: &[Mark], lo: f64, hi: f64) -> String {
    let (left, right, top, row_h) = (250.0, 250.0, 60.0, 34.0);
    let plot_w = 560.0;
    let w = left + plot_w + right;
    let h = top + row_h * rows.len() as f64 + 60.0;
    let x = |ms: f64| {
        left + plot_w * (ms.max(lo).min(hi).log10() - lo.log10()) / (hi.log10() - lo.log10())
    };
    let mut s = header(w, h, title);
    let bottom = top + row_h * rows.len() as f64;
    // Marks first, behind the dots.
    for (k, m) in marks.iter().enumerate() {
        let (x0, x1) = (x(m.from), x(m.to));
        if (x1 - x0).abs() < 1.0 {
            let _ = writeln!(
                s,
                r#"<line x1="{x0:.1}" y1="{}" x2="{x0:.1}" y2="{bottom}" stroke="{}" stroke-dasharray="5,3"/>"#,
                top - 8.0,
                m.color
            );
        } else {
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.1}" y="{}" width="{:.1}" height="{}" fill="{}" fill-opacity="0.15"/>"#,
                top - 8.0,
                x1 - x0,
                bottom - top + 8.0,
                m.color
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" fill="{}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            top - 12.0 - 11.0 * (k % 2) as f64,
            m.color,
            esc(&m.label)
        );
    }
    // Axis.
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
        left + plot_w
    );
    let mut tick = 1.0;
    while tick <= hi {
        for mult in [1.0, 3.0] {
            let v = tick * mult;
            if v >= lo && v <= hi {
                let xv = x(v);
                let _ = writeln!(
                    s,
                    r##"<line x1="{xv:.1}" y1="{top}" x2="{xv:.1}" y2="{}" stroke="#ddd"/><text x="{xv:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"##,
                    bottom + 4.0,
                    bottom + 18.0,
                    fmt_ms(v)
                );
            }
        }
        tick *= 10.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">time until every surviving peer names the new leader (log scale; one dot per trial, bar = median)</text>"#,
        left + plot_w / 2.0,
        bottom + 40.0
    );
    for (r, row) in rows.iter().enumerate() {
        let cy = top + row_h * r as f64 + row_h / 2.0;
        if r % 2 == 1 {
            let _ = writeln!(
                s,
                r##"<rect x="0" y="{}" width="{w}" height="{row_h}" fill="#f4f4f4" fill-opacity="0.6"/>"##,
                cy - row_h / 2.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 10.0,
            cy + 4.0,
            esc(&row.label)
        );
        for (k, &v) in row.samples.iter().enumerate() {
            let jitter = ((k * 7919) % 13) as f64 - 6.0;
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.55"/>"#,
                x(v),
                cy + jitter,
                row.color
            );
        }
        let mut sorted = row.samples.clone();
        sorted.sort_by(f64::total_cmp);
        if !sorted.is_empty() {
            let med = crate::stats::median(&sorted);
            let p99 = crate::stats::percentile(&sorted, 0.99);
            let xm = x(med);
            let _ = writeln!(
                s,
                r#"<line x1="{xm:.1}" y1="{:.1}" x2="{xm:.1}" y2="{:.1}" stroke="black" stroke-width="2.5"/>"#,
                cy - 11.0,
                cy + 11.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{:.1}" font-size="11">median {} · p99 {} · n={}</text>"#,
                left + plot_w + 12.0,
                cy + 4.0,
                fmt_ms(med),
                fmt_ms(p99),
                sorted.len()
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars, two per group (e.g. bare axum and raft-elector), with a note per group.
pub fn bar_pairs(
    title: &str,
    groups: &[(String, f64, f64, String)],
    names: (&str, &str),
    unit: &str,
) -> String {
    let (left, right, top, group_h) = (230.0, 140.0, 60.0, 40.0);
    let plot_w = 520.0;
    let w = left + plot_w + right;
    let h = top + group_h * groups.len() as f64 + 50.0;
    let max = groups.iter().map(|g| g.1.max(g.2)).fold(1.0_f64, f64::max);
    let mut s = header(w, h, title);
    let colors = ("#999999", "#1f77b4");
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="32" width="12" height="10" fill="{}"/><text x="{}" y="41">{}</text><rect x="{}" y="32" width="12" height="10" fill="{}"/><text x="{}" y="41">{}</text>"#,
        colors.0,
        left + 16.0,
        esc(names.0),
        left + 200.0,
        colors.1,
        left + 216.0,
        esc(names.1)
    );
    for (g, (label, a, b, note)) in groups.iter().enumerate() {
        let y = top + group_h * g as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 10.0,
            y + 19.0,
            esc(label)
        );
        for (k, (v, c)) in [(*a, colors.0), (*b, colors.1)].into_iter().enumerate() {
            let bw = plot_w * v / max;
            let by = y + 4.0 + 15.0 * k as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{by:.1}" width="{bw:.1}" height="13" fill="{c}"/><text x="{:.1}" y="{:.1}" font-size="10">{:.0} {}</text>"#,
                left + bw + 4.0,
                by + 10.5,
                v,
                esc(unit)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="11">{}</text>"#,
            left + plot_w + 70.0,
            y + 19.0,
            esc(note)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One line of a line chart: its name, its points and its colour.
pub type Series = (String, Vec<(f64, f64)>, &'static str);

/// Lines of y over x, one per series.
pub fn lines(title: &str, series: &[Series], x_label: &str, y_label: &str) -> String {
    let (left, right, top, bottom_m) = (80.0, 150.0, 50.0, 60.0);
    let (plot_w, plot_h) = (560.0, 260.0);
    let w = left + plot_w + right;
    let h = top + plot_h + bottom_m;
    let all = series.iter().flat_map(|s| s.1.iter());
    let xmax = all.clone().map(|p| p.0).fold(1.0_f64, f64::max);
    let ymax = all.map(|p| p.1).fold(1.0_f64, f64::max) * 1.15;
    let x = |v: f64| left + plot_w * v / xmax;
    let y = |v: f64| top + plot_h - plot_h * v / ymax;
    let mut s = header(w, h, title);
    let bottom = top + plot_h;
    for k in 0..=5 {
        let yv = ymax * k as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{:.0}</text>"##,
            y(yv),
            left + plot_w,
            y(yv),
            left - 6.0,
            y(yv) + 4.0,
            yv
        );
        let xv = xmax * k as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11">{:.0}</text>"#,
            x(xv),
            bottom + 16.0,
            xv
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>"##,
        left + plot_w
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        left + plot_w / 2.0,
        bottom + 40.0,
        esc(x_label),
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        esc(y_label)
    );
    for (k, (name, pts, color)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(a, b) in pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                x(a),
                y(b)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{color}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            left + plot_w + 14.0,
            top + 10.0 + 18.0 * k as f64,
            left + plot_w + 30.0,
            top + 15.0 + 18.0 * k as f64,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
