//! The request context: condition keys and their values.

use std::borrow::Cow;
use std::collections::HashMap;

/// Condition keys of one request (`aws:username`, `mlflow:ExperimentTag/team`, ...), each
/// with one or more string values.
///
/// Key names are case-insensitive, as in AWS: they are stored lowercased. A key set to an
/// empty list is absent, so `Null`, `...IfExists` and the set operators see one notion of
/// "missing".
#[derive(Default, Clone, Debug)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    /// Adds `value` to `key`; a key inserted twice is multi-valued (`aws:TagKeys`).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(normalize_key(key).into_owned())
            .or_default()
            .push(value.into());
    }

    /// Replaces all values of `key`; an empty list removes the key.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let key = normalize_key(key);
        if values.is_empty() {
            self.values.remove(key.as_ref());
        } else {
            self.values.insert(key.into_owned(), values);
        }
    }

    /// The values of `key`, which is matched case-insensitively.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.get_normalized(&normalize_key(key))
    }

    /// Every key (lowercased) with its values, sorted by key.
    pub fn entries(&self) -> Vec<(&str, &[String])> {
        let mut entries: Vec<_> = self
            .values
            .iter()
            .map(|(key, values)| (key.as_str(), values.as_slice()))
            .collect();
        entries.sort_unstable();
        entries
    }

    /// Lookup for a key that the policy parser already normalized: no allocation.
    pub(crate) fn get_normalized(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }
}

/// The one case folding used for key names, on both the policy and the context side.
pub(crate) fn normalize_key(key: &str) -> Cow<'_, str> {
    if key.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(key.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut context = Context::default();
        context.insert("aws:UserName", "alice");
        assert_eq!(context.get("aws:username"), Some(&["alice".to_owned()][..]));
        assert_eq!(context.get("AWS:USERNAME"), Some(&["alice".to_owned()][..]));
        assert_eq!(
            context.get_normalized("aws:username"),
            Some(&["alice".to_owned()][..])
        );
    }

    #[test]
    fn non_ascii_keys_fold_too() {
        let mut context = Context::default();
        context.insert("mlflow:ExperimentTag/ÉQUIPE", "x");
        assert!(context.get("mlflow:experimenttag/équipe").is_some());
    }

    #[test]
    fn insert_appends_and_set_replaces() {
        let mut context = Context::default();
        context.insert("aws:TagKeys", "a");
        context.insert("aws:tagkeys", "b");
        assert_eq!(context.get("aws:TagKeys").unwrap(), ["a", "b"]);
        context.set("AWS:TagKeys", vec!["c".to_owned()]);
        assert_eq!(context.get("aws:TagKeys").unwrap(), ["c"]);
    }

    #[test]
    fn setting_an_empty_list_removes_the_key() {
        let mut context = Context::default();
        context.insert("aws:TagKeys", "a");
        context.set("aws:TagKeys", Vec::new());
        assert_eq!(context.get("aws:TagKeys"), None);
    }

    #[test]
    fn values_keep_their_case() {
        let mut context = Context::default();
        context.insert("aws:username", "Alice");
        assert_eq!(context.get("aws:username").unwrap(), ["Alice"]);
    }
}
