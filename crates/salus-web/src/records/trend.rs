//! The trend chart of a result over time: server-rendered SVG.

use super::*;

/// One line of a trend chart: a result, or one part of a result in parts.
pub(super) struct Series {
    pub(super) label: String,
    /// (when, value, outside its normal range), oldest first.
    pub(super) points: Vec<(DateTime<Utc>, f64, bool)>,
    pub(super) range: Option<ReferenceRange>,
}

/// A line chart of a result over time, one line per series (a blood pressure has two):
/// server-rendered SVG, each normal range as a band, abnormal values marked. The page also
/// shows the same values as a table.
pub(super) fn trend_svg(series: &[Series], tz: Tz) -> String {
    const W: f64 = 640.0;
    const H: f64 = 260.0;
    const PAD_L: f64 = 76.0;
    const PAD_R: f64 = 16.0;
    const PAD_B: f64 = 40.0;
    let many = series.len() > 1;
    // Room above the plot for the legend when there is more than one line.
    let pad_t: f64 = if many { 64.0 } else { 16.0 };
    let all = || series.iter().flat_map(|s| s.points.iter());
    let mut lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    for r in series.iter().filter_map(|s| s.range.as_ref()) {
        for b in [r.low, r.high].into_iter().flatten() {
            lo = lo.min(b);
            hi = hi.max(b);
        }
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let margin = (hi - lo) * 0.08;
    let (lo, hi) = (lo - margin, hi + margin);
    let first = all().map(|p| p.0).min();
    let last = all().map(|p| p.0).max();
    let t0 = first.map_or(0, |t| t.timestamp()) as f64;
    let t1 = last.map_or(1, |t| t.timestamp()) as f64;
    let span = t1 - t0;
    let x = |t: DateTime<Utc>| {
        if span <= 0.0 {
            PAD_L + (W - PAD_L - PAD_R) / 2.0
        } else {
            PAD_L + (t.timestamp() as f64 - t0) / span * (W - PAD_L - PAD_R)
        }
    };
    let y = |v: f64| pad_t + (hi - v) / (hi - lo) * (H - pad_t - PAD_B);
    let mut svg = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"trend-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"trend-title\">Values over time; the same values are in the table below</title>"
    );
    for r in series.iter().filter_map(|s| s.range.as_ref()) {
        let top = r.high.map_or(pad_t, y);
        let bottom = r.low.map_or(H - PAD_B, y);
        let _ = write!(
            svg,
            "<rect class=\"normal\" x=\"{PAD_L}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>Normal range</title></rect>",
            W - PAD_L - PAD_R,
            (bottom - top).max(0.0)
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{PAD_L}\" y1=\"{pad_t}\" x2=\"{PAD_L}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{PAD_L}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        H - PAD_B,
        H - PAD_B,
        W - PAD_R,
        H - PAD_B
    );
    for v in [lo + margin, hi - margin] {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            PAD_L - 6.0,
            y(v) + 4.0,
            (v * 100.0).round() / 100.0
        );
    }
    if let (Some(first), Some(last)) = (first, last) {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{PAD_L}\" y=\"{:.1}\">{}</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - PAD_B + 18.0,
            when::day_of(first, tz),
            W - PAD_R,
            H - PAD_B + 18.0,
            when::day_of(last, tz)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let class = if i == 0 { "line" } else { "line second" };
        if many {
            // The legend: a short stroke in the line's style, then its name.
            let ly = 22.0 + 26.0 * (i as f64 % 2.0);
            let lx = PAD_L + if i >= 2 { 280.0 } else { 0.0 };
            let _ = write!(
                svg,
                "<line class=\"{class}\" x1=\"{lx}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                ly - 4.0,
                lx + 24.0,
                ly - 4.0,
                lx + 30.0,
                ly,
                escape(&s.label)
            );
        }
        let line: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"{class}\" points=\"{}\"/>",
            line.join(" ")
        );
        for p in &s.points {
            let _ = write!(
                svg,
                "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}{}: {}</title></circle>",
                if p.2 { "point abnormal" } else { "point" },
                x(p.0),
                y(p.1),
                if many {
                    format!("{} ", escape(&s.label))
                } else {
                    String::new()
                },
                when::day_of(p.0, tz),
                p.1
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text for SVG markup written by hand (the rest of the page is escaped by askama).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_chart_places_every_point_and_the_normal_range() {
        let t = |d: i64| DateTime::from_timestamp(1_700_000_000 + d * 86_400, 0).unwrap();
        let svg = trend_svg(
            &[Series {
                label: "Potassium".into(),
                points: vec![(t(0), 5.0, false), (t(30), 7.5, true), (t(60), 6.0, false)],
                range: Some(ReferenceRange {
                    low: Some(4.0),
                    high: Some(6.5),
                    text: None,
                }),
            }],
            Tz::UTC,
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("point abnormal").count(), 1);
        assert!(svg.contains("<rect class=\"normal\""));
        assert!(svg.contains("<title>14 Dec 2023: 7.5</title>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn a_result_in_parts_gets_one_line_per_part_with_a_legend() {
        let t = |d: i64| DateTime::from_timestamp(1_700_000_000 + d * 86_400, 0).unwrap();
        let part = |label: &str, values: [f64; 2], low: f64, high: f64| Series {
            label: label.into(),
            points: vec![
                (t(0), values[0], false),
                (t(30), values[1], values[1] > high),
            ],
            range: Some(ReferenceRange {
                low: Some(low),
                high: Some(high),
                text: None,
            }),
        };
        let svg = trend_svg(
            &[
                part("Systolic <blood> pressure", [118.0, 131.0], 90.0, 120.0),
                part("Diastolic blood pressure", [76.0, 79.0], 60.0, 80.0),
            ],
            Tz::UTC,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("class=\"line second\"").count(),
            2,
            "line and legend"
        );
        assert_eq!(svg.matches("<rect class=\"normal\"").count(), 2);
        assert_eq!(svg.matches("point abnormal").count(), 1);
        assert!(
            svg.contains("Systolic &lt;blood&gt; pressure"),
            "labels are escaped"
        );
        assert!(!svg.contains("<blood>"));
    }
}
