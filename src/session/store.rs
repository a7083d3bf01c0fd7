//! The set of open documents ([`Documents`]), keyed by URI and safe to share between async
//! tasks. Only owned [`Snapshot`]s leave the store: no map guard is ever handed out, so none
//! can be held across an `.await`.

use std::sync::RwLock;

use dashmap::DashMap;

use super::document::{Document, DocumentError, DocumentLimits, Snapshot, TextChange};
use super::position::PositionEncoding;
use crate::syntax::Language;

/// The open documents.
#[derive(Debug, Default)]
pub struct Documents {
    documents: DashMap<String, Document>,
    limits: RwLock<DocumentLimits>,
}

impl Documents {
    pub fn new() -> Documents {
        Documents::default()
    }

    pub fn with_limits(limits: DocumentLimits) -> Documents {
        Documents { documents: DashMap::new(), limits: RwLock::new(limits) }
    }

    /// The limits applied to documents opened from now on (open documents keep theirs).
    pub fn set_limits(&self, limits: DocumentLimits) {
        *crate::sync::write(&self.limits) = limits;
    }

    pub fn limits(&self) -> DocumentLimits {
        *crate::sync::read(&self.limits)
    }

    /// Opens (or reopens) `uri`. The language comes from `language_id`, else from the path.
    /// When the document is refused, any earlier version of it is forgotten.
    pub fn open(&self, uri: &str, language_id: &str, text: &str, version: i32) -> Result<(), DocumentError> {
        let path = path_from_uri(uri);
        let language = Language::detect(language_id, &path);
        // Parse before taking the map lock.
        match Document::open(&path, language, text, version, &self.limits()) {
            Ok(document) => {
                self.documents.insert(uri.to_owned(), document);
                Ok(())
            }
            Err(error) => {
                self.documents.remove(uri);
                Err(error)
            }
        }
    }

    /// Applies `changes` to `uri` (see [`Document::apply_changes`]).
    pub fn change(&self, uri: &str, version: i32, changes: &[TextChange], enc: PositionEncoding) -> Result<(), DocumentError> {
        let mut document = self.documents.get_mut(uri).ok_or_else(|| DocumentError::NotOpen(uri.to_owned()))?;
        document.apply_changes(version, changes, enc)
    }

    /// Forgets `uri`; whether it was open.
    pub fn close(&self, uri: &str) -> bool {
        self.documents.remove(uri).is_some()
    }

    /// An owned view of `uri`, or `None` when it is not open.
    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        self.documents.get(uri).map(|document| document.snapshot())
    }

    pub fn contains(&self, uri: &str) -> bool {
        self.documents.contains_key(uri)
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

/// A file path for display and language detection: `file://` URIs lose their scheme (and an
/// empty or `localhost` host) and are percent-decoded, and `/C:/…` becomes `C:/…`. Other URIs
/// (`untitled:…`) are kept as they are.
pub fn path_from_uri(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("file://") else {
        return uri.to_owned();
    };
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let path = percent_decode(rest);
    let bytes = path.as_bytes();
    let windows_drive = bytes.len() >= 3 && bytes[0] == b'/' && bytes[1].is_ascii_alphabetic() && bytes[2] == b':';
    if windows_drive {
        path[1..].to_owned()
    } else {
        path
    }
}

/// Decodes `%XX` escapes; malformed escapes stay as written, invalid UTF-8 becomes U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(&[high, low])) => hex_value(high).zip(hex_value(low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::position::{LineCol, LineColRange};

    #[test]
    fn paths_from_uris() {
        assert_eq!(path_from_uri("file:///home/me/a%20b/%E6%97%A5.rs"), "/home/me/a b/日.rs");
        assert_eq!(path_from_uri("file:///c%3A/work/x.py"), "c:/work/x.py");
        assert_eq!(path_from_uri("file://localhost/etc/x.go"), "/etc/x.go");
        assert_eq!(path_from_uri("file:///bad%zz%4"), "/bad%zz%4");
        assert_eq!(path_from_uri("file:///%FF.c"), "/\u{FFFD}.c");
        assert_eq!(path_from_uri("untitled:Untitled-1"), "untitled:Untitled-1");
    }

    #[test]
    fn open_change_snapshot_close() {
        let documents = Documents::new();
        let uri = "file:///tmp/m%C3%A9.py";
        documents.open(uri, "plaintext", "x = 1\n", 1).unwrap();
        assert_eq!(documents.len(), 1);
        let snapshot = documents.snapshot(uri).unwrap();
        assert_eq!(snapshot.language, Language::Python);
        assert_eq!(&*snapshot.path, "/tmp/mé.py");
        assert!(snapshot.tree.is_some());

        let change = TextChange { range: Some(LineColRange::new(LineCol::new(0, 4), LineCol::new(0, 5))), text: "2".into() };
        documents.change(uri, 2, std::slice::from_ref(&change), PositionEncoding::Utf16).unwrap();
        let after = documents.snapshot(uri).unwrap();
        assert_eq!((after.version, after.text.to_string()), (2, "x = 2\n".to_owned()));
        // The earlier snapshot is untouched.
        assert_eq!((snapshot.version, snapshot.text.to_string()), (1, "x = 1\n".to_owned()));

        let missing = documents.change("file:///nope", 1, &[change], PositionEncoding::Utf16);
        assert_eq!(missing, Err(DocumentError::NotOpen("file:///nope".into())));
        assert!(documents.close(uri));
        assert!(!documents.close(uri));
        assert!(documents.snapshot(uri).is_none());
        assert!(documents.is_empty());
    }

    #[test]
    fn refused_reopen_forgets_the_old_version_and_limits_apply_to_new_documents() {
        let documents = Documents::new();
        documents.open("file:///a.rs", "rust", "fn a() {}", 1).unwrap();
        assert_eq!(documents.open("file:///a.rs", "rust", "\0\0", 2), Err(DocumentError::Binary));
        assert!(!documents.contains("file:///a.rs"));

        documents.set_limits(DocumentLimits { max_bytes: 4, max_parse_bytes: 2 });
        assert_eq!(documents.limits().max_bytes, 4);
        let refused = documents.open("file:///b.rs", "rust", "fn b() {}", 1);
        assert_eq!(refused, Err(DocumentError::TooLarge { size: 9, limit: 4 }));
        documents.open("file:///c.txt", "", "abc", 1).unwrap();
        let snapshot = documents.snapshot("file:///c.txt").unwrap();
        assert_eq!((snapshot.language, snapshot.tree.is_none()), (Language::Other, true));
    }

    #[test]
    fn the_store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Documents>();
        assert_send_sync::<Snapshot>();
    }
}
