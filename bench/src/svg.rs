//! Hand-written SVG charts: grouped horizontal bars with min–max whiskers,
//! and line charts.

use std::fmt::Write;

use crate::results::{Series, Table};

const PALETTE: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An axis label: no trailing zeros.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// One horizontal bar per row of each table; a group per table.
pub fn bar_chart(title: &str, unit: &str, tables: &[&Table]) -> String {
    // Room for the longest variant name (about 6.6 px per character at 12 px).
    let longest = tables
        .iter()
        .flat_map(|t| t.rows.iter())
        .map(|r| r.variant.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 6.6 + 20.0).max(330.0);
    let plot_w = 520.0;
    let bar_h = 16.0;
    let gap = 4.0;
    let group_gap = 34.0;
    let top = 50.0;
    let max = tables
        .iter()
        .flat_map(|t| t.rows.iter())
        .map(|r| r.max)
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max);
    let max = nice_max(max);
    let rows: usize = tables.iter().map(|t| t.rows.len()).sum();
    let height = top + rows as f64 * (bar_h + gap) + tables.len() as f64 * group_gap + 40.0;
    let width = label_w + plot_w + 90.0;
    let x = |v: f64| label_w + v / max * plot_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // grid
    for i in 0..=5 {
        let v = max * i as f64 / 5.0;
        let gx = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#ddd"/><text x="{gx}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            top - 6.0,
            height - 30.0,
            height - 14.0,
            tick(v)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
        width - 10.0,
        height - 2.0,
        esc(unit)
    );
    let mut y = top;
    for t in tables {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text>"#,
            y + 8.0,
            esc(&t.title)
        );
        y += 16.0;
        for (i, r) in t.rows.iter().enumerate() {
            let color = if r.variant.starts_with("procession") {
                PALETTE[0]
            } else {
                PALETTE[1 + i % (PALETTE.len() - 1)]
            };
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                label_w - 6.0,
                y + bar_h - 4.0,
                esc(&r.variant)
            );
            if r.median.is_finite() {
                let _ = writeln!(
                    s,
                    r#"<rect x="{label_w}" y="{y}" width="{}" height="{bar_h}" fill="{color}" opacity="0.85"/>"#,
                    (x(r.median) - label_w).max(0.5)
                );
                let (a, b) = (x(r.min), x(r.max));
                let my = y + bar_h / 2.0;
                let _ = writeln!(
                    s,
                    r#"<line x1="{a}" y1="{my}" x2="{b}" y2="{my}" stroke="black"/><line x1="{a}" y1="{}" x2="{a}" y2="{}" stroke="black"/><line x1="{b}" y1="{}" x2="{b}" y2="{}" stroke="black"/>"#,
                    my - 4.0,
                    my + 4.0,
                    my - 4.0,
                    my + 4.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}">{}</text>"#,
                    b + 5.0,
                    y + bar_h - 4.0,
                    crate::results::fmt_num(r.median)
                );
            } else {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" fill="#888">n/a</text>"##,
                    label_w + 4.0,
                    y + bar_h - 4.0
                );
            }
            y += bar_h + gap;
        }
        y += group_gap - 16.0;
    }
    s.push_str("</svg>\n");
    s
}

/// A line chart; `log_x` puts x on a log2 scale.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> String {
    let (w, h) = (760.0, 420.0);
    let (l, r, t, b) = (70.0, 200.0, 40.0, 50.0);
    let pw = w - l - r;
    let ph = h - t - b;
    let fx = |v: f64| if log_x { v.max(1e-9).log2() } else { v };
    let fy = |v: f64| if log_y { v.max(1e-9).log10() } else { v };
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut y0 = f64::INFINITY;
    for &(x, y) in pts {
        x0 = x0.min(fx(x));
        x1 = x1.max(fx(x));
        y0 = y0.min(fy(y));
        y1 = y1.max(fy(y));
    }
    if !x0.is_finite() {
        return String::new();
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if log_y {
        y0 = y0.floor();
        y1 = y1.ceil().max(y0 + 1.0);
    } else {
        y0 = 0.0;
        y1 = nice_max(y1 * 1.05);
    }
    let px = |x: f64| l + (fx(x) - x0) / (x1 - x0) * pw;
    let py = |y: f64| t + ph - (fy(y) - y0) / (y1 - y0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // y grid
    let yticks: Vec<f64> = if log_y {
        (y0 as i32..=y1 as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| y1 * i as f64 / 5.0).collect()
    };
    for v in yticks {
        let yy = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
            l + pw,
            l - 6.0,
            yy + 4.0,
            tick(v)
        );
    }
    // x ticks: the distinct x values for log scales, 6 even ticks otherwise
    let xticks: Vec<f64> = if log_x {
        let mut v: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.dedup();
        v
    } else {
        (0..=5).map(|i| x0 + (x1 - x0) * i as f64 / 5.0).collect()
    };
    for v in xticks {
        let xx = px(v);
        let _ = writeln!(
            s,
            r##"<line x1="{xx}" y1="{t}" x2="{xx}" y2="{}" stroke="#eee"/><text x="{xx}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            t + ph,
            t + ph + 16.0,
            tick(v)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        l + pw / 2.0,
        h - 10.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        t + ph / 2.0,
        t + ph / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let color = if se.name.starts_with("procession") {
            PALETTE[0]
        } else {
            PALETTE[1 + i % (PALETTE.len() - 1)]
        };
        let path: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let width = if se.name.starts_with("procession") {
            2.5
        } else {
            1.5
        };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"/>"#,
            path.join(" ")
        );
        if se.points.len() <= 12 {
            for &(x, y) in &se.points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    px(x),
                    py(y)
                );
            }
        }
        let ly = t + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            l + pw + 12.0,
            l + pw + 32.0,
            l + pw + 38.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}
