//! Safe XML parsing of hostile input, plus the small tree helpers the SAML layer needs.

mod ffi;

pub use ffi::{C14nMode, Document, Node, NodeKind, ParseError};

use super::error::{Code, Error};

/// Parses a document that came from the browser.
///
/// Refused before libxml2 sees a byte: non-UTF-8 input, an encoding declaration other than
/// UTF-8, and any DOCTYPE. Internal entities are expanded lazily by libxml2 when text is read,
/// which is how billion-laughs and quadratic-blowup documents exhaust memory; refusing every
/// DOCTYPE up front removes entity declarations (and XXE) entirely.
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    parse_within(bytes, usize::MAX)
}

/// [`parse`], also refusing before libxml2 builds a tree a document with more markup than
/// `max_nodes` nodes could account for (see [`check_markup`]).
pub fn parse_within(bytes: &[u8], max_nodes: usize) -> Result<Document, Error> {
    parse_measured(bytes, max_nodes).map_err(|refused| refused.error)
}

/// A refused document, and how far into it libxml2 read before refusing it (0 when the checks
/// before libxml2 refused it).
pub struct Refused {
    pub error: Error,
    pub read: usize,
}

/// [`parse_within`], also saying how much parsing a refusal cost (`equalize.rs` does the rest
/// of the work of a full parse).
pub fn parse_measured(bytes: &[u8], max_nodes: usize) -> Result<Document, Refused> {
    let early = |error: Error| Refused { error, read: 0 };
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(early(Error::new(Code::EncodingUnsupported, "document is not valid UTF-8")));
    };
    // XML forbids U+0000; its presence means UTF-16 or binary input that would otherwise slip
    // past the byte-level checks below as "valid UTF-8".
    if body.contains(&0) {
        return Err(early(Error::new(Code::EncodingUnsupported, "NUL byte in document (UTF-16 or binary input?)")));
    }
    // Refused even inside a comment: refusing a rare harmless document is cheaper than
    // parsing a hostile one.
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(early(Error::new(Code::DoctypeForbidden, "document type declarations are not accepted")));
    }
    check_declared_encoding(body).map_err(early)?;
    check_markup(body, max_nodes).map_err(early)?;
    let doc = Document::parse(bytes).map_err(|e| {
        let read = offset(bytes, e.line, e.column);
        #[cfg(test)]
        crate::saml::tally::add(|tally| tally.parsed_bytes += read);
        Refused { read, error: Error::new(Code::XmlMalformed, e.message) }
    })?;
    if doc.has_dtd() {
        return Err(early(Error::new(Code::DoctypeForbidden, "document type declarations are not accepted")));
    }
    #[cfg(test)]
    crate::saml::tally::add(|tally| tally.parsed_bytes += bytes.len());
    Ok(doc)
}

/// The byte offset of 1-based `line` and `column` in `bytes` (libxml2 counts columns in
/// characters; the difference only matters for a rough measure of work).
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(line - 2).map_or(bytes.len(), |(at, _)| at + 1)
    };
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

/// Upper bound on `=` inside one tag (attributes plus namespace declarations). libxml2 checks
/// attribute uniqueness pairwise, so 26,000 attributes on one element cost most of a second
/// before our own per-element limits could look at the tree.
const MAX_EQUALS_PER_TAG: usize = 256;

/// Markup bounds checked on the bytes, because `structure::scan` can count only once libxml2
/// has built the whole tree: a 1 MB document of `<y/>` is a quarter of a million elements
/// (~20 MB of tree), of `<z a="1" .../>` over 100,000 attribute nodes (~28 MB), and one tag
/// with 26,000 attributes costs libxml2 most of a second. Every element, comment, PI or CDATA
/// section opens with one `<` not followed by `/`, and the whole document may carry no more
/// attributes than nodes. `<` inside comments or CDATA is counted too, which can only refuse an
/// absurd document; `=` is counted only inside tags, so text such as LDAP DNs costs nothing.
fn check_markup(body: &[u8], max_nodes: usize) -> Result<(), Error> {
    // Branch-free totals first (vectorized: well under a microsecond for a typical response);
    // the exact counts only for documents beyond them.
    let (mut angles, mut equals) = (0usize, 0usize);
    for &b in body {
        angles += usize::from(b == b'<');
        equals += usize::from(b == b'=');
    }
    if angles > max_nodes {
        let opened = angles - body.windows(2).filter(|pair| *pair == b"</").count();
        if opened > max_nodes {
            return Err(Error::new(Code::XmlTooComplex, format!("{opened} tags: more than {max_nodes} nodes")));
        }
    }
    if equals > MAX_EQUALS_PER_TAG.min(max_nodes) {
        let stats = markup_stats(body);
        if stats.most_in_one_tag > MAX_EQUALS_PER_TAG {
            return Err(Error::new(
                Code::XmlTooComplex,
                format!("more than {MAX_EQUALS_PER_TAG} attributes or namespace declarations in one tag"),
            ));
        }
        if stats.attributes > max_nodes {
            return Err(Error::new(
                Code::XmlTooComplex,
                format!("{} attributes: more than {max_nodes}", stats.attributes),
            ));
        }
    }
    Ok(())
}

/// `=` signs inside tags (attributes and namespace declarations): in total and in the busiest tag.
struct MarkupStats {
    attributes: usize,
    most_in_one_tag: usize,
}

fn markup_stats(body: &[u8]) -> MarkupStats {
    let mut stats = MarkupStats { attributes: 0, most_in_one_tag: 0 };
    let (mut in_tag, mut quote, mut count) = (false, 0u8, 0usize);
    for &b in body {
        // A literal '<' cannot occur inside an attribute value, so it always starts new markup;
        // resetting here keeps a stray quote (in a comment or CDATA) from hiding what follows.
        if b == b'<' {
            in_tag = true;
            quote = 0;
            count = 0;
            continue;
        }
        if quote != 0 {
            if b == quote {
                quote = 0;
            }
            continue;
        }
        match b {
            b'>' if in_tag => in_tag = false,
            b'"' | b'\'' if in_tag => quote = b,
            b'=' if in_tag => {
                count += 1;
                stats.attributes += 1;
                stats.most_in_one_tag = stats.most_in_one_tag.max(count);
            }
            _ => {}
        }
    }
    stats
}

/// An XML declaration may name its encoding; only UTF-8 is accepted so that what we checked
/// (UTF-8 validity above) is what libxml2 decodes.
fn check_declared_encoding(body: &[u8]) -> Result<(), Error> {
    let Some(rest) = body.strip_prefix(b"<?xml") else {
        return Ok(());
    };
    let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
    let decl = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
    let Some(at) = decl.find("encoding") else {
        return Ok(());
    };
    let value: String = decl[at + "encoding".len()..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start()
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| *c != '"' && *c != '\'')
        .collect();
    if value == "utf-8" || value == "utf8" {
        Ok(())
    } else {
        Err(Error::new(Code::EncodingUnsupported, format!("declared encoding {value:?}, only UTF-8 is accepted")))
    }
}

/// The character data of an element: its text and CDATA children concatenated, comments
/// skipped. Returns `None` if the element has element children or processing instructions
/// (a value must be plain text).
///
/// Comments are skipped rather than ending the value: exclusive C14N without comments drops
/// them, so the signed value is the concatenation. Reading only the first text node is how the
/// 2018 comment-injection bypasses turned `admin@corp.com<!---->.evil.com` into
/// `admin@corp.com`.
pub fn text_value<'a>(element: Node<'a>) -> Option<std::borrow::Cow<'a, str>> {
    let mut parts = element.children().filter(|n| n.kind() != NodeKind::Comment);
    let Some(first) = parts.next() else {
        return Some("".into());
    };
    if first.kind() != NodeKind::Text {
        return None;
    }
    let Some(second) = parts.next() else {
        return Some(first.text().into());
    };
    let mut joined = String::from(first.text());
    for node in std::iter::once(second).chain(parts) {
        if node.kind() != NodeKind::Text {
            return None;
        }
        joined.push_str(node.text());
    }
    Some(joined.into())
}

/// All character data below an element (used for attribute values holding XML, such as
/// eduPersonTargetedID's NameID), comments skipped.
pub fn deep_text(element: Node<'_>) -> String {
    let mut out = String::new();
    fn walk(node: Node<'_>, out: &mut String) {
        for child in node.children() {
            match child.kind() {
                NodeKind::Text => out.push_str(child.text()),
                NodeKind::Element => walk(child, out),
                _ => {}
            }
        }
    }
    walk(element, &mut out);
    out
}

/// True for text made only of XML whitespace.
pub fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}
