//! The namespace context of decrypted content. xmlenc-core1 4.5 (decryption, step 3.2) parses
//! the cleartext octets "in the context of" the EncryptedData's parent: an IdP may encrypt
//! `<saml:Assertion>` or `<saml:NameID>` whose prefix is declared on the Response around it
//! (python3-saml's `response_encrypted_nameid` fixture does), and xmlsec1 accepts that. Parsed as
//! a document of its own, such a plaintext has an undeclared prefix.
//!
//! The plaintext is still parsed on its own (same strict parser, limits and inventory as any
//! input); what it inherits is exactly the namespace declarations in scope where the
//! EncryptedData stood, written on its root element's start tag, and nothing else: no entities,
//! no `xml:base`, `xml:lang` or other inherited attributes. A declaration the root makes itself
//! is never overridden (the plaintext's own declarations win), and descendants' declarations
//! shadow the injected ones by ordinary XML scoping.
//!
//! Why this is safe for signatures: exclusive C14N (the only one the IdPs' assertion signatures
//! use) emits on the apex each namespace it visibly uses, wherever the declaration sits, so an
//! assertion signed by the IdP in its original context canonicalizes to the same octets with the
//! declarations on its root; and since the canonical form carries every used prefix's URI, a
//! sender who rebinds a prefix around the EncryptedData changes what the signature covers and
//! fails verification.

use crate::saml::xml::Node;

/// `plaintext` with the namespace declarations in scope at `parent` (the EncryptedData's parent)
/// added to its root start tag, except those the root declares itself. A plaintext whose prolog
/// or root start tag this reader does not follow is returned unchanged: the parser then judges
/// it as it always did.
pub(super) fn in_context(parent: Node<'_>, plaintext: Vec<u8>) -> Vec<u8> {
    let Some(root) = root_start_tag(&plaintext) else { return plaintext };
    let mut added = String::new();
    for (prefix, uri) in in_scope(parent) {
        // xml is bound by definition; an undeclared default namespace (xmlns="") adds nothing.
        let own = root.declared.contains(&prefix);
        if own || prefix == Some("xml") || uri.is_empty() || !is_plain(uri) {
            continue;
        }
        match prefix {
            Some(prefix) => added.push_str(&format!(" xmlns:{prefix}=\"{uri}\"")),
            None => added.push_str(&format!(" xmlns=\"{uri}\"")),
        }
    }
    if added.is_empty() {
        return plaintext;
    }
    let mut out = Vec::with_capacity(plaintext.len() + added.len());
    out.extend_from_slice(&plaintext[..root.name_end]);
    out.extend_from_slice(added.as_bytes());
    out.extend_from_slice(&plaintext[root.name_end..]);
    out
}

/// The namespace declarations in scope at `element`, innermost first and each prefix once
/// (`None`: the default namespace).
fn in_scope(element: Node<'_>) -> Vec<(Option<&str>, &str)> {
    let mut out: Vec<(Option<&str>, &str)> = Vec::new();
    let mut at = Some(element);
    while let Some(node) = at {
        for (prefix, uri) in node.namespace_declarations() {
            if !out.iter().any(|(seen, _)| *seen == prefix) {
                out.push((prefix, uri));
            }
        }
        at = node.parent().filter(|parent| parent.is_element());
    }
    out
}

/// The received document's URIs passed `structure::scan` (absolute, no quote, `&`, `<` or
/// whitespace); checked again because they are written into markup here.
fn is_plain(uri: &str) -> bool {
    !uri.bytes().any(|b| matches!(b, b'&' | b'<' | b'"' | b'\'') || b.is_ascii_whitespace())
}

/// Where the root element's name ends, and the prefixes its start tag declares.
struct RootStartTag<'p> {
    name_end: usize,
    declared: Vec<Option<&'p str>>,
}

/// How far into a plaintext its root start tag is looked for. Real prologs and root tags are a
/// few hundred bytes; the bound keeps this scan from reading a whole attacker-shaped plaintext
/// (an unterminated comment or attribute value), which would add to what a CBC attacker can
/// time (`equalize.rs`).
const MAX_HEAD: usize = 8 * 1024;

fn root_start_tag(text: &[u8]) -> Option<RootStartTag<'_>> {
    let text = &text[..text.len().min(MAX_HEAD)];
    let mut at = if text.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    // The prolog: XML declaration, comments, processing instructions, whitespace.
    loop {
        at = skip_space(text, at);
        let rest = &text[at..];
        if rest.starts_with(b"<?") {
            at += find(rest, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            at += find(rest, b"-->")? + 3;
        } else if rest.starts_with(b"<!") {
            return None; // a DOCTYPE or CDATA: the parser refuses those
        } else if rest.first() == Some(&b'<') {
            break;
        } else {
            return None;
        }
    }
    at += 1;
    let name_end = at + text[at..].iter().position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')?;
    if name_end == at {
        return None;
    }
    let mut declared = Vec::new();
    at = name_end;
    loop {
        at = skip_space(text, at);
        match text.get(at)? {
            b'>' | b'/' => return Some(RootStartTag { name_end, declared }),
            _ => {}
        }
        let name_len = text[at..].iter().position(|&b| b.is_ascii_whitespace() || b == b'=')?;
        let name = std::str::from_utf8(&text[at..at + name_len]).ok()?;
        at = skip_space(text, at + name_len);
        if text.get(at) != Some(&b'=') {
            return None;
        }
        at = skip_space(text, at + 1);
        let quote = *text.get(at).filter(|&&q| q == b'"' || q == b'\'')?;
        at += 1;
        at += text[at..].iter().position(|&b| b == quote)? + 1;
        if name == "xmlns" {
            declared.push(None);
        } else if let Some(prefix) = name.strip_prefix("xmlns:") {
            declared.push(Some(prefix));
        }
    }
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        at += 1;
    }
    at
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::xml;

    fn injected(context: &str, plaintext: &str) -> String {
        let doc = xml::parse(context.as_bytes()).unwrap();
        let mut parent = doc.root().unwrap();
        while let Some(child) = parent.elements().next() {
            parent = child;
        }
        String::from_utf8(in_context(parent, plaintext.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn the_plaintexts_own_declarations_win_and_only_namespaces_are_inherited() {
        let context = r#"<r xmlns:a="urn:outer-a" xmlns="urn:default" xml:base="http://x/" xml:lang="en"><c xmlns:a="urn:inner-a" xmlns:b="urn:b" attr="1"><leaf/></c></r>"#;
        assert_eq!(
            injected(context, "<?xml version=\"1.0\"?><!-- c --><a:X xmlns:b='urn:own-b'><a:Y/></a:X>"),
            "<?xml version=\"1.0\"?><!-- c --><a:X xmlns:a=\"urn:inner-a\" xmlns=\"urn:default\" xmlns:b='urn:own-b'><a:Y/></a:X>"
        );
        assert_eq!(injected(context, "<X xmlns=\"\"/>"), "<X xmlns:a=\"urn:inner-a\" xmlns:b=\"urn:b\" xmlns=\"\"/>");
        // Not a start tag this reader follows: unchanged, for the parser to refuse.
        for odd in ["garbage", "<", "<a b>", "<?pi", "<a b=\"1>", "<!DOCTYPE a><a/>"] {
            assert_eq!(injected(context, odd), odd);
        }
        let far = format!("<!--{}--><a:X/>", " ".repeat(MAX_HEAD));
        assert_eq!(injected(context, &far), far, "a root tag past the first {MAX_HEAD} bytes is left alone");
    }
}
