//! ARN patterns, for `Resource`/`NotResource` and the `Arn*` condition operators.
//!
//! AWS ARNs have six components (`arn:partition:service:region:account:resource`); mlgate's
//! own have five (`arn:mlflow:region:account:resource`). Both are handled by one rule: the
//! pattern is split at its first five `:` (never inside a `${...}` variable). Each pattern
//! component but the last matches exactly one `:`-free component of the ARN, so a wildcard
//! there never crosses a `:`; the last pattern component matches all the rest of the ARN,
//! `:` and `/` included. `arn:aws:execute-api:*` therefore covers every execute-api ARN,
//! while `arn:mlflow:*:111122223333:experiment/*` cannot be satisfied by another account's
//! resource whose id happens to contain `:111122223333:experiment/`.

use crate::context::Context;
use crate::glob::{Glob, Step};
use crate::variables::{Piece, Syntax, parse_pieces};

/// At most this many components; a pattern's sixth component takes the rest, colons included.
const COMPONENTS: usize = 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `"*"`: every resource, ARN or not.
    Any,
    /// 2 to 5 leading component globs, each matching one `:`-free component of the ARN, and
    /// the last one, matching the rest. `last` is inline: it rejects most ARNs on its own.
    Components { last: Glob, leading: Box<[Glob]> },
}

impl ArnPattern {
    pub(crate) fn parse(text: &str, variables: bool) -> Result<ArnPattern, String> {
        if text == "*" {
            return Ok(ArnPattern::Any);
        }
        let pieces = parse_pieces(
            text,
            Syntax {
                wildcards: true,
                variables,
            },
        )?;
        let components = split_components(pieces);
        if components[0] != [Piece::Literal("arn".into())] {
            return Err(format!(
                "{text:?} is neither \"*\" nor an ARN starting with \"arn:\""
            ));
        }
        // The component after `arn:` is the partition (`aws`) in AWS ARNs and the service
        // (`mlflow`) in mlgate's: a fixed namespace either way.
        if !matches!(
            components.get(1).map(Vec::as_slice),
            Some([Piece::Literal(_)])
        ) {
            return Err(format!(
                "the component after \"arn:\" in {text:?} must be plain text, without wildcards or variables"
            ));
        }
        if components.len() < 3 {
            return Err(format!("ARN {text:?} has nothing after its namespace"));
        }
        let mut globs: Vec<Glob> = components.into_iter().map(Glob::from_pieces).collect();
        let last = globs.pop().expect("at least three components");
        Ok(ArnPattern::Components {
            last,
            leading: globs.into_boxed_slice(),
        })
    }

    /// The context keys of the variables in it.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        let globs = match self {
            ArnPattern::Any => None,
            ArnPattern::Components { last, leading } => Some(std::iter::once(last).chain(leading)),
        };
        globs.into_iter().flatten().flat_map(Glob::variable_keys)
    }

    /// The pattern as one sequence of [`Step`]s (see [`Glob::steps`]): a leading component's
    /// `*` stays within its component, the last one's may cross a `:`.
    pub(crate) fn steps(&self, context: &Context) -> Vec<Step> {
        let mut steps = Vec::new();
        match self {
            ArnPattern::Any => steps.push(Step::AnyString),
            ArnPattern::Components { last, leading } => {
                for component in leading.iter() {
                    component.steps(context, Step::AnySegment, &mut steps);
                    steps.push(Step::Char(':'));
                }
                last.steps(context, Step::AnyString, &mut steps);
            }
        }
        steps
    }

    pub(crate) fn matches(&self, arn: &str, context: &Context) -> bool {
        self.matches_split(&SplitArn::new(arn), context)
    }

    /// Matching against an ARN split once for many patterns.
    pub(crate) fn matches_split(&self, arn: &SplitArn<'_>, context: &Context) -> bool {
        let ArnPattern::Components { last, leading } = self else {
            return true;
        };
        let Some(rest) = arn.rest_after(leading.len()) else {
            return false;
        };
        // The resource part differs most often between patterns: test it first.
        last.matches(rest, context)
            && leading
                .iter()
                .enumerate()
                .all(|(index, component)| component.matches(arn.component(index), context))
    }
}

/// An ARN (or any string) with the offsets of its first five `:`.
pub(crate) struct SplitArn<'a> {
    text: &'a str,
    colons: [usize; COMPONENTS - 1],
    found: usize,
}

impl<'a> SplitArn<'a> {
    pub(crate) fn new(text: &'a str) -> SplitArn<'a> {
        let mut colons = [0; COMPONENTS - 1];
        let mut found = 0;
        for (offset, byte) in text.bytes().enumerate() {
            if byte == b':' {
                colons[found] = offset;
                found += 1;
                if found == colons.len() {
                    break;
                }
            }
        }
        SplitArn {
            text,
            colons,
            found,
        }
    }

    /// Component `index`, which must be below the number of colons found.
    fn component(&self, index: usize) -> &'a str {
        let start = if index == 0 {
            0
        } else {
            self.colons[index - 1] + 1
        };
        &self.text[start..self.colons[index]]
    }

    /// Everything after the first `count` colons, if there are that many.
    fn rest_after(&self, count: usize) -> Option<&'a str> {
        match count {
            0 => Some(self.text),
            _ if count <= self.found => Some(&self.text[self.colons[count - 1] + 1..]),
            _ => None,
        }
    }
}

/// Splits at the first five `:` of literal text; a `:` inside a variable name or a substituted
/// value never splits.
fn split_components(pieces: Vec<Piece>) -> Vec<Vec<Piece>> {
    let mut components = vec![Vec::new()];
    for piece in pieces {
        let Piece::Literal(literal) = piece else {
            components.last_mut().expect("never empty").push(piece);
            continue;
        };
        let mut text: &str = &literal;
        while components.len() < COMPONENTS {
            let Some((head, tail)) = text.split_once(':') else {
                break;
            };
            push_literal(components.last_mut().expect("never empty"), head);
            components.push(Vec::new());
            text = tail;
        }
        push_literal(components.last_mut().expect("never empty"), text);
    }
    components
}

fn push_literal(component: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Piece::Literal(previous)) = component.last_mut() {
        *previous = format!("{previous}{text}").into();
    } else {
        component.push(Piece::Literal(text.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> ArnPattern {
        ArnPattern::parse(text, true).unwrap()
    }

    fn matches(text: &str, arn: &str) -> bool {
        pattern(text).matches(arn, &Context::default())
    }

    #[test]
    fn star_alone_matches_anything() {
        assert!(matches("*", "arn:mlflow:us-east-1:1:experiment/1"));
        assert!(matches("*", "not an arn"));
    }

    #[test]
    fn resource_part_wildcards_span_slashes_and_colons() {
        let p = "arn:mlflow:us-east-1:111122223333:experiment/*";
        assert!(matches(p, "arn:mlflow:us-east-1:111122223333:experiment/1"));
        assert!(matches(
            p,
            "arn:mlflow:us-east-1:111122223333:experiment/1/run/abc"
        ));
        assert!(matches(
            p,
            "arn:mlflow:us-east-1:111122223333:experiment/a:b"
        ));
        assert!(!matches(
            p,
            "arn:mlflow:us-east-1:111122223333:registered-model/m"
        ));
        assert!(matches(
            "arn:aws:execute-api:us-east-1:111122223333:api/prod/*/*",
            "arn:aws:execute-api:us-east-1:111122223333:api/prod/POST/api/2.0/mlflow/runs/search"
        ));
    }

    #[test]
    fn wildcards_in_leading_components_stay_inside_them() {
        let p = "arn:mlflow:*:111122223333:experiment/*";
        assert!(matches(p, "arn:mlflow:eu-west-1:111122223333:experiment/7"));
        // A resource id containing ":111122223333:experiment/" must not let another account in.
        assert!(!matches(
            p,
            "arn:mlflow:us-east-1:999999999999:registered-model/x:111122223333:experiment/1"
        ));
        assert!(matches(
            "arn:mlflow:us-?ast-1:*:experiment/1",
            "arn:mlflow:us-east-1:1:experiment/1"
        ));
        assert!(!matches(
            "arn:mlflow:us-?ast-1:*:experiment/1",
            "arn:mlflow:us-east-10:1:experiment/1"
        ));
    }

    #[test]
    fn short_pattern_ending_in_star_absorbs_the_rest() {
        assert!(matches(
            "arn:aws:execute-api:*",
            "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"
        ));
        assert!(matches(
            "arn:aws:execute-api:us-*",
            "arn:aws:execute-api:us-east-1:1:api/prod/GET/x"
        ));
        assert!(matches(
            "arn:mlflow:*",
            "arn:mlflow:us-east-1:1:experiment/1"
        ));
        assert!(!matches("arn:aws:execute-api:*", "arn:aws:s3:::bucket"));
    }

    #[test]
    fn mlgate_five_component_arns() {
        let p = "arn:mlflow:us-east-1:111122223333:experiment/7";
        assert!(matches(p, "arn:mlflow:us-east-1:111122223333:experiment/7"));
        assert!(!matches(
            p,
            "arn:mlflow:us-east-1:111122223333:experiment/70"
        ));
        assert!(!matches(
            p,
            "arn:mlflow:us-east-1:111122223333:experiment/7:x"
        ));
        assert!(matches(
            "arn:mlflow:*:*:registered-model/*",
            "arn:mlflow:eu-west-1:1:registered-model/a:b"
        ));
        assert!(matches(
            "arn:mlflow:r:a:registered-model/a:*",
            "arn:mlflow:r:a:registered-model/a:b"
        ));
    }

    #[test]
    fn too_few_arn_components_do_not_match() {
        assert!(!matches("arn:mlflow:*:*:*:*", "arn:mlflow:us-east-1"));
        assert!(!matches(
            "arn:mlflow:us-east-1:1:experiment/1",
            "arn:mlflow:us-east-1:1"
        ));
        assert!(!matches("arn:mlflow:*:*:*", "arn:mlflow:us-east-1:1"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!matches(
            "arn:mlflow:us-east-1:1:Experiment/1",
            "arn:mlflow:us-east-1:1:experiment/1"
        ));
    }

    #[test]
    fn colon_inside_a_variable_does_not_split() {
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        let p = pattern("arn:mlflow:us-east-1:1:experiment/${aws:username}/*");
        assert!(p.matches("arn:mlflow:us-east-1:1:experiment/alice/x", &context));
        assert!(!p.matches("arn:mlflow:us-east-1:1:experiment/bob/x", &context));
        assert!(!p.matches(
            "arn:mlflow:us-east-1:1:experiment/alice/x",
            &Context::default()
        ));
    }

    #[test]
    fn variable_in_account_component() {
        let mut context = Context::default();
        context.insert("aws:PrincipalAccount", "111122223333");
        let p = pattern("arn:mlflow:*:${aws:PrincipalAccount}:*");
        assert!(p.matches("arn:mlflow:us-east-1:111122223333:experiment/1", &context));
        assert!(!p.matches("arn:mlflow:us-east-1:999999999999:experiment/1", &context));
    }

    #[test]
    fn invalid_patterns() {
        for (text, expected) in [
            ("", "neither"),
            ("**", "neither"),
            ("ARN:aws:s3:::b", "neither"),
            ("arn", "must be plain text"),
            ("arn::s3:::b", "must be plain text"),
            ("arn:*:s3:::b", "must be plain text"),
            ("arn:a${aws:x}:s3:::b", "must be plain text"),
            ("arn:aws", "nothing after its namespace"),
            ("arn:aws:s3:::${aws:x", "unterminated policy variable"),
        ] {
            let error = ArnPattern::parse(text, true).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
