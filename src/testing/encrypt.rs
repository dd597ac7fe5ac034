//! XML Encryption for the test IdP: EncryptedAssertion (and EncryptedID / EncryptedAttribute)
//! in the shapes IdPs send, for round trips, tampering tests and benchmarks. Like the signing
//! side it shares no code with the decryptor, but it is written by the same hands: the
//! conformance corpus (real IdP ciphertexts, decrypted with xmlsec1) is the independent check.

use base64::Engine as _;
use openssl::md::Md;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher};

use super::idp::{ResponseSpec, Signing, TestIdp};
use crate::saml::ns::{self, alg, enc};

/// Algorithms and layout of one encrypted element.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    /// Content encryption URI (`enc::AES256_CBC`, `enc::AES128_GCM`, ...).
    pub content: &'static str,
    /// Key transport URI (`enc::RSA_OAEP_MGF1P`, `enc::RSA_OAEP`, `enc::RSA_1_5`).
    pub key_transport: &'static str,
    /// OAEP ds:DigestMethod (None: omitted, which means SHA-1).
    pub oaep_digest: Option<&'static str>,
    /// xenc11:MGF (None: omitted, which means MGF1 with SHA-1).
    pub mgf: Option<&'static str>,
    /// EncryptedKey beside the EncryptedData, named by a ds:RetrievalMethod (Okta's layout),
    /// instead of inside its KeyInfo (Entra's and AD FS's).
    pub retrieval_method: bool,
    /// The `saml:` prefix of the encrypted element and of its container is declared on the
    /// Response, not on either of them (python3-saml's `response_encrypted_nameid` layout):
    /// xmlenc-core1 4.5 parses the plaintext in the context of the EncryptedData's parent.
    pub context_namespace: bool,
}

impl EncryptOptions {
    /// What Entra ID sends with "Token encryption": AES-256-CBC, RSA-OAEP-MGF1P, key inside.
    pub fn entra() -> EncryptOptions {
        EncryptOptions {
            content: enc::AES256_CBC,
            key_transport: enc::RSA_OAEP_MGF1P,
            oaep_digest: Some(alg::SHA1),
            mgf: None,
            retrieval_method: false,
            context_namespace: false,
        }
    }

    /// XML Encryption 1.1: AES-256-GCM, RSA-OAEP with SHA-256 and MGF1-SHA-256.
    pub fn gcm() -> EncryptOptions {
        EncryptOptions {
            content: enc::AES256_GCM,
            key_transport: enc::RSA_OAEP,
            oaep_digest: Some(alg::SHA256),
            mgf: Some(enc::MGF1_SHA256),
            retrieval_method: false,
            context_namespace: false,
        }
    }
}

fn ssl(e: openssl::error::ErrorStack) -> String {
    e.to_string()
}

fn random(len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    openssl::rand::rand_bytes(&mut out).map_err(ssl)?;
    Ok(out)
}

fn md(uri: Option<&str>) -> Result<&'static openssl::md::MdRef, String> {
    Ok(match uri {
        None | Some(alg::SHA1) | Some(enc::MGF1_SHA1) => Md::sha1(),
        Some(alg::SHA256) | Some(enc::MGF1_SHA256) => Md::sha256(),
        Some(alg::SHA384) | Some(enc::MGF1_SHA384) => Md::sha384(),
        Some(alg::SHA512) | Some(enc::MGF1_SHA512) => Md::sha512(),
        Some(other) => return Err(format!("test IdP cannot use {other}")),
    })
}

/// `plaintext` encrypted for `recipient`'s public key: IV || ciphertext [|| tag], and the
/// wrapped content key.
fn seal(plaintext: &[u8], recipient: &TestIdp, options: &EncryptOptions) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (cipher, gcm) = match options.content {
        enc::AES128_CBC => (Cipher::aes_128_cbc(), false),
        enc::AES192_CBC => (Cipher::aes_192_cbc(), false),
        enc::AES256_CBC => (Cipher::aes_256_cbc(), false),
        enc::AES128_GCM => (Cipher::aes_128_gcm(), true),
        enc::AES192_GCM => (Cipher::aes_192_gcm(), true),
        enc::AES256_GCM => (Cipher::aes_256_gcm(), true),
        other => return Err(format!("test IdP cannot encrypt with {other}")),
    };
    let key = random(cipher.key_len())?;
    let data = if gcm {
        let iv = random(12)?;
        let mut tag = [0u8; 16];
        let body = symm::encrypt_aead(cipher, &key, Some(&iv), &[], plaintext, &mut tag).map_err(ssl)?;
        [iv, body, tag.to_vec()].concat()
    } else {
        let iv = random(16)?;
        // xmlenc-core1 5.2.1 padding: arbitrary bytes, the last one says how many.
        let pad = 16 - plaintext.len() % 16;
        let mut padded = plaintext.to_vec();
        padded.extend(random(pad - 1)?);
        padded.push(u8::try_from(pad).map_err(|e| e.to_string())?);
        let mut crypter = symm::Crypter::new(cipher, symm::Mode::Encrypt, &key, Some(&iv)).map_err(ssl)?;
        crypter.pad(false);
        let mut out = vec![0u8; padded.len() + 16];
        let mut n = crypter.update(&padded, &mut out).map_err(ssl)?;
        n += crypter.finalize(&mut out[n..]).map_err(ssl)?;
        out.truncate(n);
        [iv, out].concat()
    };
    let mut ctx = PkeyCtx::new(recipient.key()).map_err(ssl)?;
    ctx.encrypt_init().map_err(ssl)?;
    if options.key_transport == enc::RSA_1_5 {
        ctx.set_rsa_padding(Padding::PKCS1).map_err(ssl)?;
    } else {
        ctx.set_rsa_padding(Padding::PKCS1_OAEP).map_err(ssl)?;
        ctx.set_rsa_oaep_md(md(options.oaep_digest)?).map_err(ssl)?;
        ctx.set_rsa_mgf1_md(md(options.mgf)?).map_err(ssl)?;
    }
    let mut wrapped = Vec::new();
    ctx.encrypt_to_vec(&key, &mut wrapped).map_err(ssl)?;
    Ok((data, wrapped))
}

/// `<saml:{container}>` holding `plaintext` (an element's bytes) encrypted for `recipient`.
pub fn encrypt_element(
    container: &str,
    plaintext: &[u8],
    recipient: &TestIdp,
    options: &EncryptOptions,
) -> Result<String, String> {
    let (data, wrapped) = seal(plaintext, recipient, options)?;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let key_id = crate::saml::hex::lower(&random(8)?);
    let mut method = String::new();
    if let Some(digest) = options.oaep_digest {
        method.push_str(&format!("<ds:DigestMethod xmlns:ds=\"{}\" Algorithm=\"{digest}\"/>", ns::DSIG));
    }
    if let Some(mgf) = options.mgf {
        method.push_str(&format!("<xenc11:MGF xmlns:xenc11=\"{}\" Algorithm=\"{mgf}\"/>", enc::XENC11));
    }
    let encrypted_key = format!(
        "<xenc:EncryptedKey Id=\"_ek{key_id}\" xmlns:xenc=\"{}\"><xenc:EncryptionMethod Algorithm=\"{}\">{method}</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>",
        enc::XENC,
        options.key_transport,
        b64.encode(wrapped)
    );
    let (key_info, sibling) = if options.retrieval_method {
        (
            format!(
                "<ds:KeyInfo xmlns:ds=\"{}\"><ds:RetrievalMethod Type=\"{}\" URI=\"#_ek{key_id}\"/></ds:KeyInfo>",
                ns::DSIG,
                enc::TYPE_ENCRYPTED_KEY
            ),
            encrypted_key,
        )
    } else {
        (format!("<ds:KeyInfo xmlns:ds=\"{}\">{encrypted_key}</ds:KeyInfo>", ns::DSIG), String::new())
    };
    let declaration =
        if options.context_namespace { String::new() } else { format!(" xmlns:saml=\"{}\"", ns::ASSERTION) };
    Ok(format!(
        "<saml:{container}{declaration}><xenc:EncryptedData Id=\"_ed{key_id}\" Type=\"{}\" xmlns:xenc=\"{}\"><xenc:EncryptionMethod Algorithm=\"{}\"/>{key_info}<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>{sibling}</saml:{container}>",
        enc::TYPE_ELEMENT,
        enc::XENC,
        options.content,
        b64.encode(data)
    ))
}

/// Replaces the one `<Assertion ID="…">…</Assertion>` of `document` by `replacement`.
pub fn replace_assertion(document: &str, assertion_id: &str, replacement: &str) -> Result<String, String> {
    let start = document.find(&format!("<Assertion ID=\"{assertion_id}\"")).ok_or("no Assertion start tag")?;
    let end = document.rfind("</Assertion>").ok_or("no Assertion end tag")? + "</Assertion>".len();
    Ok(format!("{}{replacement}{}", &document[..start], &document[end..]))
}

/// `response` (as [`ResponseSpec::render`] writes it) with its Assertion in the `saml:` prefix
/// declared on the Response only, as python3-saml's and OneLogin's IdPs write it.
pub fn saml_prefixed(response: &str, assertion_id: &str) -> Result<String, String> {
    let start = response.find(&format!("<Assertion ID=\"{assertion_id}\"")).ok_or("no Assertion start tag")?;
    let end = response.rfind("</Assertion>").ok_or("no Assertion end tag")? + "</Assertion>".len();
    let own = format!(" xmlns=\"{}\"", ns::ASSERTION);
    // Every tag of the rendered Assertion is in the assertion namespace, and its text is
    // escaped: each '<' starts a tag.
    let assertion = response[start..end].replacen(&own, "", 1).replace("</", "\u{0}").replace('<', "<saml:");
    let assertion = assertion.replace('\u{0}', "</saml:");
    let protocol = format!(" xmlns:samlp=\"{}\"", ns::PROTOCOL);
    let head = response[..start].replacen(&protocol, &format!("{protocol} xmlns:saml=\"{}\"", ns::ASSERTION), 1);
    Ok(format!("{head}{assertion}{}", &response[end..]))
}

impl ResponseSpec {
    /// The response with its assertion encrypted for `recipient`, signed as `signing` says: the
    /// Assertion's signature is made before encryption (and travels inside it), the Response's
    /// after (over the EncryptedAssertion), as IdPs do.
    pub fn encrypted(
        &self,
        idp: &TestIdp,
        signing: Signing,
        recipient: &TestIdp,
        options: &EncryptOptions,
    ) -> Result<String, String> {
        let inner = match signing {
            Signing::Assertion | Signing::Both => Signing::Assertion,
            Signing::Response | Signing::Unsigned => Signing::Unsigned,
        };
        let (xml, tag) = if options.context_namespace {
            let mut xml = saml_prefixed(&self.render(), &self.assertion_id)?;
            if inner == Signing::Assertion {
                xml = idp.sign(&xml, &self.assertion_id, &Default::default())?;
            }
            (xml, "saml:Assertion")
        } else {
            (self.signed(idp, inner)?, "Assertion")
        };
        let start = xml.find(&format!("<{tag} ID=\"{}\"", self.assertion_id)).ok_or("no Assertion")?;
        let end = xml.rfind(&format!("</{tag}>")).ok_or("no Assertion end")? + tag.len() + 3;
        let sealed = encrypt_element("EncryptedAssertion", &xml.as_bytes()[start..end], recipient, options)?;
        let xml = format!("{}{sealed}{}", &xml[..start], &xml[end..]);
        if matches!(signing, Signing::Response | Signing::Both) {
            return idp.sign(&xml, &self.response_id, &Default::default());
        }
        Ok(xml)
    }
}
