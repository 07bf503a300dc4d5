//! A policy document's JSON form (one policy, or a bundle of them in one array): the typed
//! documents' limits, and numbers that read as the decimals they write.

use super::{check_exact, parse_document};
use crate::error::Error;
use crate::limits::Limits;
use crate::rules::PolicyDocument;

impl PolicyDocument {
    /// Parses a policy from JSON. Fails with [`Error::Document`] on
    /// malformed JSON, unknown fields, wrong types, a number that does not read as the
    /// decimal it writes (more than 15 significant digits: write `{"decimal": "…"}`),
    /// nesting past the parser's bound, or a
    /// document larger than [`MAX_POLICY_BYTES`](crate::rules::MAX_POLICY_BYTES) (by default). Parsing does not check the rules; compile
    /// (or publish) does.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        Self::from_json_with(json, &Limits::default())
    }

    /// Parses a policy within `limits`: size, strings, then rules and the nesting of their
    /// conditions ([`check_limits`](Self::check_limits)). Past a limit: [`Error::Limit`].
    pub fn from_json_with(json: &str, limits: &Limits) -> Result<Self, Error> {
        let policy: Self = parse_document(
            "policy",
            json,
            limits,
            ("max_document_bytes", limits.max_document_bytes),
            |_| Ok(()),
        )?;
        policy.check_limits(limits)?;
        check_exact("policy", json, json, 0)?;
        Ok(policy)
    }

    /// Parses a JSON array of policies (a bundle kept in one file), with the same checks as
    /// [`from_json`](Self::from_json); the size limit applies to the whole file.
    pub fn list_from_json(json: &str) -> Result<Vec<Self>, Error> {
        Self::list_from_json_with(json, &Limits::default())
    }

    /// [`list_from_json`](Self::list_from_json) within `limits`.
    pub fn list_from_json_with(json: &str, limits: &Limits) -> Result<Vec<Self>, Error> {
        let policies: Vec<Self> = parse_document(
            "policy",
            json,
            limits,
            ("max_document_bytes", limits.max_document_bytes),
            |_| Ok(()),
        )?;
        for policy in &policies {
            policy.check_limits(limits)?;
        }
        check_exact("policy", json, json, 0)?;
        Ok(policies)
    }
}
