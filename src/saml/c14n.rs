//! Exclusive XML Canonicalization 1.0 without comments (W3C REC-xml-exc-c14n-20020718), written
//! over the parsed libxml2 tree for one subtree at a time.
//!
//! libxml2's own `xmlC14NExecute` walks the whole document and asks a callback about every node,
//! attribute and namespace, so a 2 KB SignedInfo costs as much as the 6 KB document around it.
//! This walks only the apex subtree. It is checked byte for byte against libxml2's
//! implementation on every element of every conformance fixture (tests/c14n.rs), and in debug
//! builds on every canonicalization the verifier performs.

use super::xml::{C14nMode, Document, Node, NodeKind};

/// Canonicalizes `apex` minus `exclude` in `mode`. Exclusive C14N (what every IdP uses) runs
/// natively; inclusive C14N 1.0, rare in SAML, goes through libxml2.
pub fn canonicalize(
    doc: &Document,
    apex: Node<'_>,
    exclude: Option<Node<'_>>,
    mode: C14nMode,
    inclusive_prefixes: &[&str],
) -> Result<Vec<u8>, String> {
    match mode {
        C14nMode::Inclusive10 => doc.canonicalize(apex, exclude, mode, inclusive_prefixes),
        C14nMode::Exclusive10 => {
            let mut out = Vec::with_capacity(4096);
            exclusive(apex, exclude, inclusive_prefixes, &mut out)?;
            // Debug builds (every test run) check each result against libxml2's C14N.
            #[cfg(debug_assertions)]
            {
                let reference = doc.canonicalize(apex, exclude, mode, inclusive_prefixes)?;
                assert!(
                    reference == out,
                    "exclusive C14N differs from libxml2:\nours:    {}\nlibxml2: {}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&reference)
                );
            }
            Ok(out)
        }
    }
}

/// Canonicalizes `apex` minus the subtree `exclude` (the enveloped-signature transform) into
/// `out`. `inclusive_prefixes` is the InclusiveNamespaces PrefixList (`#default` for the default
/// namespace): those namespaces follow inclusive C14N rules.
pub fn exclusive(
    apex: Node<'_>,
    exclude: Option<Node<'_>>,
    inclusive_prefixes: &[&str],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut walker = Walker {
        exclude,
        inclusive_prefixes,
        rendered: Vec::with_capacity(8),
        out,
    };
    walker.element(apex)
}

struct Walker<'a, 'o> {
    exclude: Option<Node<'a>>,
    inclusive_prefixes: &'o [&'o str],
    /// Namespace declarations rendered by output ancestors, innermost last: (prefix, uri).
    rendered: Vec<(&'a str, &'a str)>,
    out: &'o mut Vec<u8>,
}

impl<'a> Walker<'a, '_> {
    fn element(&mut self, element: Node<'a>) -> Result<(), String> {
        let mark = self.rendered.len();
        let mut declarations: Vec<(&'a str, &'a str)> = Vec::new();

        // Namespaces visibly utilized by the element and its attributes (exc-c14n 3, step 1).
        self.consider(
            &mut declarations,
            element.prefix().unwrap_or(""),
            element.namespace().unwrap_or(""),
        );
        let mut attributes: Vec<(&'a str, &'a str, Option<&'a str>, std::borrow::Cow<'a, str>)> =
            Vec::new();
        for attr in element.attributes() {
            if let Some(uri) = attr.namespace {
                let prefix = attr.prefix.unwrap_or("");
                if prefix != "xml" {
                    self.consider(&mut declarations, prefix, uri);
                }
            }
            attributes.push((
                attr.namespace.unwrap_or(""),
                attr.name,
                attr.prefix,
                attr.value.get(),
            ));
        }
        // InclusiveNamespaces: these prefixes follow inclusive C14N rules, i.e. they are
        // rendered wherever in scope unless an output ancestor already rendered the same value.
        for &listed in self.inclusive_prefixes {
            let prefix = if listed == "#default" { "" } else { listed };
            if prefix == "xml" {
                continue;
            }
            match in_scope(element, prefix) {
                Some((declared, uri)) => self.consider(&mut declarations, declared, uri),
                None if prefix.is_empty() => self.consider(&mut declarations, "", ""),
                None => {}
            }
        }
        declarations.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // Attributes by namespace URI, then local name; unqualified ones (URI "") first.
        attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

        self.out.push(b'<');
        write_qname(self.out, element.prefix(), element.local_name());
        for &(prefix, uri) in &declarations {
            self.out.extend_from_slice(b" xmlns");
            if !prefix.is_empty() {
                self.out.push(b':');
                self.out.extend_from_slice(prefix.as_bytes());
            }
            self.out.extend_from_slice(b"=\"");
            escape_attribute(self.out, uri);
            self.out.push(b'"');
            self.rendered.push((prefix, uri));
        }
        for (_, name, prefix, value) in &attributes {
            self.out.push(b' ');
            write_qname(self.out, *prefix, name);
            self.out.extend_from_slice(b"=\"");
            escape_attribute(self.out, value);
            self.out.push(b'"');
        }
        self.out.push(b'>');

        for child in element.children() {
            match child.kind() {
                NodeKind::Element if Some(child) == self.exclude => {}
                NodeKind::Element => self.element(child)?,
                NodeKind::Text => escape_text(self.out, child.text()),
                NodeKind::Comment => {}
                // The inventory refuses processing instructions and entity references before
                // any signature work; meeting one here means the caller skipped it.
                other => return Err(format!("cannot canonicalize a {other:?} node")),
            }
        }

        self.out.extend_from_slice(b"</");
        write_qname(self.out, element.prefix(), element.local_name());
        self.out.push(b'>');
        self.rendered.truncate(mark);
        Ok(())
    }

    /// Adds `(prefix, uri)` to the element's declarations unless the nearest output ancestor
    /// already rendered the same value. An empty default namespace (`xmlns=""`) is only needed
    /// to undo a non-empty one an output ancestor rendered.
    fn consider(&self, declarations: &mut Vec<(&'a str, &'a str)>, prefix: &'a str, uri: &'a str) {
        if declarations.iter().any(|(p, _)| *p == prefix) {
            return;
        }
        let current = self
            .rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| *u);
        let needed = if prefix.is_empty() && uri.is_empty() {
            current.is_some_and(|u| !u.is_empty())
        } else {
            current != Some(uri)
        };
        if needed {
            declarations.push((prefix, uri));
        }
    }
}

/// The namespace URI bound to `prefix` ("" = default) at `element`, searching its ancestors too
/// (in-scope namespaces include those declared outside the apex).
fn in_scope<'a>(element: Node<'a>, prefix: &str) -> Option<(&'a str, &'a str)> {
    let mut cursor = Some(element);
    while let Some(node) = cursor {
        for (declared, uri) in node.namespace_declarations() {
            let declared = declared.unwrap_or("");
            if declared == prefix {
                return Some((declared, uri));
            }
        }
        cursor = node.parent();
    }
    None
}

fn write_qname(out: &mut Vec<u8>, prefix: Option<&str>, local: &str) {
    if let Some(prefix) = prefix {
        out.extend_from_slice(prefix.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(local.as_bytes());
}

/// Text node escaping (C14N 1.0 section 2.3).
fn escape_text(out: &mut Vec<u8>, text: &str) {
    escape(out, text, |b| match b {
        b'&' => Some(&b"&amp;"[..]),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Attribute value escaping (C14N 1.0 section 2.3).
fn escape_attribute(out: &mut Vec<u8>, text: &str) {
    escape(out, text, |b| match b {
        b'&' => Some(&b"&amp;"[..]),
        b'<' => Some(b"&lt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#x9;"),
        b'\n' => Some(b"&#xA;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

fn escape(out: &mut Vec<u8>, text: &str, replacement: impl Fn(u8) -> Option<&'static [u8]>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(escaped) = replacement(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escaped);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}
