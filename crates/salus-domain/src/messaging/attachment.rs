//! Files attached to messages: PDF, PNG or JPEG, decided from the bytes themselves (never from
//! the name or the type the sender declared), at most [`MAX_FILES`] per message and a
//! configured size each. A message's files are stored with it and never change.

use crate::ids::{AttachmentId, IdGenerator};

/// Files one message may carry.
pub const MAX_FILES: usize = 5;

/// The size of one file unless the deployment says otherwise: 10 MB.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// What a file is, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Png,
    Jpeg,
}

impl FileKind {
    /// The kind the content is, by its signature: `%PDF-`; the PNG signature followed by its
    /// header chunk; a JPEG start-of-image marker followed by another marker. Anything else —
    /// HTML, a script, an executable, a Word file named `.pdf` — is none of them.
    pub fn of_content(bytes: &[u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else if bytes.starts_with(PNG) && bytes.get(12..16) == Some(b"IHDR") {
            Some(Self::Png)
        } else if bytes.len() > 3 && bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else {
            None
        }
    }

    /// The media type it is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }

    /// The kind of a stored media type.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        [Self::Pdf, Self::Png, Self::Jpeg]
            .into_iter()
            .find(|k| k.media_type() == media_type)
    }

    /// The extension a download's name ends with.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Png => "png",
            Self::Jpeg => "jpg",
        }
    }
}

/// A stored file's description (its content is read apart, in chunks).
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    /// The name it downloads as: the sender's name, cleaned, ending in the kind's extension.
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
}

impl Attachment {
    /// The `Content-Disposition` of its download: always an attachment (saved, never shown
    /// in the browser), its name as plain ASCII (others `_`) and exactly as RFC 5987
    /// `filename*`.
    pub fn disposition(&self) -> String {
        use std::fmt::Write as _;
        let ascii: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .filter(|c| !matches!(c, '"' | '\\'))
            .collect();
        let mut encoded = String::new();
        for b in self.name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                let _ = write!(encoded, "%{b:02X}");
            }
        }
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A file's name may say what it is about; logs get the id, kind and size.
        f.debug_struct("Attachment")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A file as a request carried it.
#[derive(Clone)]
pub struct IncomingFile {
    /// The name the sender gave (may be empty, may be a path).
    pub name: String,
    pub content: Vec<u8>,
}

impl std::fmt::Debug for IncomingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingFile")
            .field("size", &self.content.len())
            .finish_non_exhaustive()
    }
}

/// A file accepted for storing: its description and its bytes.
#[derive(Clone)]
pub struct Upload {
    pub attachment: Attachment,
    pub content: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.attachment.fmt(f)
    }
}

/// Why the files of a message were refused (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("Attach at most 5 files to one message. Nothing was sent.")]
    TooMany,
    #[error("Each file may be at most {max_mb} MB. Nothing was sent.")]
    TooLarge { max_mb: u64 },
    #[error(
        "Attach PDF documents or PNG and JPEG pictures only; one of the files is something else. Nothing was sent."
    )]
    NotAllowed,
    #[error("One of the files is empty. Nothing was sent.")]
    Empty,
}

impl FileProblem {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooMany => "too_many_files",
            Self::TooLarge { .. } => "file_too_large",
            Self::NotAllowed => "unsupported_file_type",
            Self::Empty => "empty_file",
        }
    }
}

/// The name a file downloads as: the last part of what the sender called it, without
/// control or path characters, at most 100 characters, always ending in the extension of
/// what it really is ("scan" → "scan.pdf"; "notes.html" holding a PDF → "notes.html.pdf").
pub fn download_name(given: &str, kind: FileKind) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | ':' | '<' | '>' | '|' | '*' | '?'))
        .take(100)
        .collect();
    let stem = cleaned.trim().trim_start_matches('.');
    let stem = if stem.is_empty() { "attachment" } else { stem };
    let ext = kind.extension();
    let has_ext = stem.rsplit_once('.').is_some_and(|(_, e)| {
        e.eq_ignore_ascii_case(ext) || (kind == FileKind::Jpeg && e.eq_ignore_ascii_case("jpeg"))
    });
    if has_ext {
        stem.to_owned()
    } else {
        format!("{stem}.{ext}")
    }
}

/// The files of one message, checked: how many, how large, what they are.
///
/// # Errors
/// The first [`FileProblem`] found; nothing is kept.
pub fn accept(
    files: Vec<IncomingFile>,
    max_bytes: u64,
    ids: &dyn IdGenerator,
) -> Result<Vec<Upload>, FileProblem> {
    if files.len() > MAX_FILES {
        return Err(FileProblem::TooMany);
    }
    files
        .into_iter()
        .map(|f| {
            let size = f.content.len() as u64;
            if size == 0 {
                return Err(FileProblem::Empty);
            }
            if size > max_bytes {
                return Err(FileProblem::TooLarge {
                    max_mb: max_bytes.div_ceil(1024 * 1024),
                });
            }
            let kind = FileKind::of_content(&f.content).ok_or(FileProblem::NotAllowed)?;
            Ok(Upload {
                attachment: Attachment {
                    id: AttachmentId::generate(ids),
                    name: download_name(&f.name, kind),
                    kind,
                    size,
                },
                content: f.content,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";

    #[derive(Debug)]
    struct Ids;
    impl IdGenerator for Ids {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::from_u128(7)
        }
    }

    fn file(name: &str, content: &[u8]) -> IncomingFile {
        IncomingFile {
            name: name.into(),
            content: content.to_vec(),
        }
    }

    #[test]
    fn the_kind_comes_from_the_content_not_the_name() {
        assert_eq!(FileKind::of_content(b"%PDF-1.7\n..."), Some(FileKind::Pdf));
        assert_eq!(FileKind::of_content(PNG_HEAD), Some(FileKind::Png));
        assert_eq!(
            FileKind::of_content(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(FileKind::Jpeg)
        );
        // A page, a script, a zip (and so a Word file), a PNG signature without its header,
        // a bare JPEG marker: none of them.
        for refused in [
            &b"<html><script>alert(1)</script>"[..],
            b"#!/bin/sh\nrm -rf /",
            b"PK\x03\x04\x14\0\x06\0",
            b"\x89PNG\r\n\x1a\n",
            &[0xFF, 0xD8, 0xFF],
            b" %PDF-1.4",
            b"",
        ] {
            assert_eq!(FileKind::of_content(refused), None);
        }
        let accepted = accept(vec![file("evil.exe", b"%PDF-1.4 x")], 100, &Ids).unwrap();
        assert_eq!(accepted[0].attachment.kind, FileKind::Pdf);
        assert_eq!(accepted[0].attachment.name, "evil.exe.pdf");
        assert_eq!(
            accept(vec![file("scan.pdf", b"<html>")], 100, &Ids).unwrap_err(),
            FileProblem::NotAllowed
        );
    }

    #[test]
    fn at_most_five_files_each_within_the_size_and_none_empty() {
        let five: Vec<_> = (0..5).map(|_| file("a.pdf", b"%PDF-1")).collect();
        assert_eq!(accept(five.clone(), 6, &Ids).unwrap().len(), 5);
        let mut six = five;
        six.push(file("f.pdf", b"%PDF-1"));
        assert_eq!(accept(six, 6, &Ids).unwrap_err(), FileProblem::TooMany);
        assert_eq!(
            accept(vec![file("big.pdf", b"%PDF-12")], 6, &Ids).unwrap_err(),
            FileProblem::TooLarge { max_mb: 1 }
        );
        assert_eq!(
            accept(vec![file("none.pdf", b"")], 6, &Ids).unwrap_err(),
            FileProblem::Empty
        );
        assert_eq!(
            FileProblem::TooLarge { max_mb: 10 }.to_string(),
            "Each file may be at most 10 MB. Nothing was sent."
        );
    }

    #[test]
    fn a_download_name_is_one_clean_part_with_the_real_extension() {
        assert_eq!(
            download_name("C:\\Users\\ann\\x-ray.PNG", FileKind::Png),
            "x-ray.PNG"
        );
        assert_eq!(
            download_name("../../etc/passwd", FileKind::Pdf),
            "passwd.pdf"
        );
        assert_eq!(download_name("a\"b;\r\nc.jpeg", FileKind::Jpeg), "abc.jpeg");
        assert_eq!(download_name("", FileKind::Jpeg), "attachment.jpg");
        assert_eq!(download_name(".hidden", FileKind::Pdf), "hidden.pdf");
        assert_eq!(download_name(&"x".repeat(300), FileKind::Pdf).len(), 104);
    }

    #[test]
    fn a_download_is_always_an_attachment_with_a_safe_name() {
        let a = Attachment {
            id: AttachmentId::from_uuid(uuid::Uuid::from_u128(1)),
            name: "Röntgen \\ \"1\".png".into(),
            kind: FileKind::Png,
            size: 1,
        };
        assert_eq!(
            a.disposition(),
            "attachment; filename=\"R_ntgen  1.png\"; filename*=UTF-8''R%C3%B6ntgen%20%5C%20%221%22.png"
        );
    }
}
