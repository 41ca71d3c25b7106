//! The trend chart of a result over time: server-rendered SVG.

use super::*;

/// A line chart of a result over time: server-rendered SVG, the normal range as a band,
/// abnormal values marked. The page also shows the same points as a table.
pub(super) fn trend_svg(
    points: &[(DateTime<Utc>, f64, bool)],
    range: Option<&ReferenceRange>,
) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD_L: f64 = 56.0;
    const PAD_R: f64 = 16.0;
    const PAD_T: f64 = 16.0;
    const PAD_B: f64 = 40.0;
    let mut lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some(r) = range {
        for b in [r.low, r.high].into_iter().flatten() {
            lo = lo.min(b);
            hi = hi.max(b);
        }
    }
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let margin = (hi - lo) * 0.08;
    let (lo, hi) = (lo - margin, hi + margin);
    let t0 = points.first().map_or(0, |p| p.0.timestamp()) as f64;
    let t1 = points.last().map_or(1, |p| p.0.timestamp()) as f64;
    let span = (t1 - t0).max(1.0);
    let x = |t: DateTime<Utc>| {
        if points.len() == 1 {
            PAD_L + (W - PAD_L - PAD_R) / 2.0
        } else {
            PAD_L + (t.timestamp() as f64 - t0) / span * (W - PAD_L - PAD_R)
        }
    };
    let y = |v: f64| PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B);
    let mut svg = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"trend-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"trend-title\">Values over time; the same values are in the table below</title>"
    );
    if let Some(r) = range {
        let top = r.high.map_or(PAD_T, y);
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
        "<line class=\"axis\" x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{PAD_L}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
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
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{PAD_L}\" y=\"{:.1}\">{}</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - PAD_B + 18.0,
            first.0.format("%Y-%m-%d"),
            W - PAD_R,
            H - PAD_B + 18.0,
            last.0.format("%Y-%m-%d")
        );
    }
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"line\" points=\"{}\"/>",
        line.join(" ")
    );
    for p in points {
        let _ = write!(
            svg,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {}</title></circle>",
            if p.2 { "point abnormal" } else { "point" },
            x(p.0),
            y(p.1),
            p.0.format("%Y-%m-%d"),
            p.1
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_chart_places_every_point_and_the_normal_range() {
        let t = |d: i64| DateTime::from_timestamp(1_700_000_000 + d * 86_400, 0).unwrap();
        let svg = trend_svg(
            &[(t(0), 5.0, false), (t(30), 7.5, true), (t(60), 6.0, false)],
            Some(&ReferenceRange {
                low: Some(4.0),
                high: Some(6.5),
                text: None,
            }),
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("point abnormal").count(), 1);
        assert!(svg.contains("<rect class=\"normal\""));
        assert!(svg.contains("<title>2023-12-14: 7.5</title>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
