//! Printable PDFs of a chart: the health summary and a printout of one kind of record.
//!
//! Pure: domain values in, PDF bytes out. Text is real text set in the PDF standard fonts
//! Helvetica and Helvetica-Bold (WinAnsi encoding), so a reader can search, copy and read it
//! aloud; nothing is an image. Every page names the patient and their date of birth, and
//! carries "Page n of N" and when and where the document was made.
//!
//! **Invariant:** what a PDF shows was decided by the domain's export (release, sensitivity,
//! who asks); this crate only lays it out.

mod metrics;

use chrono::{DateTime, NaiveDate, Utc};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};
use salus_domain::RepoError;
use salus_domain::chrono_tz::Tz;
use salus_domain::export::{ChartExport, SummaryCollector, SummarySection};
use salus_domain::organization::Organization;
use salus_domain::patient::Patient;
use salus_domain::record::{ClinicalRecord, RecordBody, RecordKind};
use salus_domain::when;

/// A4, in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.0;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// Where running text may start and must stop on a page.
const TOP: f32 = PAGE_H - MARGIN - 28.0;
const BOTTOM: f32 = MARGIN + 24.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Whose document it is, and what it is.
#[derive(Debug, Clone)]
pub struct Cover {
    pub title: String,
    pub patient_name: String,
    pub birth_date: NaiveDate,
    pub organization: String,
    pub generated_at: DateTime<Utc>,
    /// The organisation's zone: every date and time of the document is shown in it.
    pub time_zone: Tz,
}

impl Cover {
    pub fn new(
        title: &str,
        patient: &Patient,
        organization: &Organization,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            title: title.to_owned(),
            patient_name: patient.name.full(),
            birth_date: patient.birth_date,
            organization: organization.name.as_str().to_owned(),
            generated_at: at,
            time_zone: organization.time_zone,
        }
    }
}

/// One item of a section: a line in bold-free text, and lines of detail under it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub text: String,
    pub details: Vec<String>,
}

/// A headed list of entries; `empty` is said when there are none.
#[derive(Debug, Clone)]
pub struct Section {
    pub heading: String,
    pub entries: Vec<Entry>,
    pub empty: String,
}

/// One line placed on the page.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    bold: bool,
    size: f32,
    indent: f32,
    /// Space above it.
    gap: f32,
}

impl Line {
    fn height(&self) -> f32 {
        self.gap + self.size * 1.3
    }
}

/// Splits `text` into lines no wider than `width`, breaking at spaces (and inside words
/// longer than a line).
fn wrap(text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if metrics::width(&candidate, size, bold) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word longer than the line is cut where it reaches the edge.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if metrics::width(&piece, size, bold) > width {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            line = piece;
        }
        lines.push(line);
    }
    lines
}

/// The text as WinAnsi bytes; characters it cannot show become `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{20ac}' => 0x80,
            _ => b'?',
        })
        .collect()
}

/// One run of text with its left end at (`x`, `y`).
fn show(content: &mut Content, font: Name, size: f32, at: (f32, f32), s: &str) {
    content
        .begin_text()
        .set_font(font, size)
        .next_line(at.0, at.1)
        .show(Str(&win_ansi(s)))
        .end_text();
}

fn push_wrapped(out: &mut Vec<Line>, text: &str, bold: bool, size: f32, indent: f32, gap: f32) {
    for (i, l) in wrap(text, size, bold, TEXT_W - indent)
        .into_iter()
        .enumerate()
    {
        out.push(Line {
            text: l,
            bold,
            size,
            indent,
            gap: if i == 0 { gap } else { 0.0 },
        });
    }
}

/// Lays `sections` out under the cover and answers the PDF.
pub fn render(cover: &Cover, sections: &[Section]) -> Vec<u8> {
    // 1. Every line, in blocks that stay together on a page: the cover, each entry with its
    //    details, and each heading with its first entry.
    let mut blocks: Vec<Vec<Line>> = Vec::new();
    let mut cover_lines = Vec::new();
    push_wrapped(&mut cover_lines, &cover.title, true, 18.0, 0.0, 0.0);
    push_wrapped(
        &mut cover_lines,
        &format!(
            "{} \u{b7} born {}",
            cover.patient_name,
            when::day(cover.birth_date)
        ),
        false,
        11.0,
        0.0,
        6.0,
    );
    push_wrapped(
        &mut cover_lines,
        &format!(
            "From {} \u{b7} made {}",
            cover.organization,
            when::moment(cover.generated_at, cover.time_zone)
        ),
        false,
        11.0,
        0.0,
        0.0,
    );
    blocks.push(cover_lines);
    for s in sections {
        let mut block = Vec::new();
        push_wrapped(&mut block, &s.heading, true, 13.0, 0.0, 16.0);
        if s.entries.is_empty() {
            push_wrapped(&mut block, &s.empty, false, 10.0, 0.0, 4.0);
        }
        for e in &s.entries {
            push_wrapped(&mut block, &e.text, false, 10.0, 0.0, 5.0);
            for d in &e.details {
                push_wrapped(&mut block, d, false, 9.0, 14.0, 0.0);
            }
            blocks.push(std::mem::take(&mut block));
        }
        if !block.is_empty() {
            blocks.push(block);
        }
    }

    // 2. Blocks onto pages: a block that does not fit starts a new page, unless it is taller
    //    than a page (a long note), which then flows line by line.
    let mut pages: Vec<Vec<(f32, Line)>> = vec![Vec::new()];
    let mut y = TOP;
    for block in blocks {
        let height: f32 = block.iter().map(Line::height).sum();
        if y - height < BOTTOM
            && height <= TOP - BOTTOM
            && pages.last().is_some_and(|p| !p.is_empty())
        {
            pages.push(Vec::new());
            y = TOP;
        }
        for line in block {
            let h = line.height();
            if y - h < BOTTOM {
                pages.push(Vec::new());
                y = TOP;
            }
            y -= h;
            if let Some(page) = pages.last_mut() {
                page.push((y, line));
            }
        }
    }

    // 3. The PDF.
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let count = pages.len();
    let page_ref = |i: usize| Ref::new(first_page + 2 * i32::try_from(i).unwrap_or(0));
    let content_ref = |i: usize| Ref::new(first_page + 2 * i32::try_from(i).unwrap_or(0) + 1);
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..count).map(page_ref))
        .count(i32::try_from(count).unwrap_or(i32::MAX));
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(&format!(
            "{} - {}",
            cover.title, cover.patient_name
        )))
        .producer(TextStr("Salus patient portal"));
    let footer_left = format!(
        "{} \u{b7} born {} \u{b7} made {} by Salus",
        cover.patient_name,
        when::day(cover.birth_date),
        when::day_of(cover.generated_at, cover.time_zone)
    );
    for (i, placed) in pages.iter().enumerate() {
        let mut content = Content::new();
        if i > 0 {
            let running = format!("{} \u{b7} {}", cover.title, cover.patient_name);
            show(
                &mut content,
                REGULAR,
                9.0,
                (MARGIN, PAGE_H - MARGIN),
                &running,
            );
        }
        for (y, line) in placed {
            let font = if line.bold { BOLD } else { REGULAR };
            show(
                &mut content,
                font,
                line.size,
                (MARGIN + line.indent, *y),
                &line.text,
            );
        }
        content.set_line_width(0.5);
        content.move_to(MARGIN, MARGIN + 14.0);
        content.line_to(PAGE_W - MARGIN, MARGIN + 14.0);
        content.stroke();
        show(&mut content, REGULAR, 8.0, (MARGIN, MARGIN), &footer_left);
        let number = format!("Page {} of {count}", i + 1);
        let w = metrics::width(&number, 8.0, false);
        show(
            &mut content,
            REGULAR,
            8.0,
            (PAGE_W - MARGIN - w, MARGIN),
            &number,
        );
        let stream = content.finish();
        pdf.stream(content_ref(i), &stream);
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(tree)
            .contents(content_ref(i));
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
    }
    pdf.finish()
}

/// One record as an entry: what it is (and its value), then when (the day in `tz`), status
/// and source.
pub fn entry(r: &ClinicalRecord, with_text: bool, tz: Tz) -> Entry {
    let day = |t: Option<DateTime<Utc>>| t.map(|t| when::day_of(t, tz));
    let mut text = r.body.title().to_owned();
    if let Some((value, range, flag)) = r.body.result_line() {
        if let Some(v) = value {
            text.push_str(&format!(": {v}"));
        } else if let RecordBody::Observation(o) = &r.body {
            // A result in parts (a blood pressure): each part with its value.
            let parts: Vec<String> = o
                .components
                .iter()
                .filter_map(|c| {
                    let v = c.value.as_ref()?.text();
                    Some(format!("{} {v}", c.code.display()))
                })
                .collect();
            if !parts.is_empty() {
                text.push_str(&format!(": {}", parts.join("; ")));
            }
        }
        if let Some(range) = range {
            text.push_str(&format!(" (normal range {range})"));
        }
        if let Some(f) = flag.filter(|f| f.is_abnormal()) {
            text.push_str(&format!(" \u{2014} {}", f.phrase().to_lowercase()));
        }
    }
    if let RecordBody::Medication(m) = &r.body
        && let Some(d) = &m.dosage
    {
        text.push_str(&format!(": {d}"));
    }
    let mut facts: Vec<String> = Vec::new();
    facts.extend(day(r.body.effective_at()));
    facts.push(r.body.status_phrase().to_lowercase());
    let src = &r.meta.source;
    facts.extend(
        [&src.organization, &src.performer, &src.author]
            .into_iter()
            .flatten()
            .map(|n| n.as_str().to_owned()),
    );
    if src.from_outside {
        facts.push("from an outside organisation".into());
    }
    let mut details = vec![facts.join(" \u{b7} ")];
    if with_text && let RecordBody::ClinicalNote(n) = &r.body {
        details.push(n.text.clone());
    }
    Entry { text, details }
}

/// The health summary: the sections of the patient summary, in words.
pub fn health_summary(
    cover: &Cover,
    sections: &[(SummarySection, Vec<ClinicalRecord>)],
) -> Vec<u8> {
    let sections: Vec<Section> = sections
        .iter()
        .map(|(s, records)| Section {
            heading: s.title().to_owned(),
            entries: records
                .iter()
                .map(|r| entry(r, false, cover.time_zone))
                .collect(),
            empty: s.none_recorded().to_owned(),
        })
        .collect();
    render(cover, &sections)
}

/// Every record of one kind, newest first, notes with their text.
pub fn printout(cover: &Cover, kind: RecordKind, records: &[ClinicalRecord]) -> Vec<u8> {
    let section = Section {
        heading: kind.label().to_owned(),
        entries: records
            .iter()
            .map(|r| entry(r, true, cover.time_zone))
            .collect(),
        empty: format!("No {} are recorded.", kind.label().to_lowercase()),
    };
    render(cover, &[section])
}

/// Reads an export out and answers its PDF: the printout of `kind` when one is named (the
/// export must have been asked for that kind only), else the health summary.
///
/// # Errors
/// The export's, when the store fails part-way.
pub async fn export_pdf(
    mut export: ChartExport,
    kind: Option<RecordKind>,
) -> Result<Vec<u8>, RepoError> {
    let title = match kind {
        Some(k) => k.label().to_owned(),
        None => "Health summary".to_owned(),
    };
    let cover = Cover::new(
        &title,
        export.patient(),
        export.organization(),
        export.generated_at(),
    );
    match kind {
        Some(k) => {
            let mut records = Vec::new();
            while let Some(batch) = export.next_batch().await? {
                records.extend(batch);
            }
            Ok(printout(&cover, k, &records))
        }
        None => {
            let mut summary = SummaryCollector::default();
            while let Some(batch) = export.next_batch().await? {
                batch.into_iter().for_each(|r| summary.add(r));
            }
            Ok(health_summary(&cover, &summary.into_sections()))
        }
    }
}

/// A statement: its dates and what the patient owes, then each service with what it cost,
/// what insurance paid, what was adjusted and the patient's share, then the totals.
pub fn statement(cover: &Cover, s: &salus_domain::billing::Statement) -> Vec<u8> {
    let summary = Section {
        heading: format!("Statement {}", s.number),
        entries: vec![Entry {
            text: format!("Dated {}, due {}", when::day(s.issued), when::day(s.due)),
            details: s
                .totals()
                .map(|t| {
                    vec![
                        format!("Charges {}", t.charges),
                        format!("Insurance paid {}", t.insurance_paid),
                        format!("Adjustments {}", t.adjustments),
                        format!("Your share {}", t.patient_share),
                    ]
                })
                .unwrap_or_default(),
        }],
        empty: String::new(),
    };
    let services = Section {
        heading: "Services".into(),
        entries: s
            .items
            .iter()
            .map(|l| Entry {
                text: format!("{}: {}", when::day(l.service_date), l.description),
                details: vec![format!(
                    "Charge {} \u{b7} insurance paid {} \u{b7} adjustments {} \u{b7} your share {}",
                    l.charge, l.insurance_paid, l.adjustments, l.patient_share
                )],
            })
            .collect(),
        empty: "No services.".into(),
    };
    render(cover, &[summary, services])
}

/// A receipt of a payment that succeeded: the amount, when, the processor's reference, and
/// what was owed after it.
pub fn receipt(
    cover: &Cover,
    payment: &salus_domain::billing::Payment,
    owed_after: salus_domain::billing::Money,
) -> Vec<u8> {
    let (at, reference) = match &payment.state {
        salus_domain::billing::PaymentState::Succeeded { at, reference } => {
            (*at, reference.as_str())
        }
        _ => (payment.created_at, ""),
    };
    let section = Section {
        heading: "Payment received".into(),
        entries: vec![Entry {
            text: format!(
                "{} paid on {}",
                payment.amount,
                when::moment(at, cover.time_zone)
            ),
            details: vec![
                format!("Processor's reference {reference}"),
                format!("Owed after this payment {owed_after}"),
            ],
        }],
        empty: String::new(),
    };
    render(cover, &[section])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cover() -> Cover {
        Cover {
            title: "Health summary".into(),
            patient_name: "Ana Lúcia (Test)".into(),
            birth_date: NaiveDate::from_ymd_opt(1980, 2, 29).unwrap(),
            organization: "Demo Clinic".into(),
            generated_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
            time_zone: salus_domain::chrono_tz::America::New_York,
        }
    }

    #[test]
    fn wrapping_keeps_every_word_and_every_line_fits() {
        let text = "Metoprolol succinate 24 hour extended release oral tablet, take one each morning with food; supercalifragilisticexpialidociouslylongwordthatcannotfitonasinglelineofthepageatall";
        let lines = wrap(text, 10.0, false, 200.0);
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(metrics::width(l, 10.0, false) <= 200.0, "{l}");
        }
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(
            win_ansi("Lúcia – 5 µg ✓"),
            b"L\xfacia \x96 5 \xb5g ?".to_vec()
        );
    }

    #[test]
    fn long_documents_get_numbered_pages_with_text_not_images() {
        let entries: Vec<Entry> = (0..200)
            .map(|i| Entry {
                text: format!("Glucose: {i}.5 mg/dL"),
                details: vec!["1 Jan 2020 \u{b7} final".into()],
            })
            .collect();
        let pdf = render(
            &cover(),
            &[Section {
                heading: "Test results".into(),
                entries,
                empty: String::new(),
            }],
        );
        assert!(pdf.starts_with(b"%PDF-"));
        let s = String::from_utf8_lossy(&pdf);
        let pages = s.matches("/Type /Page\n").count() + s.matches("/Type /Page ").count();
        assert!(pages >= 4, "{pages} pages");
        assert!(s.contains(&format!("(Page 1 of {pages})")));
        assert!(s.contains("(Glucose: 199.5 mg/dL)"));
        assert!(!s.contains("/Image"));
    }
}
