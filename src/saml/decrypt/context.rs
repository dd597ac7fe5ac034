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
//! Why this is safe for signatures: only the binding of the prefix the container element uses
//! itself is inherited (`saml:` for `saml:EncryptedAssertion` or `saml:EncryptedID`). The
//! container's name is signed (by the Response, or by the assertion it sits in), and exclusive
//! C14N emits the binding of every prefix a signed name uses, so that binding is pinned; any
//! other declaration in scope may have been added by whoever relayed the response and is never
//! inherited. An EncryptedAssertion's plaintext is then verified against its own signature too.

use crate::saml::xml::Node;

/// `plaintext` with the namespace declarations in scope at `parent` (the EncryptedData's parent)
/// added to its root start tag, except those the root declares itself. A plaintext whose prolog
/// or root start tag this reader does not follow is returned unchanged: the parser then judges
/// it as it always did.
pub(super) fn in_context(parent: Node<'_>, plaintext: Vec<u8>) -> Vec<u8> {
    let Some(root) = root_start_tag(&plaintext) else { return plaintext };
    // Only the binding of the prefix the container element itself uses (`saml:EncryptedID`):
    // that one is pinned by the signature over the container's assertion (exclusive C14N emits
    // it because the container's name uses it). A declaration nothing signed uses visibly could
    // be added by whoever relays the response, even on the container itself, and would rebind
    // a prefix inside the plaintext, which no signature covers once decrypted.
    let wanted = parent.prefix();
    let mut added = String::new();
    for (prefix, uri) in in_scope(parent).into_iter().filter(|(prefix, _)| *prefix == wanted) {
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
        // The terminators are searched after the openers: `<!-->` and `<?>` open, never close.
        if rest.starts_with(b"<?") {
            at += 2 + find(&rest[2..], b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            at += 4 + find(&rest[4..], b"-->")? + 3;
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
        let context = r#"<r xmlns:a="urn:outer-a" xmlns="urn:default" xml:base="http://x/" xml:lang="en"><c xmlns:a="urn:inner-a" xmlns:b="urn:b" attr="1"><a:leaf/></c></r>"#;
        assert_eq!(
            injected(context, "<?xml version=\"1.0\"?><!-- c --><a:X xmlns:b='urn:own-b'><a:Y/></a:X>"),
            "<?xml version=\"1.0\"?><!-- c --><a:X xmlns:a=\"urn:inner-a\" xmlns:b='urn:own-b'><a:Y/></a:X>"
        );
        assert_eq!(injected(context, "<X xmlns=\"\"/>"), "<X xmlns:a=\"urn:inner-a\" xmlns=\"\"/>");
        assert_eq!(
            injected(context, "<a:X xmlns:a='urn:own'/>"),
            "<a:X xmlns:a='urn:own'/>",
            "the plaintext's own wins"
        );
        // Not a start tag this reader follows: unchanged, for the parser to refuse.
        for odd in ["garbage", "<", "<a b>", "<?pi", "<a b=\"1>", "<!DOCTYPE a><a/>", "<!--><a:X/>", "<?><a:X/>"] {
            assert_eq!(injected(context, odd), odd);
        }
        let far = format!("<!--{}--><a:X/>", " ".repeat(MAX_HEAD));
        assert_eq!(injected(context, &far), far, "a root tag past the first {MAX_HEAD} bytes is left alone");
    }

    /// Review finding: a declaration that no signed name uses (`xmlns:q` added to the container
    /// by whoever relays the response) must not rebind a prefix inside the plaintext; only the
    /// container's own prefix, pinned by the signature over its name, is inherited.
    #[test]
    fn only_the_containers_own_prefix_is_inherited() {
        let relayed = r#"<r xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:q="urn:ok"><saml:EncryptedID xmlns:q="urn:evil" xmlns:xsi="urn:evil-xsi"/></r>"#;
        assert_eq!(
            injected(relayed, "<saml:NameID><q:X/></saml:NameID>"),
            "<saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"><q:X/></saml:NameID>"
        );
    }
}
