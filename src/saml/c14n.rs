//! Canonical XML 1.0 and Exclusive XML Canonicalization 1.0, both without comments (W3C
//! REC-xml-c14n-20010315, REC-xml-exc-c14n-20020718), over the parsed libxml2 tree, for one
//! subtree (minus the enveloped signature) at a time.
//!
//! libxml2's own `xmlC14NExecute` walks the whole document and asks a callback about every node,
//! attribute and namespace; in inclusive mode it also searches every ancestor namespace for every
//! element, which a hostile SignedInfo could turn into minutes of CPU before any key is checked.
//! This walks only the apex subtree with an explicit in-scope namespace stack. It is checked byte
//! for byte against libxml2 on every element of every conformance fixture (tests/c14n.rs), and in
//! debug builds on every canonicalization the verifier performs.

use super::ns;
use super::xml::{C14nMode, Document, Node, NodeKind};

/// Canonicalizes `apex` minus the subtree `exclude` (the enveloped-signature transform).
/// `inclusive_prefixes` is exclusive C14N's InclusiveNamespaces PrefixList (`#default` names
/// the default namespace); it is ignored in inclusive mode.
pub fn canonicalize<'d>(
    doc: &'d Document,
    apex: Node<'d>,
    exclude: Option<Node<'d>>,
    mode: C14nMode,
    inclusive_prefixes: &[&str],
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(4096);
    write(apex, exclude, mode, inclusive_prefixes, &mut out)?;
    // Debug builds (every test run) check each result against libxml2's C14N.
    #[cfg(debug_assertions)]
    {
        let reference = doc.canonicalize(apex, exclude, mode, inclusive_prefixes)?;
        assert!(
            reference == out,
            "C14N differs from libxml2 ({mode:?}):\nours:    {}\nlibxml2: {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&reference)
        );
    }
    #[cfg(not(debug_assertions))]
    let _ = doc;
    Ok(out)
}

/// Appends the canonical form of `apex` minus `exclude` to `out`.
pub fn write(
    apex: Node<'_>,
    exclude: Option<Node<'_>>,
    mode: C14nMode,
    inclusive_prefixes: &[&str],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    #[cfg(test)]
    let start = out.len();
    let mut walker = Walker {
        exclude,
        mode,
        inclusive_prefixes: if mode == C14nMode::Exclusive10 { inclusive_prefixes } else { &[] },
        in_scope: Vec::with_capacity(16),
        rendered: Vec::with_capacity(8),
        out,
    };
    // Namespaces declared on the apex's ancestors are in scope inside it, outermost first so
    // that inner declarations shadow outer ones when searching from the end.
    let mut ancestors = Vec::new();
    let mut cursor = apex.parent();
    while let Some(node) = cursor {
        ancestors.push(node);
        cursor = node.parent();
    }
    for ancestor in ancestors.iter().rev() {
        for (prefix, uri) in ancestor.namespace_declarations() {
            walker.in_scope.push((prefix.unwrap_or(""), uri));
        }
    }
    walker.element(apex, true, &ancestors)?;
    #[cfg(test)]
    super::tally::add(|tally| tally.canonical_bytes += out.len() - start);
    Ok(())
}

struct Walker<'a, 'o> {
    exclude: Option<Node<'a>>,
    mode: C14nMode,
    inclusive_prefixes: &'o [&'o str],
    /// Namespace declarations in scope, outermost first: (prefix, uri); "" is the default.
    in_scope: Vec<(&'a str, &'a str)>,
    /// Namespace declarations rendered by output ancestors, innermost last.
    rendered: Vec<(&'a str, &'a str)>,
    out: &'o mut Vec<u8>,
}

type Attribute<'a> = (&'a str, &'a str, Option<&'a str>, std::borrow::Cow<'a, str>);

impl<'a> Walker<'a, '_> {
    fn element(&mut self, element: Node<'a>, is_apex: bool, ancestors: &[Node<'a>]) -> Result<(), String> {
        let scope_mark = self.in_scope.len();
        let rendered_mark = self.rendered.len();
        for (prefix, uri) in element.namespace_declarations() {
            self.in_scope.push((prefix.unwrap_or(""), uri));
        }
        let mut declarations: Vec<(&'a str, &'a str)> = Vec::new();
        let mut attributes: Vec<Attribute<'a>> = Vec::new();
        for attr in element.attributes() {
            attributes.push((attr.namespace.unwrap_or(""), attr.name, attr.prefix, attr.value.get()));
        }

        match self.mode {
            C14nMode::Exclusive10 => {
                // Namespaces visibly utilized by the element and its attributes (exc-c14n 3.1).
                // The `xml` prefix is bound by definition and never declared (exc-c14n 3).
                let prefix = element.prefix().unwrap_or("");
                if prefix != "xml" {
                    self.consider(&mut declarations, prefix, element.namespace().unwrap_or(""));
                }
                for (uri, _, prefix, _) in &attributes {
                    if let Some(prefix) = prefix {
                        if *prefix != "xml" {
                            self.consider(&mut declarations, prefix, uri);
                        }
                    }
                }
                // InclusiveNamespaces follow inclusive rules: rendered wherever in scope unless
                // an output ancestor already rendered the same value.
                for &listed in self.inclusive_prefixes {
                    let prefix = if listed == "#default" { "" } else { listed };
                    if prefix == "xml" {
                        continue;
                    }
                    match self.lookup(prefix) {
                        Some((declared, uri)) => self.consider(&mut declarations, declared, uri),
                        None if prefix.is_empty() => self.consider(&mut declarations, "", ""),
                        None => {}
                    }
                }
            }
            C14nMode::Inclusive10 => {
                if is_apex {
                    // Every namespace in scope, nearest declaration per prefix (an inner
                    // `xmlns=""` hides an outer default namespace).
                    let mut seen: Vec<&str> = Vec::with_capacity(self.in_scope.len());
                    for i in (0..self.in_scope.len()).rev() {
                        let (prefix, uri) = self.in_scope[i];
                        if prefix != "xml" && !seen.contains(&prefix) {
                            seen.push(prefix);
                            self.consider(&mut declarations, prefix, uri);
                        }
                    }
                    // C14N 1.0 section 2.4: xml:* attributes of ancestors outside the node-set
                    // are inherited by the apex, nearest first, unless the apex has its own.
                    for ancestor in ancestors {
                        for attr in ancestor.attributes() {
                            if attr.namespace == Some(ns::XML)
                                && !attributes.iter().any(|(uri, name, _, _)| *uri == ns::XML && *name == attr.name)
                            {
                                attributes.push((ns::XML, attr.name, attr.prefix, attr.value.get()));
                            }
                        }
                    }
                } else {
                    for i in scope_mark..self.in_scope.len() {
                        let (prefix, uri) = self.in_scope[i];
                        if prefix != "xml" {
                            self.consider(&mut declarations, prefix, uri);
                        }
                    }
                }
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
                NodeKind::Element => self.element(child, false, &[])?,
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
        self.rendered.truncate(rendered_mark);
        self.in_scope.truncate(scope_mark);
        Ok(())
    }

    /// The nearest in-scope declaration of `prefix`.
    fn lookup(&self, prefix: &str) -> Option<(&'a str, &'a str)> {
        self.in_scope.iter().rev().find(|(p, _)| *p == prefix).copied()
    }

    /// Adds `(prefix, uri)` to the element's declarations unless the nearest output ancestor
    /// already rendered the same value. An empty default namespace (`xmlns=""`) is only needed
    /// to undo a non-empty one an output ancestor rendered.
    fn consider(&self, declarations: &mut Vec<(&'a str, &'a str)>, prefix: &'a str, uri: &'a str) {
        if declarations.iter().any(|(p, _)| same(p, prefix)) {
            return;
        }
        let current = self.rendered.iter().rev().find(|(p, _)| same(p, prefix)).map(|(_, u)| *u);
        let needed = if prefix.is_empty() && uri.is_empty() {
            current.is_some_and(|u| !u.is_empty())
        } else {
            !current.is_some_and(|u| same(u, uri))
        };
        if needed {
            declarations.push((prefix, uri));
        }
    }
}

/// String equality for names and URIs, which are usually the very strings libxml2 interned in
/// its dictionary: pointer equality first, then the bytes inline (these run for every
/// namespace of every element, and a `memcmp` call per short prefix showed in profiles).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a.bytes().zip(b.bytes()).all(|(x, y)| x == y))
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
