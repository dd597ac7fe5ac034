//! Why a response would be refused, for the admin setting up SSO: every check that can run,
//! each with what was expected and what was found, instead of the first failure only.
//!
//! Safe to offer because it decides nothing: the verdict is the validator's own
//! ([`super::validate`], run first, unchanged), nothing is recorded, no claim is returned, and
//! the answer has no `valid` field for a caller to mistake for one. What the checklist reads
//! from a document whose signature did not verify is shown as found, never trusted; anything
//! that needs the tenant's private keys (an EncryptedID, an EncryptedAssertion) is judged only
//! by the verdict's equalized path, so the checklist is no decryption oracle. Certificates the
//! document carries in KeyInfo are described (thumbprints, subject, dates) so that "the IdP
//! signs with X, you configured Y" can be said, and are never used to verify.

use super::hex;
use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::x509::X509;
use serde::Serialize;

use super::checks::{self, Context};
use super::error::{Code, Error};
use super::hints;
use super::keys::KeyInfo;
use super::policy::{Limits, TenantPolicy};
use super::request::{Input, Request};
use super::xml::Node;
use super::{decrypt, dsig, ns, requirements, structure, time, xml};

/// The checklist: a different shape from a validation on purpose.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Diagnosis {
    /// What `/v1/validate` would answer: `None` when every check passes.
    pub verdict: Option<Verdict>,
    pub checks: Vec<Check>,
    pub signatures: Vec<SignatureReport>,
    /// The tenant's certificates, as configured (pinned or from metadata).
    pub configured_certificates: Vec<ConfiguredCertificate>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Verdict {
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    NotRun,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub result: Outcome,
    pub expected: Option<String>,
    pub found: Option<String>,
    /// For time checks: the instant found minus now, in seconds (negative: in the past).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_from_now: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SignatureReport {
    /// `response` or `assertion`.
    pub covers: &'static str,
    pub result: Outcome,
    pub signature_algorithm: Option<String>,
    pub digest_algorithm: Option<String>,
    /// SHA-256 thumbprint of the configured certificate that verified it.
    pub verified_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the document says signed it: untrusted, shown for comparison only.
    pub document_certificates: Vec<DocumentCertificate>,
}

/// A certificate from the document's KeyInfo. Never trusted, never used to verify.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DocumentCertificate {
    pub trusted: bool,
    pub sha256_thumbprint: String,
    pub sha1_thumbprint: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    /// Whether the tenant has this very certificate configured.
    pub configured: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConfiguredCertificate {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub expired: bool,
    pub days_left: Option<i64>,
}

/// Explains `input` at `request.now`. Bad input (not base64, not XML, over a limit) is the same
/// typed error as from [`super::validate`].
pub fn diagnose(
    input: Input<'_>,
    policy: &TenantPolicy,
    limits: &Limits,
    request: &Request<'_>,
) -> Result<Diagnosis, Error> {
    let verdict = match super::validate(input, policy, limits, request) {
        Ok(_) => None,
        Err(error) if stops_diagnosis(error.code) => return Err(error),
        Err(error) => Some(error),
    };
    let mut decoded = Vec::new();
    let bytes = super::document(input, limits, &mut decoded)?;
    let doc = xml::parse_within(bytes, limits.max_nodes)?;
    let inventory = structure::scan(&doc, limits)?;
    let rsa = decrypt::RsaBudget::new(limits, 0);
    let context = Context { policy, limits, rsa: &rsa, request, now: request.now };
    let response = inventory.root.is(ns::PROTOCOL, "Response").then_some(inventory.root);
    let assertion = match inventory.assertions.as_slice() {
        [only] => Some(*only),
        _ => None,
    };
    let mut list = Checklist { checks: Vec::new(), context: &context };
    if let Some(response) = response {
        list.response(response);
    }
    let signatures = signatures(&doc, &inventory, response, assertion, policy);
    let verified = signatures.iter().any(|s| s.result == Outcome::Pass);
    match assertion {
        Some(assertion) => list.assertion(assertion, response.is_none(), verified),
        None => list.checks.push(not_run(
            "assertion",
            if inventory.encrypted_assertions.is_empty() {
                "no single plain Assertion in the document"
            } else {
                "the assertion is encrypted: its checks are judged by the verdict alone"
            },
        )),
    }
    list.encryption(!inventory.encrypted_assertions.is_empty());
    let verdict = verdict.map(|error| Verdict {
        code: error.code.as_str(),
        hint: hint(error.code, policy, request, &signatures),
        message: error.message,
    });
    for check in &mut list.checks {
        if let Some(code) = check.code {
            check.hint =
                Code::ALL.iter().find(|c| c.as_str() == code).and_then(|c| hint(*c, policy, request, &signatures));
        }
    }
    Ok(Diagnosis {
        verdict,
        checks: list.checks,
        signatures,
        configured_certificates: policy
            .keys
            .iter()
            .map(|key| ConfiguredCertificate {
                info: key.info.clone(),
                expired: key.not_after.is_some_and(|t| t <= request.now),
                days_left: key.not_after.map(|t| (t - request.now).num_days()),
            })
            .collect(),
    })
}

/// Failures about the input itself, before there is a document to explain.
fn stops_diagnosis(code: Code) -> bool {
    matches!(
        code,
        Code::Base64Invalid
            | Code::PayloadTooLarge
            | Code::EncodingUnsupported
            | Code::XmlMalformed
            | Code::XmlTooComplex
            | Code::DoctypeForbidden
            | Code::ProcessingInstructionForbidden
            | Code::MalformedRequest
            | Code::AcsUrlUnknown
    )
}

struct Checklist<'a> {
    checks: Vec<Check>,
    context: &'a Context<'a>,
}

impl Checklist<'_> {
    fn push(&mut self, name: &'static str, result: Result<(), Error>, expected: Option<String>, found: Option<String>) {
        let (outcome, code, message) = match result {
            Ok(()) => (Outcome::Pass, None, None),
            Err(error) => (Outcome::Fail, Some(error.code.as_str()), Some(error.message)),
        };
        self.checks.push(Check {
            name,
            result: outcome,
            expected,
            found,
            seconds_from_now: None,
            code,
            message,
            hint: None,
        });
    }

    fn timed(&mut self, instant: Option<DateTime<Utc>>) {
        if let (Some(check), Some(instant)) = (self.checks.last_mut(), instant) {
            check.seconds_from_now = Some((instant - self.context.now).num_seconds());
        }
    }

    fn response(&mut self, response: Node<'_>) {
        let policy = self.context.policy;
        let request = self.context.request;
        self.push("version", checks::version(response), Some("2.0".into()), checks::attr(response, "Version"));
        self.push("status", checks::status(response), Some(ns::STATUS_SUCCESS.into()), status_code(response));
        self.push(
            "destination",
            checks::destination(response, self.context),
            Some(requirements::acs_wanted(policy, request.expected_acs_url)),
            checks::attr(response, "Destination"),
        );
        self.push(
            "response_issuer",
            checks::issuer(response, self.context, false).map(|_| ()),
            Some(policy.idp_entity_id.clone()),
            issuer_text(response),
        );
        self.push(
            "in_response_to",
            checks::in_response_to(checks::attr(response, "InResponseTo"), self.context),
            request.expected_request_id.map(str::to_string),
            checks::attr(response, "InResponseTo"),
        );
        let issued = checks::instant(response, "IssueInstant").ok().flatten();
        self.push(
            "response_issue_instant",
            checks::not_in_future(response, self.context).map(|_| ()),
            None,
            issued.map(time::format),
        );
        self.timed(issued);
    }

    fn assertion(&mut self, assertion: Node<'_>, bare: bool, verified: bool) {
        let policy = self.context.policy;
        self.push(
            "assertion_issuer",
            checks::issuer(assertion, self.context, true).map(|_| ()),
            Some(policy.idp_entity_id.clone()),
            issuer_text(assertion),
        );
        let issued = checks::instant(assertion, "IssueInstant").ok().flatten();
        let age = checks::not_in_future(assertion, self.context).and_then(|at| checks::not_too_old(at, self.context));
        self.push("issue_instant", age, None, issued.map(time::format));
        self.timed(issued);
        let subject = checks::child(assertion, ns::ASSERTION, "Subject");
        let encrypted_id = subject.is_some_and(|s| checks::child(s, ns::ASSERTION, "EncryptedID").is_some());
        match subject {
            // An EncryptedID is decrypted only behind a verified signature, as in validation.
            Some(_) if encrypted_id && !verified => {
                self.checks.push(not_run("subject", "the NameID is encrypted and no signature verified"))
            }
            // The NameID itself is personal data: the checklist says whether it is there, not what.
            Some(node) => self.push(
                "subject",
                checks::subject(node, self.context).map(|_| ()),
                None,
                Some(if encrypted_id { "EncryptedID".into() } else { "NameID".into() }),
            ),
            None => self.push("subject", Err(Error::new(Code::SubjectMissing, "Assertion has no Subject")), None, None),
        }
        if let Some(node) = subject {
            let data = checks::child(node, ns::ASSERTION, "SubjectConfirmation")
                .and_then(|c| checks::child(c, ns::ASSERTION, "SubjectConfirmationData"));
            let recipient = data.and_then(|d| checks::attr(d, "Recipient"));
            let expiry = data.and_then(|d| checks::instant(d, "NotOnOrAfter").ok().flatten());
            self.push(
                "subject_confirmation",
                checks::bearer_confirmation(node, bare, self.context).map(|_| ()),
                Some(self.context.acs_wanted()),
                recipient,
            );
            self.timed(expiry);
        }
        let conditions = checks::child(assertion, ns::ASSERTION, "Conditions");
        let audiences: Vec<String> = conditions
            .into_iter()
            .flat_map(|c| c.elements().filter(|n| n.is(ns::ASSERTION, "AudienceRestriction")))
            .flat_map(|r| r.elements().filter(|n| n.is(ns::ASSERTION, "Audience")))
            .filter_map(|a| xml::text_value(a).map(|t| t.into_owned()))
            .collect();
        self.push(
            "conditions",
            checks::conditions(assertion, self.context).map(|_| ()),
            Some(format!("audience {}", policy.sp_entity_id)),
            Some(format!("audience {}", if audiences.is_empty() { "none".into() } else { audiences.join(", ") })),
        );
        self.timed(conditions.and_then(|c| checks::instant(c, "NotOnOrAfter").ok().flatten()));
        let authn = checks::child(assertion, ns::ASSERTION, "AuthnStatement");
        self.push(
            "authn_statement",
            checks::authn_statement(assertion, self.context).map(|_| ()),
            None,
            authn.and_then(|a| checks::attr(a, "AuthnInstant")),
        );
    }

    fn encryption(&mut self, encrypted: bool) {
        let required = self.context.policy.require_encrypted_assertions;
        let result = if required && !encrypted {
            Err(Error::new(
                Code::AssertionNotEncrypted,
                "the assertion is not encrypted and the tenant sets require_encrypted_assertions",
            ))
        } else {
            Ok(())
        };
        self.push(
            "encryption",
            result,
            Some(if required { "encrypted" } else { "encrypted or not" }.into()),
            Some(if encrypted { "encrypted" } else { "not encrypted" }.into()),
        );
    }
}

/// The hint for a failure recorded earlier (the admin page's recent failures): only the code
/// and the tenant are known by then, not the document.
pub fn hint_for_code(code: Code, policy: &TenantPolicy, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    match code {
        Code::SignatureInvalid => Some(
            "The response is signed with a key none of the tenant's certificates holds: compare the untrusted certificate it carried with the tenant's. In Entra, SAML Certificates → download the Active certificate's Certificate (Base64) and paste it into the tenant (or paste the response below to see both side by side).".into(),
        ),
        other => hints::hint(other, policy, &Request { expected_request_id: None, expected_acs_url: None, now }),
    }
}

/// The signature's hint needs what the document carried; every other one the tenant alone.
fn hint(code: Code, policy: &TenantPolicy, request: &Request<'_>, signatures: &[SignatureReport]) -> Option<String> {
    match code {
        Code::SignatureInvalid => Some(signature_hint(policy, signatures)),
        other => hints::hint(other, policy, request),
    }
}

fn not_run(name: &'static str, why: &str) -> Check {
    Check {
        name,
        result: Outcome::NotRun,
        expected: None,
        found: None,
        seconds_from_now: None,
        code: None,
        message: Some(why.into()),
        hint: None,
    }
}

fn status_code(response: Node<'_>) -> Option<String> {
    let status = checks::child(response, ns::PROTOCOL, "Status")?;
    let code = checks::child(status, ns::PROTOCOL, "StatusCode")?;
    let mut found = checks::attr(code, "Value")?;
    if let Some(second) = checks::child(code, ns::PROTOCOL, "StatusCode").and_then(|c| checks::attr(c, "Value")) {
        found.push_str(&format!(" / {second}"));
    }
    Some(found)
}

fn issuer_text(element: Node<'_>) -> Option<String> {
    checks::child(element, ns::ASSERTION, "Issuer").and_then(|i| xml::text_value(i).map(|t| t.into_owned()))
}

/// Each signature in its place, verified exactly as validation does, one configured key at a
/// time so the report can name the one that verified.
fn signatures(
    doc: &xml::Document,
    inventory: &structure::Inventory<'_>,
    response: Option<Node<'_>>,
    assertion: Option<Node<'_>>,
    policy: &TenantPolicy,
) -> Vec<SignatureReport> {
    let configured: Vec<&str> = policy.keys.iter().map(|k| k.info.sha256_fingerprint.as_str()).collect();
    let slots = match structure::signature_slots(&inventory.signatures, response, assertion) {
        Ok(slots) => slots,
        Err(error) => {
            return vec![SignatureReport {
                covers: "document",
                result: Outcome::Fail,
                signature_algorithm: None,
                digest_algorithm: None,
                verified_by: None,
                code: Some(error.code.as_str()),
                message: Some(error.message),
                document_certificates: Vec::new(),
            }]
        }
    };
    let mut reports = Vec::new();
    for (covers, signed, signature) in [("response", response, slots.0), ("assertion", assertion, slots.1)] {
        let (Some(signed), Some(signature)) = (signed, signature) else { continue };
        let verified = dsig::verify(doc, signed, signature, &policy.keys, policy.allow_sha1);
        let verified_by = verified.is_ok().then(|| {
            policy
                .keys
                .iter()
                .find(|key| dsig::verify(doc, signed, signature, std::slice::from_ref(key), policy.allow_sha1).is_ok())
                .map(|key| key.info.sha256_fingerprint.clone())
        });
        let signed_info = checks::child(signature, ns::DSIG, "SignedInfo");
        let method = |parent: Option<Node<'_>>, name: &str| {
            parent.and_then(|p| checks::child(p, ns::DSIG, name)).and_then(|m| checks::attr(m, "Algorithm"))
        };
        let reference = signed_info.and_then(|s| checks::child(s, ns::DSIG, "Reference"));
        let (code, message) = match &verified {
            Ok(_) => (None, None),
            Err(error) => (Some(error.code.as_str()), Some(error.message.clone())),
        };
        reports.push(SignatureReport {
            covers,
            result: if verified.is_ok() { Outcome::Pass } else { Outcome::Fail },
            signature_algorithm: method(signed_info, "SignatureMethod"),
            digest_algorithm: method(reference, "DigestMethod"),
            verified_by: verified_by.flatten(),
            code,
            message,
            document_certificates: document_certificates(signature, &configured),
        });
    }
    reports
}

/// `KeyInfo/X509Data/X509Certificate`, described. Parsed only to be shown.
fn document_certificates(signature: Node<'_>, configured: &[&str]) -> Vec<DocumentCertificate> {
    let Some(key_info) = checks::child(signature, ns::DSIG, "KeyInfo") else { return Vec::new() };
    key_info
        .elements()
        .filter(|n| n.is(ns::DSIG, "X509Data"))
        .flat_map(|data| data.elements().filter(|n| n.is(ns::DSIG, "X509Certificate")))
        .filter_map(|node| xml::text_value(node))
        .filter_map(|text| {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, compact.as_bytes()).ok()?;
            let cert = X509::from_der(&der).ok()?;
            let sha256 = hex::lower(&cert.digest(MessageDigest::sha256()).ok()?);
            let sha1 = hex::lower(&cert.digest(MessageDigest::sha1()).ok()?);
            Some(DocumentCertificate {
                trusted: false,
                configured: configured.contains(&sha256.as_str()),
                sha256_thumbprint: sha256,
                sha1_thumbprint: sha1,
                subject: subject(&cert),
                not_before: cert.not_before().to_string(),
                not_after: cert.not_after().to_string(),
            })
        })
        .take(4)
        .collect()
}

fn subject(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|entry| {
            let name = entry.object().nid().short_name().unwrap_or("?");
            format!("{name}={}", entry.data().to_string().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which certificate the IdP really signs with, against the pasted ones.
fn signature_hint(policy: &TenantPolicy, signatures: &[SignatureReport]) -> String {
    let failed = signatures.iter().find(|s| s.result == Outcome::Fail);
    let carried = failed.and_then(|s| s.document_certificates.first());
    let pasted: Vec<&str> = policy.keys.iter().map(|k| k.info.sha256_fingerprint.as_str()).collect();
    match carried {
        Some(cert) if !cert.configured => format!(
            "The IdP signs with the certificate whose SHA-256 thumbprint is {} (SHA-1 {}, subject {}; read from the response, untrusted), but the tenant has {}. In Entra, SAML Certificates → Certificate (Base64): download the active certificate and paste it; during a rollover keep both.",
            cert.sha256_thumbprint,
            cert.sha1_thumbprint,
            cert.subject,
            if pasted.is_empty() { "no certificate".into() } else { format!("SHA-256 {}", pasted.join(", ")) }
        ),
        Some(_) => "The response names a certificate the tenant has, yet the signature does not verify: the response was changed after signing (a proxy rewriting it, or an attack).".into(),
        None => "The signature does not verify with the tenant's certificates. In Entra, SAML Certificates → Certificate (Base64): download the active certificate and paste it.".into(),
    }
}
