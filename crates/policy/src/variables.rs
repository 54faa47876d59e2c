//! Policy variables (`${aws:username}`, `${key, 'default'}`, `${*}`) and the parsing of
//! policy strings into [`Piece`]s: literal text, wildcards and variables.

use crate::context::{Context, normalize_key};

/// One part of a parsed policy string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(Box<str>),
    /// `*`: any run of characters, possibly empty.
    AnyString,
    /// `?`: exactly one character.
    AnyChar,
    Variable(Variable),
}

/// `${key}` or `${key, 'default'}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Variable {
    /// Normalized like context keys.
    key: Box<str>,
    default: Option<Box<str>>,
}

impl Variable {
    /// The context key it reads, normalized.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The substituted text: the key's single value, else the default. `None` when the key is
    /// absent or multi-valued and there is no default: the string that holds the variable
    /// then matches nothing.
    pub(crate) fn resolve<'a>(&'a self, context: &'a Context) -> Option<&'a str> {
        match context.get_normalized(&self.key) {
            Some([value]) => Some(value),
            _ => self.default.as_deref(),
        }
    }
}

/// How a policy string is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (Resource, StringLike, Arn*, Action) or plain text (StringEquals).
    pub(crate) wildcards: bool,
    /// `${...}` is a variable: only in `Version: "2012-10-17"` policies, as in AWS.
    pub(crate) variables: bool,
}

/// Splits `text` into pieces; adjacent literal text is merged into one piece.
pub(crate) fn parse_pieces(text: &str, syntax: Syntax) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '*' | '?' if syntax.wildcards => {
                flush(&mut pieces, &mut literal);
                pieces.push(if c == '*' {
                    Piece::AnyString
                } else {
                    Piece::AnyChar
                });
                rest = &rest[1..];
            }
            '$' if syntax.variables && rest.starts_with("${") => {
                let (variable, after) = parse_variable(rest)?;
                match variable {
                    Parsed::Escaped(c) => literal.push(c),
                    Parsed::Variable(variable) => {
                        flush(&mut pieces, &mut literal);
                        pieces.push(Piece::Variable(variable));
                    }
                }
                rest = after;
            }
            _ => {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    flush(&mut pieces, &mut literal);
    Ok(pieces)
}

fn flush(pieces: &mut Vec<Piece>, literal: &mut String) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal).into_boxed_str()));
    }
}

enum Parsed {
    /// `${*}`, `${?}`, `${$}`: the character itself, never a wildcard.
    Escaped(char),
    Variable(Variable),
}

/// Parses the variable at the start of `text` (which starts with `${`); returns it and the rest.
fn parse_variable(text: &str) -> Result<(Parsed, &str), String> {
    let body = &text[2..];
    for (escape, c) in [("*}", '*'), ("?}", '?'), ("$}", '$')] {
        if let Some(rest) = body.strip_prefix(escape) {
            return Ok((Parsed::Escaped(c), rest));
        }
    }
    let key_end = body
        .find([',', '}'])
        .ok_or_else(|| format!("unterminated policy variable in {text:?}"))?;
    let key = &body[..key_end];
    if key.is_empty() {
        return Err("empty policy variable \"${}\"".to_owned());
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!(
            "policy variable \"${{{key}}}\" must not contain spaces"
        ));
    }
    validate_key(key).map_err(|reason| format!("policy variable \"${{{key}}}\": {reason}"))?;
    let key = normalize_key(key).into_owned().into_boxed_str();
    let after_key = &body[key_end..];
    if let Some(rest) = after_key.strip_prefix('}') {
        return Ok((Parsed::Variable(Variable { key, default: None }), rest));
    }
    // `, 'default'}`: spaces are allowed around the quoted default, nowhere else.
    let quoted = after_key[1..].trim_start();
    let malformed =
        || format!("malformed default in policy variable {text:?}: expected ${{key, 'default'}}");
    let inner = quoted.strip_prefix('\'').ok_or_else(malformed)?;
    let quote_end = inner.find('\'').ok_or_else(malformed)?;
    let rest = inner[quote_end + 1..]
        .trim_start()
        .strip_prefix('}')
        .ok_or_else(malformed)?;
    let default = Some(inner[..quote_end].into());
    Ok((Parsed::Variable(Variable { key, default }), rest))
}

/// Rules shared by condition keys and variable names: `prefix:name`, printable, no braces.
pub(crate) fn validate_key(key: &str) -> Result<(), String> {
    const MAX_KEY_BYTES: usize = 256;
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("key is longer than {MAX_KEY_BYTES} bytes"));
    }
    match key.split_once(':') {
        Some((prefix, name)) if !prefix.is_empty() && !name.is_empty() => {}
        _ => return Err("a key must look like \"prefix:name\"".to_owned()),
    }
    if key
        .chars()
        .any(|c| c.is_control() || matches!(c, '$' | '{' | '}' | '\'' | ','))
    {
        return Err("a key must not contain control characters or any of $ { } ' ,".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn literal(s: &str) -> Piece {
        Piece::Literal(s.into())
    }

    fn variable(key: &str, default: Option<&str>) -> Piece {
        Piece::Variable(Variable {
            key: key.into(),
            default: default.map(Into::into),
        })
    }

    #[test]
    fn wildcards_and_variables() {
        assert_eq!(
            parse_pieces("home/${aws:username}/*.txt?", ALL).unwrap(),
            [
                literal("home/"),
                variable("aws:username", None),
                literal("/"),
                Piece::AnyString,
                literal(".txt"),
                Piece::AnyChar
            ]
        );
    }

    #[test]
    fn variable_names_are_normalized_like_context_keys() {
        assert_eq!(
            parse_pieces("${aws:PrincipalTag/Team}", ALL).unwrap(),
            [variable("aws:principaltag/team", None)]
        );
    }

    #[test]
    fn escapes_are_literal_characters_merged_with_their_neighbours() {
        assert_eq!(
            parse_pieces("a${*}b${?}c${$}d", ALL).unwrap(),
            [literal("a*b?c$d")]
        );
    }

    #[test]
    fn default_value_syntax() {
        assert_eq!(
            parse_pieces("${aws:PrincipalTag/team, 'company-wide'}", ALL).unwrap(),
            [variable("aws:principaltag/team", Some("company-wide"))]
        );
        assert_eq!(
            parse_pieces("${aws:username,'x'}", ALL).unwrap(),
            [variable("aws:username", Some("x"))]
        );
        assert_eq!(
            parse_pieces("${aws:username, ''}", ALL).unwrap(),
            [variable("aws:username", Some(""))]
        );
        // A brace inside the quoted default does not end the variable; wildcards inside it
        // are literal text of the substitution.
        assert_eq!(
            parse_pieces("${aws:username, 'a}*'}z", ALL).unwrap(),
            [variable("aws:username", Some("a}*")), literal("z")]
        );
    }

    #[test]
    fn without_variables_the_syntax_is_literal_text() {
        let syntax = Syntax {
            wildcards: true,
            variables: false,
        };
        assert_eq!(
            parse_pieces("${aws:username}*", syntax).unwrap(),
            [literal("${aws:username}"), Piece::AnyString]
        );
    }

    #[test]
    fn without_wildcards_stars_are_text() {
        let syntax = Syntax {
            wildcards: false,
            variables: true,
        };
        assert_eq!(parse_pieces("a*?", syntax).unwrap(), [literal("a*?")]);
    }

    #[test]
    fn lone_dollar_is_literal() {
        assert_eq!(
            parse_pieces("$5 and $", ALL).unwrap(),
            [literal("$5 and $")]
        );
    }

    #[test]
    fn malformed_variables_are_errors() {
        for (text, expected) in [
            ("${aws:username", "unterminated policy variable"),
            ("${}", "empty policy variable"),
            ("${ aws:username}", "must not contain spaces"),
            ("${username}", "prefix:name"),
            ("${aws:username, default}", "malformed default"),
            ("${aws:username, 'default}", "malformed default"),
            ("${aws:username, 'a' b}", "malformed default"),
        ] {
            let error = parse_pieces(text, ALL).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn resolve_uses_single_value_else_default() {
        let mut context = Context::default();
        let Piece::Variable(name) = &parse_pieces("${aws:UserName, 'nobody'}", ALL).unwrap()[0]
        else {
            unreachable!()
        };
        assert_eq!(name.resolve(&context), Some("nobody"));
        context.insert("aws:username", "alice");
        assert_eq!(name.resolve(&context), Some("alice"));
        context.insert("aws:username", "bob");
        assert_eq!(
            name.resolve(&context),
            Some("nobody"),
            "a multi-valued key does not substitute"
        );

        let Piece::Variable(bare) = &parse_pieces("${aws:username}", ALL).unwrap()[0] else {
            unreachable!()
        };
        assert_eq!(bare.resolve(&context), None);
        assert_eq!(bare.resolve(&Context::default()), None);
    }

    #[test]
    fn key_validation() {
        assert!(validate_key("aws:username").is_ok());
        assert!(validate_key("mlflow:ExperimentTag/my team").is_ok());
        assert!(validate_key("username").is_err());
        assert!(validate_key(":x").is_err());
        assert!(validate_key("aws:").is_err());
        assert!(validate_key("aws:a}b").is_err());
        assert!(validate_key(&format!("aws:{}", "x".repeat(300))).is_err());
    }
}
