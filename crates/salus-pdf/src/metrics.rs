//! Glyph widths of the PDF standard fonts Helvetica and Helvetica-Bold (Adobe's Core 14 font
//! metrics, in 1/1000 of the font size), so lines can be wrapped to the page without
//! embedding a font. Characters outside ASCII get a width no narrower than any Latin-1 letter.

/// Widths of the characters 32 (space) to 126 (`~`) in Helvetica.
const REGULAR: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space-/
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
    278, 278, 584, 584, 584, 556, 1015, // :-@
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // A-M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N-Z
    278, 278, 278, 469, 556, 333, // [-`
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // a-m
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // n-z
    334, 260, 334, 584, // {-~
];

/// Widths of the characters 32 (space) to 126 (`~`) in Helvetica-Bold.
const BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // space-/
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
    333, 333, 584, 584, 584, 611, 975, // :-@
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, // A-M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N-Z
    333, 278, 333, 584, 556, 333, // [-`
    556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, // a-m
    611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, // n-z
    389, 280, 389, 584, // {-~
];

/// The width of `text` at `size` points.
pub(crate) fn width(text: &str, size: f32, bold: bool) -> f32 {
    let table = if bold { &BOLD } else { &REGULAR };
    let units: u32 = text
        .chars()
        .map(|c| {
            let code = c as u32;
            if (32..=126).contains(&code) {
                u32::from(table[(code - 32) as usize])
            } else if bold {
                778
            } else {
                722
            }
        })
        .sum();
    #[allow(
        clippy::cast_precision_loss,
        reason = "widths of a line are small numbers"
    )]
    let units = units as f32;
    units * size / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_add_up_per_character() {
        // "Hi" = H (722) + i (222) in Helvetica; bold i is 278.
        assert!((width("Hi", 10.0, false) - 9.44).abs() < 1e-4);
        assert!((width("Hi", 10.0, true) - 10.0).abs() < 1e-4);
        assert!(width("é", 10.0, false) >= width("e", 10.0, false));
        assert_eq!(width("", 12.0, false), 0.0);
    }
}
