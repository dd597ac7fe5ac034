//! A typed reader over one TOML table: every problem recorded with its path, every key never
//! asked about reported as unknown.

use std::collections::BTreeSet;
use std::fmt;

use toml::{Table, Value};

/// Reads typed keys from one table, recording problems with their path, and reports every key
/// it was never asked about as unknown.
pub(super) struct Reader<'a> {
    pub(super) table: &'a Table,
    path: String,
    pub(super) problems: &'a mut Vec<String>,
    pub(super) known: BTreeSet<&'static str>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(table: &'a Table, path: String, problems: &'a mut Vec<String>) -> Self {
        Reader { table, path, problems, known: BTreeSet::new() }
    }

    pub(super) fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn problem(&mut self, key: &str, message: impl fmt::Display) {
        let at = self.at(key);
        self.problems.push(format!("{at}: {message}"));
    }

    pub(super) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.insert(key);
        self.table.get(key)
    }

    pub(super) fn string(&mut self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.trim().is_empty() => {
                self.problem(key, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(key, expected("a string", other));
                None
            }
        }
    }

    /// Entity IDs go into every AuthnRequest and SP metadata document and are compared by
    /// string: whitespace or a control character in one is a typo at best and a message that
    /// no longer parses (or parses as something else) at worst (`saml::url`).
    pub(super) fn check_identifier(&mut self, key: &str, value: Option<&str>) {
        if let Some(problem) = value.and_then(crate::saml::url::identifier_problem) {
            self.problem(key, problem);
        }
    }

    /// URLs that go into messages or back to a caller as a redirect: absolute http(s) with a
    /// host, nothing a header or an XML attribute would read differently (`saml::url`).
    pub(super) fn check_endpoint(&mut self, key: &str, value: Option<&str>) {
        if let Some(problem) = value.and_then(crate::saml::url::endpoint_problem) {
            self.problem(key, problem);
        }
    }

    pub(super) fn required_string(&mut self, key: &'static str) -> Option<String> {
        let value = self.string(key);
        if value.is_none() && !self.table.contains_key(key) {
            self.problem(key, "is required");
        }
        value
    }

    pub(super) fn boolean(&mut self, key: &'static str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.problem(key, expected("true or false", other));
                default
            }
        }
    }

    pub(super) fn integer(&mut self, key: &'static str, default: i64, range: std::ops::RangeInclusive<i64>) -> i64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(n)) if range.contains(n) => *n,
            Some(Value::Integer(n)) => {
                let n = *n;
                self.problem(key, format!("{n} is outside {}..={}", range.start(), range.end()));
                default
            }
            Some(other) => {
                self.problem(key, expected("an integer", other));
                default
            }
        }
    }

    pub(super) fn strings(&mut self, key: &'static str) -> Vec<String> {
        self.list(
            key,
            |item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(expected("a string", other)),
            },
            |other| expected("a list of strings", other),
        )
    }

    pub(super) fn table(&mut self, key: &'static str) -> Option<Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t.clone()),
            other => {
                self.problem(key, expected("a table", other));
                None
            }
        }
    }

    pub(super) fn array_of_tables(&mut self, key: &'static str) -> Vec<Table> {
        self.list(
            key,
            |item| match item {
                Value::Table(t) => Ok(t.clone()),
                _ => Err("expected a table".to_string()),
            },
            |_| "expected [[tenants]] tables".to_string(),
        )
    }

    /// The items of the list at `key` that `item` accepts (none when the key is absent); every
    /// other item is a problem at `key[i]`, so that one bad entry does not hide the rest, and
    /// a value that is no list at all is one problem at `key`.
    fn list<T>(
        &mut self,
        key: &'static str,
        item: impl Fn(&Value) -> Result<T, String>,
        not_a_list: impl FnOnce(&Value) -> String,
    ) -> Vec<T> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, value) in items.iter().enumerate() {
                    match item(value) {
                        Ok(accepted) => out.push(accepted),
                        Err(problem) => self.problem(&format!("{key}[{i}]"), problem),
                    }
                }
                out
            }
            Some(other) => {
                self.problem(key, not_a_list(other));
                Vec::new()
            }
        }
    }

    /// Reports keys present in the table that no reader asked for (typos must not be ignored:
    /// `alow_sha1 = false` silently meaning "default" is how relaxations sneak in).
    pub(super) fn finish(self) {
        for key in self.table.keys() {
            if !self.known.contains(key.as_str()) {
                let at = self.at(key);
                let known = self.known.iter().copied().collect::<Vec<_>>().join(", ");
                self.problems.push(format!("{at}: unknown key (known keys: {known})"));
            }
        }
    }
}

/// The problem of a value of the wrong type, named as TOML names it.
fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_str())
}
