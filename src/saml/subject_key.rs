//! `subject.key`: a stable, opaque identifier for the user, per tenant. NameIDs change (an
//! email address is renamed, or reassigned to a new employee who then inherits the old
//! account), so a caller that binds accounts to the NameID can bind them to the wrong person;
//! the key is derived from the identifier the tenant names as the most stable one its IdP
//! sends (`subject_key_from`).
//!
//! The key is the hex SHA-256 of length-prefixed fields: a version tag, the tenant id, the
//! verified issuer, the source kind and the source value (for a NameID also its format and
//! qualifiers, which scope it: core 2.2.2, 8.3.7). Length prefixes make the encoding
//! unambiguous (no two field lists hash the same bytes); the tenant id and issuer keep keys of
//! two tenants, or two IdPs, apart even for equal values; the hash keeps a caller from reading
//! an email address out of the key or building the key of another user without an assertion.

use std::collections::BTreeMap;

use super::claims::Subject;
use super::error::{quote, Code, Error};
use super::policy::{AttributeMapping, SubjectKeySource};

/// SAML core 8.3.7.
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// Bumped if the encoding below ever changes (every key would change with it).
const VERSION: &str = "saml-validator/subject-key/v1";

/// What the key is derived from, all read from the signed assertion.
pub struct Inputs<'a> {
    pub tenant_id: &'a str,
    /// The verified Issuer.
    pub issuer: &'a str,
    pub subject: &'a Subject,
    pub attributes: &'a BTreeMap<String, Vec<String>>,
    pub mapping: &'a AttributeMapping,
}

/// The key for `inputs` from `source`, or `subject_key_missing` naming what was required and
/// what was found.
pub fn derive(source: &SubjectKeySource, inputs: &Inputs<'_>) -> Result<String, Error> {
    let subject = inputs.subject;
    let mut fields: Vec<Option<&str>> = vec![Some(VERSION), Some(inputs.tenant_id), Some(inputs.issuer)];
    fields.push(Some(source.kind()));
    match source {
        SubjectKeySource::ObjectId => {
            let value = single_value(inputs.attributes, &inputs.mapping.object_id, source)?;
            fields.push(Some(value));
        }
        SubjectKeySource::Attribute(name) => {
            let value = single_value(inputs.attributes, std::slice::from_ref(name), source)?;
            fields.extend([Some(name.as_str()), Some(value)]);
        }
        SubjectKeySource::PersistentNameId => {
            if subject.format.as_deref() != Some(PERSISTENT) {
                return Err(missing(
                    source,
                    format!(
                        "NameID Format is {}, expected {}",
                        subject.format.as_deref().map_or("absent".into(), quote),
                        quote(PERSISTENT)
                    ),
                ));
            }
            fields.extend([subject.name_qualifier.as_deref(), subject.sp_name_qualifier.as_deref()]);
            fields.push(Some(&subject.name_id));
        }
        SubjectKeySource::NameId => {
            fields.extend([
                subject.format.as_deref(),
                subject.name_qualifier.as_deref(),
                subject.sp_name_qualifier.as_deref(),
            ]);
            fields.push(Some(&subject.name_id));
        }
    }
    Ok(hex_sha256(&encode(&fields)))
}

/// The one non-empty value of the first of `names` the assertion carries. Two values would
/// make the key depend on their order, which no IdP promises.
fn single_value<'a>(
    attributes: &'a BTreeMap<String, Vec<String>>,
    names: &[String],
    source: &SubjectKeySource,
) -> Result<&'a str, Error> {
    for name in names {
        let values: Vec<&String> = attributes.get(name).into_iter().flatten().filter(|v| !v.is_empty()).collect();
        match values.as_slice() {
            [] => continue,
            [one] => return Ok(one.as_str()),
            more => {
                return Err(missing(
                    source,
                    format!("attribute {} has {} values, expected exactly one", quote(name), more.len()),
                ))
            }
        }
    }
    let wanted = names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ");
    Err(missing(source, format!("the assertion has no attribute {wanted} with a value")))
}

fn missing(source: &SubjectKeySource, found: String) -> Error {
    Error::new(Code::SubjectKeyMissing, format!("subject_key_from = {:?}: {found}", source.to_string()))
}

/// Each field as a presence byte, then (when present) its length as 8 bytes big-endian and
/// its bytes: absent and empty differ, and no field can run into the next.
fn encode(fields: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for field in fields {
        match field {
            None => out.push(0),
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u64).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

fn hex_sha256(bytes: &[u8]) -> String {
    super::hex::lower(&openssl::sha::sha256(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";

    fn subject(name_id: &str, format: Option<&str>) -> Subject {
        Subject {
            name_id: name_id.into(),
            format: format.map(str::to_string),
            name_qualifier: None,
            sp_name_qualifier: None,
            key: String::new(),
        }
    }

    fn key(
        source: &SubjectKeySource,
        tenant: &str,
        subject: &Subject,
        attributes: &[(&str, &[&str])],
    ) -> Result<String, Error> {
        let attributes: BTreeMap<String, Vec<String>> = attributes
            .iter()
            .map(|(name, values)| (name.to_string(), values.iter().map(|v| v.to_string()).collect()))
            .collect();
        let mapping = AttributeMapping::default();
        let inputs =
            Inputs { tenant_id: tenant, issuer: "https://idp/", subject, attributes: &attributes, mapping: &mapping };
        derive(source, &inputs)
    }

    #[test]
    fn parses_every_source_and_refuses_the_rest() {
        assert_eq!(SubjectKeySource::parse("object_id").unwrap(), SubjectKeySource::ObjectId);
        assert_eq!(SubjectKeySource::parse("attribute:uid").unwrap(), SubjectKeySource::Attribute("uid".into()));
        assert_eq!(SubjectKeySource::parse("attribute:uid").unwrap().to_string(), "attribute:uid");
        for bad in ["oid", "attribute:", "attribute: uid", "NameID", ""] {
            assert!(SubjectKeySource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_object_id_key_survives_a_renamed_name_id_and_is_per_tenant() {
        let oid: &[(&str, &[&str])] = &[(OID, &["d1ad9ce7-b322-4221-ab74-1e1011e1bbcb"])];
        let source = SubjectKeySource::ObjectId;
        let before = key(&source, "contoso", &subject("ada@contoso.example", None), oid).unwrap();
        let after = key(&source, "contoso", &subject("ada.king@contoso.example", None), oid).unwrap();
        assert_eq!(before, after);
        assert_eq!(before.len(), 64);
        assert_ne!(before, key(&source, "fabrikam", &subject("ada@contoso.example", None), oid).unwrap());
        let error = key(&source, "contoso", &subject("ada@contoso.example", None), &[]).unwrap_err();
        assert_eq!(error.code, Code::SubjectKeyMissing);
        assert!(error.message.contains("object_id") && error.message.contains(OID), "{}", error.message);
        let two: &[(&str, &[&str])] = &[(OID, &["a", "b"])];
        assert!(key(&source, "contoso", &subject("x", None), two).unwrap_err().message.contains("2 values"));
    }

    #[test]
    fn name_id_keys_depend_on_format_and_sources_never_collide() {
        let plain = key(&SubjectKeySource::NameId, "t", &subject("ada", None), &[]).unwrap();
        let formatted = key(&SubjectKeySource::NameId, "t", &subject("ada", Some(PERSISTENT)), &[]).unwrap();
        let persistent = key(&SubjectKeySource::PersistentNameId, "t", &subject("ada", Some(PERSISTENT)), &[]).unwrap();
        let attribute = key(&SubjectKeySource::Attribute("uid".into()), "t", &subject("x", None), &[("uid", &["ada"])]);
        assert_ne!(plain, formatted);
        assert_ne!(formatted, persistent);
        assert_ne!(persistent, attribute.unwrap());
        let error = key(&SubjectKeySource::PersistentNameId, "t", &subject("ada", None), &[]).unwrap_err();
        assert!(error.message.contains("absent") && error.message.contains(PERSISTENT), "{}", error.message);
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        assert_ne!(encode(&[Some("ab"), Some("c")]), encode(&[Some("a"), Some("bc")]));
        assert_ne!(encode(&[None]), encode(&[Some("")]));
    }
}
