//! The native exclusive C14N (src/saml/c14n.rs) against libxml2's, byte for byte, on every
//! element of every conformance fixture and of generated documents, with and without the
//! enveloped-signature exclusion and with several InclusiveNamespaces prefix lists.

use std::path::Path;

use saml_validator::saml::c14n;
use saml_validator::saml::ns;
use saml_validator::saml::xml::{self, C14nMode, Document, Node};
use saml_validator::testing::idp::Signing;

fn elements<'a>(node: Node<'a>, out: &mut Vec<Node<'a>>) {
    out.push(node);
    for child in node.elements() {
        elements(child, out);
    }
}

fn compare_all(name: &str, doc: &Document) -> usize {
    let mut all = Vec::new();
    elements(doc.root().unwrap(), &mut all);
    let signatures: Vec<Node<'_>> = all.iter().copied().filter(|n| n.is(ns::DSIG, "Signature")).collect();
    let mut compared = 0;
    for &apex in &all {
        let excludes: Vec<Option<Node<'_>>> = std::iter::once(None)
            .chain(signatures.iter().filter(|s| s.parent() == Some(apex)).map(|s| Some(*s)))
            .collect();
        for exclude in excludes {
            let variants: [(C14nMode, &[&str]); 5] = [
                (C14nMode::Exclusive10, &[]),
                (C14nMode::Exclusive10, &["xs"]),
                (C14nMode::Exclusive10, &["#default"]),
                (C14nMode::Exclusive10, &["saml", "ds", "xs", "xsi", "#default"]),
                (C14nMode::Inclusive10, &[]),
            ];
            for (mode, prefixes) in variants {
                let mut ours = Vec::new();
                c14n::write(apex, exclude, mode, prefixes, &mut ours).unwrap();
                let reference = doc.canonicalize(apex, exclude, mode, prefixes).unwrap();
                assert!(
                    ours == reference,
                    "{name}: <{}> exclude={:?} {mode:?} prefixes={prefixes:?}\nours:    {}\nlibxml2: {}",
                    apex.local_name(),
                    exclude.is_some(),
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&reference)
                );
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn matches_libxml2_on_every_element_of_every_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut compared = 0;
    for sub in ["idp-responses", "idp-metadata"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("xml") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let doc = xml::parse(&bytes).unwrap();
            compared += compare_all(&path.display().to_string(), &doc);
        }
    }
    assert!(compared > 10_000, "compared {compared}");
}

#[test]
fn matches_libxml2_on_namespace_and_escaping_corner_cases() {
    let cases = [
        // Default namespace undeclared below a prefixed element, and redeclared.
        r#"<a:r xmlns:a="urn:a" xmlns="urn:d"><b xmlns=""><c/></b><d><e xmlns="urn:e"/></d></a:r>"#,
        // Unused and shadowed prefixes, attributes in namespaces, xml:* attributes.
        r#"<r xmlns:x="urn:x" xmlns:y="urn:y" xml:lang="en"><x:e y:b="2" a="1" x:a="3"><x:f xmlns:x="urn:x2"/></x:e></r>"#,
        // Escaping in text and attributes, CR from a character reference, tabs and newlines.
        "<r a=\"&lt;&amp;&quot;&#9;&#10;&#13;>'\">t&lt;&amp;&gt;&#13;\r\n\"'<!-- gone --></r>",
        // CDATA becomes escaped text.
        "<r><![CDATA[<not markup> & ]]]]></r>",
        // xml:* attributes inherited by an inclusive apex; xmlns="" below a default namespace.
        r#"<r xml:lang="en" xml:space="preserve" xmlns="urn:d"><m xml:lang="fr"><n xmlns=""><o xml:lang="de"/></n></m></r>"#,
        // xml:* attributes inherited by an inclusive apex; xmlns="" below a default namespace.
        r#"<r xml:lang="en" xml:space="preserve" xmlns="urn:d"><m xml:lang="fr"><n xmlns=""><o xml:lang="de"/></n></m></r>"#,
        // An element in the xml: namespace (bound by definition, never declared).
        r#"<r xmlns:a="urn:a"><xml:x a:b="1"/></r>"#,
        // Non-ASCII everywhere.
        "<r é=\"ü\" xmlns:ñ=\"urn:n\"><ñ:e>日本語 😀</ñ:e></r>",
        // Prefix list naming namespaces used only in attribute values (xsi:type).
        r#"<s:A xmlns:s="urn:s" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:V xsi:type="xs:string">v</s:V></s:A>"#,
    ];
    for (i, case) in cases.iter().enumerate() {
        let doc = xml::parse(case.as_bytes()).unwrap();
        compare_all(&format!("case {i}"), &doc);
    }
}

#[test]
fn matches_libxml2_on_generated_responses() {
    let h = crate::support::Harness::new();
    for signing in [Signing::Assertion, Signing::Response, Signing::Both] {
        let xml_text = h.signed(signing);
        let doc = xml::parse(xml_text.as_bytes()).unwrap();
        compare_all(&format!("{signing:?}"), &doc);
    }
}
