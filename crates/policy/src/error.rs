//! The one error type of the crate: a policy document that was rejected, and why.

use std::fmt;

/// Why a policy document was rejected.
///
/// Errors inside a statement name it by 0-based index (the same numbering as the
/// `#<index>` labels of [`crate::Determining`]) and by `Sid` when it has one:
///
/// ```text
/// statement 2 (Sid "DenyProd"): unknown condition operator "StringEqualz"
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    statement_index: Option<usize>,
    sid: Option<String>,
    message: String,
}

impl PolicyError {
    /// An error about the document as a whole (JSON syntax, size, top-level elements).
    pub(crate) fn document(message: impl Into<String>) -> PolicyError {
        PolicyError {
            statement_index: None,
            sid: None,
            message: message.into(),
        }
    }

    /// An error inside statement `index`, whose `Sid` is `sid` when it has a valid one.
    pub(crate) fn statement(
        index: usize,
        sid: Option<&str>,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            statement_index: Some(index),
            sid: sid.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The 0-based index of the offending statement, when the error is inside one.
    pub fn statement_index(&self) -> Option<usize> {
        self.statement_index
    }

    /// The `Sid` of the offending statement, when it has one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The reason alone, without the statement prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.statement_index, &self.sid) {
            (Some(index), Some(sid)) => {
                write!(f, "statement {index} (Sid {sid:?}): {}", self.message)
            }
            (Some(index), None) => write!(f, "statement {index}: {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_statement_index_and_sid() {
        let error = PolicyError::statement(
            2,
            Some("DenyProd"),
            "unknown condition operator \"StringEqualz\"",
        );
        assert_eq!(
            error.to_string(),
            "statement 2 (Sid \"DenyProd\"): unknown condition operator \"StringEqualz\""
        );
        assert_eq!(error.statement_index(), Some(2));
        assert_eq!(error.sid(), Some("DenyProd"));
        assert_eq!(
            error.message(),
            "unknown condition operator \"StringEqualz\""
        );
    }

    #[test]
    fn display_without_sid_or_statement() {
        assert_eq!(
            PolicyError::statement(0, None, "missing Effect").to_string(),
            "statement 0: missing Effect"
        );
        let document = PolicyError::document("missing Statement");
        assert_eq!(document.to_string(), "missing Statement");
        assert_eq!(document.statement_index(), None);
        assert_eq!(document.sid(), None);
    }
}
