//! Wildcard matching: `*` matches any run of characters (including none, and including `/`
//! and `:`), `?` exactly one character. Case-sensitive; action names are lowercased on both
//! sides before they get here. Policy variables are substituted as literal text, so a `*`
//! inside a user's tag value never acts as a wildcard.

use std::borrow::Cow;

use crate::context::Context;
use crate::variables::{Piece, Syntax, parse_pieces};

/// A compiled policy string: literal text, wildcards and variables. The common shapes are
/// stored flat, so matching them is one comparison without pointer chasing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Glob {
    /// Only `*`s: every string.
    Everything,
    /// No wildcards and no variables (possibly empty).
    Literal(Box<str>),
    /// `literal*`: `mlflow:get*`, `experiment/7/*`.
    Prefix(Box<str>),
    General(Box<[Piece]>),
}

impl Glob {
    pub(crate) fn parse(text: &str, syntax: Syntax) -> Result<Glob, String> {
        Ok(Glob::from_pieces(parse_pieces(text, syntax)?))
    }

    pub(crate) fn from_pieces(pieces: Vec<Piece>) -> Glob {
        match pieces.as_slice() {
            [] => Glob::Literal("".into()),
            [Piece::Literal(literal)] => Glob::Literal(literal.clone()),
            [Piece::Literal(literal), Piece::AnyString] => Glob::Prefix(literal.clone()),
            all if all.iter().all(|piece| *piece == Piece::AnyString) => Glob::Everything,
            _ => Glob::General(pieces.into_boxed_slice()),
        }
    }

    /// The literal text, when the glob is nothing else.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self {
            Glob::Literal(literal) => Some(literal),
            _ => None,
        }
    }

    /// The literal text every match starts with (up to the first wildcard or variable), and
    /// whether starting with it is all a match takes (`literal*`, or `*`).
    pub(crate) fn literal_prefix(&self) -> (&str, bool) {
        match self {
            Glob::Everything => ("", true),
            Glob::Prefix(prefix) => (prefix, true),
            Glob::Literal(literal) => (literal, false),
            Glob::General(pieces) => match pieces.first() {
                Some(Piece::Literal(literal)) => (literal, false),
                _ => ("", false),
            },
        }
    }

    /// What the glob matches as a sequence of [`Step`]s, with each variable that `context`
    /// holds as its literal value and every other variable as unknown text (`any`): a superset
    /// of what the glob matches under any context that extends `context`. `any` is what a `*`
    /// stands for ([`Step::AnyString`], or [`Step::AnySegment`] in an ARN's leading component).
    pub(crate) fn steps(&self, context: &Context, any: Step, steps: &mut Vec<Step>) {
        let literal =
            |text: &str, steps: &mut Vec<Step>| steps.extend(text.chars().map(Step::Char));
        match self {
            Glob::Everything => steps.push(any),
            Glob::Literal(text) => literal(text, steps),
            Glob::Prefix(text) => {
                literal(text, steps);
                steps.push(any);
            }
            Glob::General(pieces) => {
                for piece in pieces.iter() {
                    match piece {
                        Piece::Literal(text) => literal(text, steps),
                        Piece::AnyString => steps.push(any),
                        Piece::AnyChar => steps.push(Step::AnyChar),
                        Piece::Variable(variable) => match context.get_normalized(variable.key()) {
                            Some([value]) => literal(value, steps),
                            _ => steps.push(any),
                        },
                    }
                }
            }
        }
    }

    /// The context keys of the variables in it.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        let pieces: &[Piece] = match self {
            Glob::General(pieces) => pieces,
            Glob::Everything | Glob::Literal(_) | Glob::Prefix(_) => &[],
        };
        pieces.iter().filter_map(|piece| match piece {
            Piece::Variable(variable) => Some(variable.key()),
            _ => None,
        })
    }

    pub(crate) fn matches(&self, text: &str, context: &Context) -> bool {
        match self {
            Glob::Everything => true,
            Glob::Literal(literal) => text == &**literal,
            Glob::Prefix(prefix) => text.starts_with(&**prefix),
            Glob::General(pieces) => matches_pieces(pieces, text, context),
        }
    }

    /// The text with variables substituted (wildcards written back as `*` and `?`). `None`
    /// when a variable does not resolve.
    pub(crate) fn render<'a>(&'a self, context: &'a Context) -> Option<Cow<'a, str>> {
        let pieces = match self {
            Glob::Everything => return Some(Cow::Borrowed("*")),
            Glob::Literal(literal) => return Some(Cow::Borrowed(literal)),
            Glob::Prefix(prefix) => return Some(Cow::Owned(format!("{prefix}*"))),
            Glob::General(pieces) => pieces,
        };
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Literal(literal) => text.push_str(literal),
                Piece::Variable(variable) => text.push_str(variable.resolve(context)?),
                Piece::AnyString => text.push('*'),
                Piece::AnyChar => text.push('?'),
            }
        }
        Some(Cow::Owned(text))
    }
}

/// One position of a pattern spelled out character by character ([`Glob::steps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Char(char),
    AnyChar,
    /// Any run of characters, possibly empty.
    AnyString,
    /// Any run of characters without a `:`, possibly empty.
    AnySegment,
}

/// What follows the known text of a string being matched against [`Step`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rest {
    /// Nothing: the text is the whole string.
    Nothing,
    /// One unknown path segment (an id): any text without `/` or `:`.
    Segment,
}

/// Whether some string made of `text` and then `rest` matches `steps`. The text is run through
/// the pattern as a set of positions (a star both stays and steps over); then the rest must be
/// able to complete the pattern from one of them.
pub(crate) fn admits(steps: &[Step], text: &str, rest: Rest) -> bool {
    let close = |positions: &mut Vec<usize>| {
        let mut at = 0;
        while at < positions.len() {
            let position = positions[at];
            let star = matches!(
                steps.get(position),
                Some(Step::AnyString | Step::AnySegment)
            );
            if star && !positions.contains(&(position + 1)) {
                positions.push(position + 1);
            }
            at += 1;
        }
    };
    let mut positions = vec![0];
    close(&mut positions);
    for c in text.chars() {
        let mut next = Vec::new();
        for &position in &positions {
            let advanced = match steps.get(position) {
                Some(Step::AnyString) => position,
                Some(Step::AnySegment) if c != ':' => position,
                Some(Step::AnyChar) => position + 1,
                Some(Step::Char(expected)) if *expected == c => position + 1,
                Some(Step::AnySegment | Step::Char(_)) | None => continue,
            };
            if !next.contains(&advanced) {
                next.push(advanced);
            }
        }
        close(&mut next);
        if next.is_empty() {
            return false;
        }
        positions = next;
    }
    positions.iter().any(|&position| match rest {
        Rest::Nothing => position == steps.len(),
        Rest::Segment => steps[position..]
            .iter()
            .all(|step| !matches!(step, Step::Char('/' | ':'))),
    })
}

/// Greedy matching with one backtrack point: when a later `*` is reached, earlier stars never
/// need to give back text, because the later star can absorb anything they would have.
/// O(text × pattern) in the worst case, no allocation. Text offsets stay on character
/// boundaries: literals advance by their own length, `?` and backtracking by whole characters.
fn matches_pieces(pieces: &[Piece], text: &str, context: &Context) -> bool {
    let mut piece = 0;
    let mut at = 0;
    // (index of the piece after the last `*`, text offset where that star's absorption ends)
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let step = match pieces.get(piece) {
            None if at == text.len() => return true,
            None => None,
            Some(Piece::AnyString) => {
                backtrack = Some((piece + 1, at));
                piece += 1;
                continue;
            }
            Some(Piece::AnyChar) => text[at..].chars().next().map(char::len_utf8),
            Some(Piece::Literal(literal)) => {
                text[at..].starts_with(&**literal).then_some(literal.len())
            }
            Some(Piece::Variable(variable)) => match variable.resolve(context) {
                Some(value) => text[at..].starts_with(value).then_some(value.len()),
                None => return false,
            },
        };
        if let Some(length) = step {
            at += length;
            piece += 1;
            continue;
        }
        let Some((after_star, absorbed)) = backtrack else {
            return false;
        };
        let Some(next) = text[absorbed..].chars().next() else {
            return false;
        };
        let absorbed = absorbed + next.len_utf8();
        backtrack = Some((after_star, absorbed));
        piece = after_star;
        at = absorbed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIKE: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn glob(pattern: &str) -> Glob {
        Glob::parse(pattern, LIKE).unwrap()
    }

    fn matches(pattern: &str, text: &str) -> bool {
        glob(pattern).matches(text, &Context::default())
    }

    /// Reference implementation by plain recursion, for the property test.
    fn naive(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|skip| naive(rest, &text[skip..])),
            Some(('?', rest)) => !text.is_empty() && naive(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && naive(rest, &text[1..]),
        }
    }

    #[test]
    fn star_spans_slashes_and_colons() {
        assert!(matches("arn:*", "arn:aws:s3:::bucket/a/b"));
        assert!(matches("a*z", "a/b:c/z"));
        assert!(matches("a*", "a"));
        assert!(!matches("a*b", "a"));
    }

    #[test]
    fn question_mark_is_one_character_even_multibyte() {
        assert!(matches("a?c", "abc"));
        assert!(matches("a?c", "aéc"));
        assert!(!matches("a?c", "ac"));
        assert!(!matches("a?c", "abbc"));
        assert!(matches("?", "😀"));
    }

    #[test]
    fn case_sensitive() {
        assert!(!matches("Run", "run"));
        assert!(!matches("Run*", "run"));
        assert!(matches("Run*", "Runs"));
    }

    #[test]
    fn flat_shapes() {
        assert_eq!(glob("abc"), Glob::Literal("abc".into()));
        assert_eq!(glob(""), Glob::Literal("".into()));
        assert_eq!(glob("abc*"), Glob::Prefix("abc".into()));
        assert_eq!(glob("***"), Glob::Everything);
        assert!(matches!(glob("*abc"), Glob::General(_)));
        assert!(matches("abc*", "abc"));
        assert!(!matches("abc*", "ab"));
    }

    #[test]
    fn empty_and_star_only_patterns() {
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("**", ""));
        assert!(matches("**", "anything"));
    }

    #[test]
    fn backtracking_finds_the_later_occurrence() {
        assert!(matches("*ab", "aab"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(matches("*a?c", "abcabc"));
        assert!(!matches("*a?c", "abcab"));
    }

    #[test]
    fn variables_substitute_literally() {
        let mut context = Context::default();
        context.insert("aws:username", "a*");
        let pattern = glob("home/${aws:username}/*");
        assert!(pattern.matches("home/a*/x", &context));
        assert!(
            !pattern.matches("home/abc/x", &context),
            "a substituted * is not a wildcard"
        );
    }

    #[test]
    fn unresolved_variable_matches_nothing() {
        let pattern = glob("*${aws:username}*");
        assert!(!pattern.matches("anything", &Context::default()));
        assert!(!pattern.matches("", &Context::default()));
    }

    #[test]
    fn render_substitutes_or_fails() {
        let plain = Glob::parse(
            "team-${aws:PrincipalTag/team}",
            Syntax {
                wildcards: false,
                variables: true,
            },
        )
        .unwrap();
        let mut context = Context::default();
        assert_eq!(plain.render(&context), None);
        context.insert("aws:PrincipalTag/team", "ml");
        assert_eq!(plain.render(&context).as_deref(), Some("team-ml"));
        assert_eq!(glob("").render(&context).as_deref(), Some(""));
    }

    /// Property: the matcher agrees with the naive definition on pseudo-random patterns and
    /// texts over a small alphabet (deterministic xorshift, so failures reproduce).
    #[test]
    fn agrees_with_naive_matcher() {
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15);
        let pattern_alphabet = ['a', 'b', 'é', ':', '*', '?'];
        let text_alphabet = ['a', 'b', 'é', ':'];
        for _ in 0..20_000 {
            let pattern: String = (0..next(8))
                .map(|_| pattern_alphabet[next(pattern_alphabet.len())])
                .collect();
            let text: String = (0..next(10))
                .map(|_| text_alphabet[next(text_alphabet.len())])
                .collect();
            let expected = naive(
                &pattern.chars().collect::<Vec<_>>(),
                &text.chars().collect::<Vec<_>>(),
            );
            assert_eq!(
                matches(&pattern, &text),
                expected,
                "pattern {pattern:?} text {text:?}"
            );
        }
    }
}
