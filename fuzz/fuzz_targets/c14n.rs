//! Canonicalization: the native C14N (both modes) must never panic and must agree byte for byte
//! with libxml2's on every element of every parsable document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::c14n;
use saml_validator::saml::xml::{self, C14nMode, Node};

fn walk<'a>(node: Node<'a>, out: &mut Vec<Node<'a>>) {
    if out.len() < 64 {
        out.push(node);
        for child in node.elements() {
            walk(child, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = xml::parse(data) else { return };
    let Some(root) = doc.root() else { return };
    let mut elements = Vec::new();
    walk(root, &mut elements);
    for &apex in &elements {
        let exclude = apex.elements().next();
        for (mode, prefixes) in [
            (C14nMode::Exclusive10, &[][..]),
            (C14nMode::Exclusive10, &["a", "#default"][..]),
            (C14nMode::Inclusive10, &[][..]),
        ] {
            let mut ours = Vec::new();
            let native = c14n::write(apex, exclude, mode, prefixes, &mut ours);
            let reference = doc.canonicalize(apex, exclude, mode, prefixes);
            if let (Ok(()), Ok(reference)) = (native, reference) {
                assert_eq!(ours, reference, "C14N differs from libxml2 ({mode:?})");
            }
        }
    }
});
