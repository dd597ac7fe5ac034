//! Review item 7: decrypted content is parsed in the namespace context where its EncryptedData
//! stood (xmlenc-core1 4.5), as xmlsec1 and python3-saml do: an IdP may encrypt a
//! `<saml:Assertion>` or `<saml:NameID>` whose prefix only the Response declares.

use super::*;
use saml_validator::testing::encrypt::saml_prefixed;

fn in_context(options: EncryptOptions) -> EncryptOptions {
    EncryptOptions { context_namespace: true, ..options }
}

#[test]
fn an_encrypted_assertion_may_use_the_saml_prefix_declared_on_the_response() {
    let s = setup();
    let spec = s.h.spec();
    let prefixed = saml_prefixed(&spec.render(), &spec.assertion_id).unwrap();
    let own_tag = slice(&prefixed, "<saml:Assertion ", ">");
    assert!(!own_tag.contains("xmlns"), "the plaintext declares nothing itself: {own_tag}");
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        let options = in_context(options);
        for signing in [Signing::Assertion, Signing::Response, Signing::Both] {
            let xml = s.encrypted(signing, &options);
            assert!(xml.contains("<saml:EncryptedAssertion>"), "saml: is declared on the Response only");
            // The IdP signed the Assertion in the Response's context; exclusive C14N of the
            // decrypted one must give the same octets.
            let v = s.check(&xml).unwrap_or_else(|e| panic!("{options:?} {signing:?}: {e}"));
            assert_eq!(v.subject.name_id, "ada@contoso.example");
            assert_eq!(v.claims.groups.len(), 10);
            assert!(v.encrypted);
        }
    }
    // A prefix declared nowhere is still no namespace.
    let signed = s.h.idp.sign(&prefixed, &spec.assertion_id, &Default::default()).unwrap();
    let nowhere = slice(&signed, "<saml:Assertion ", "</saml:Assertion>").replace("saml:", "nowhere:");
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        let sealed = encrypt_element("EncryptedAssertion", nowhere.as_bytes(), &s.sp, &options).unwrap();
        let xml = replace_assertion(&spec.render(), &spec.assertion_id, &sealed).unwrap();
        assert_eq!(s.error(&xml).code, Code::DecryptionFailed);
    }
}

#[test]
fn an_encrypted_id_may_use_the_saml_prefix_declared_on_the_response() {
    let s = setup();
    let spec = s.h.spec();
    let xml = saml_prefixed(&spec.render(), &spec.assertion_id).unwrap();
    let name_id = slice(&xml, "<saml:NameID ", "</saml:NameID>");
    let secret = format!("<saml:NameID Format=\"{}\">bob@contoso.example</saml:NameID>", spec.name_id_format);
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        let options = in_context(options);
        let sign = |plaintext: &str| {
            let encrypted_id = encrypt_element("EncryptedID", plaintext.as_bytes(), &s.sp, &options).unwrap();
            assert!(encrypted_id.starts_with("<saml:EncryptedID>"));
            s.h.idp.sign(&replace_once(&xml, name_id, &encrypted_id), &spec.assertion_id, &Default::default()).unwrap()
        };
        let v = s.check(&sign(&secret)).unwrap();
        assert_eq!(v.subject.name_id, "bob@contoso.example");
        assert_eq!(v.subject.format.as_deref(), Some(spec.name_id_format.as_str()));
        let error = s.error(&sign(&secret.replace("saml:", "nowhere:")));
        assert_eq!(error.code, Code::DecryptionFailed, "a prefix declared nowhere: {error}");
    }
}

#[test]
fn a_plaintext_keeps_its_own_namespace_declarations_over_the_context() {
    let s = setup();
    // A default namespace on the Response must not replace the one the Assertion declares.
    let decoy = " xmlns=\"urn:example:decoy\"";
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        let xml = s.encrypted(Signing::Assertion, &options);
        let xml = replace_once(&xml, "<samlp:Response ", &format!("<samlp:Response{decoy} "));
        assert_eq!(s.check(&xml).unwrap().subject.name_id, "ada@contoso.example");
    }
    // Nor a saml: prefix bound to something else around an EncryptedID whose plaintext binds
    // saml: itself.
    let spec = s.h.spec();
    let xml = saml_prefixed(&spec.render(), &spec.assertion_id).unwrap();
    let name_id = slice(&xml, "<saml:NameID ", "</saml:NameID>");
    let secret = format!(
        "<saml:NameID xmlns:saml=\"{}\" Format=\"{}\">bob@contoso.example</saml:NameID>",
        ns::ASSERTION,
        spec.name_id_format
    );
    let encrypted_id = encrypt_element("EncryptedID", secret.as_bytes(), &s.sp, &EncryptOptions::gcm()).unwrap();
    let encrypted_id = replace_once(
        &encrypted_id.replace("</saml:EncryptedID>", "</x:EncryptedID>"),
        &format!("<saml:EncryptedID xmlns:saml=\"{}\">", ns::ASSERTION),
        &format!("<x:EncryptedID xmlns:x=\"{}\" xmlns:saml=\"urn:example:decoy\">", ns::ASSERTION),
    );
    let signed =
        s.h.idp.sign(&replace_once(&xml, name_id, &encrypted_id), &spec.assertion_id, &Default::default()).unwrap();
    assert_eq!(s.check(&signed).unwrap().subject.name_id, "bob@contoso.example");
}
