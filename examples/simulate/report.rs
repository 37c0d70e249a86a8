//! The report: tables (printed, in `summary.json` and in `index.html`) and the SVG
//! charts drawn with plotters.

use crate::sim::Sample;
use plotters::prelude::*;
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

/// A table: a title, column names, rows of cells already formatted.
pub struct Table {
    pub title: String,
    pub note: String,
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, head: &[&'static str]) -> Table {
        Table {
            title: title.to_string(),
            note: String::new(),
            head: head.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        let mut widths: Vec<usize> = self.head.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(c));
                }
            }
        }
        let mut s = format!("\n{}\n", self.title);
        if !self.note.is_empty() {
            let _ = writeln!(s, "  {}", self.note);
        }
        let line = |cells: &[String]| {
            let mut l = String::from(" ");
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(width(c));
                if i == 0 {
                    let _ = write!(l, " {c}{}", " ".repeat(pad));
                } else {
                    let _ = write!(l, "  {}{c}", " ".repeat(pad));
                }
            }
            l.push('\n');
            l
        };
        s += &line(&self.head.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        for r in &self.rows {
            s += &line(r);
        }
        if self.rows.is_empty() {
            s += "  (none)\n";
        }
        s
    }

    pub fn html(&self) -> String {
        let mut s = format!("<h2>{}</h2>\n", esc(&self.title));
        if !self.note.is_empty() {
            let _ = writeln!(s, "<p class=note>{}</p>", esc(&self.note));
        }
        s += "<table><tr>";
        for h in &self.head {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s += "</tr>\n";
        for r in &self.rows {
            s += "<tr>";
            for c in r {
                // Numbers line up on the right, words on the left.
                let number = c.trim_end_matches(" %").trim().parse::<f64>().is_ok() || c == "–";
                let class = if number { "" } else { " class=t" };
                let _ = write!(s, "<td{class}>{}</td>", esc(c));
            }
            s += "</tr>\n";
        }
        if self.rows.is_empty() {
            let _ = write!(s, "<tr><td colspan={}>(none)</td></tr>", self.head.len());
        }
        s + "</table>\n"
    }
}

/// Display width: CJK characters take two columns in a terminal.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// The map: every cell coloured by its case load, workers as dots where they ended the day.
pub fn draw_map(
    path: &Path,
    grid: &wangge::Grid,
    load: &[u64],
    workers: &[([f64; 2], bool)],
) -> Result<(), Box<dyn Error>> {
    let [x0, y0, x1, y1] = grid.bounds();
    let k = ((y0 + y1) / 2.0).to_radians().cos();
    let w = 1000u32;
    let h = ((w as f64 - 60.0) * (y1 - y0) / ((x1 - x0) * k) + 90.0).clamp(300.0, 1600.0) as u32;
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = load.iter().copied().max().unwrap_or(0).max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Cases per cell (white 0 → dark red {max}); dots: workers (blue on duty, grey off)"
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let colour = |n: u64| {
        if n == 0 {
            RGBColor(238, 238, 238)
        } else {
            let t = ((n as f64).ln_1p() / (max as f64).ln_1p()).clamp(0.0, 1.0);
            RGBColor(
                (255.0 - 100.0 * t) as u8,
                (235.0 - 215.0 * t) as u8,
                (190.0 - 170.0 * t) as u8,
            )
        }
    };
    for (i, cell) in grid.cells().iter().enumerate() {
        let fill = colour(load.get(i).copied().unwrap_or(0));
        for poly in &cell.polygons {
            let pts: Vec<(f64, f64)> = poly.exterior.iter().map(|p| (p[0], p[1])).collect();
            chart.draw_series(std::iter::once(Polygon::new(pts, fill.filled())))?;
        }
    }
    chart.draw_series(workers.iter().map(|(p, on)| {
        let c = if *on {
            RGBColor(30, 80, 200)
        } else {
            RGBColor(150, 150, 150)
        };
        Circle::new((p[0], p[1]), 2, c.filled())
    }))?;
    root.present()?;
    Ok(())
}

/// A line of a chart: its name, colour and value at each sample.
pub type Line<'a> = (&'a str, RGBColor, fn(&Sample) -> Option<f64>);

/// A line chart of the day.
pub fn draw_lines(
    path: &Path,
    title: &str,
    y_label: &str,
    samples: &[Sample],
    lines: &[Line],
    y_max: Option<f64>,
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (640, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = samples.last().map_or(24.0, |s| s.hour).max(1.0);
    let top = y_max.unwrap_or_else(|| {
        samples
            .iter()
            .flat_map(|s| lines.iter().filter_map(|l| (l.2)(s)))
            .fold(1.0, f64::max)
            * 1.1
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("simulated hour")
        .y_desc(y_label)
        .x_labels(13)
        .draw()?;
    for (name, colour, f) in lines {
        let c = *colour;
        chart
            .draw_series(LineSeries::new(
                samples.iter().filter_map(|s| f(s).map(|y| (s.hour, y))),
                c.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

pub fn html(title: &str, intro: &str, tables: &[Table]) -> String {
    let mut s = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t}</title><style>
body{{font-family:sans-serif;margin:24px;max-width:1360px;color:#222}}
table{{border-collapse:collapse;margin:4px 0 16px;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td.t,th{{text-align:left}} th{{background:#f0f0f0}}
.note{{color:#555;font-size:13px;margin:2px 0}} .row{{display:flex;gap:16px;flex-wrap:wrap}}
.cols{{columns:2;column-gap:32px}} .cols>div{{break-inside:avoid}}
img{{border:1px solid #ddd}}</style></head><body>
<h1>{t}</h1><p>{intro}</p>
<div class=row><img src=backlog.svg width=640><img src=on_time.svg width=640></div>
<img src=map.svg style=\"max-width:1000px;width:100%\">
<div class=cols>\n",
        t = esc(title),
        intro = esc(intro)
    );
    for t in tables {
        s += "<div>";
        s += &t.html();
        s += "</div>\n";
    }
    s + "</div></body></html>\n"
}
