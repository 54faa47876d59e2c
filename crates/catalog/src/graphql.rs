//! Just enough GraphQL to tell a query from a mutation, and to list root fields.
//!
//! MLflow's `/graphql` handler (GET and POST alike) reads the JSON **body**
//! `{"query": ..., "variables": ..., "operationName": ...}` and executes it with graphene.
//! In 3.17.2 the schema's mutations (`mlflowSearchRuns`, `mlflowSearchDatasets`,
//! `testMutation`) happen to be reads, but a mutation must never pass as a read: mlgate
//! classifies `/graphql` as `mlflow:GraphQLQuery` only when [`graphql_is_read_only`] is
//! sure every operation in the document is a `query`; anything else (a mutation or
//! subscription anywhere in the document, a parse error, an unexpected body) needs
//! `mlflow:GraphQLMutation`.

use serde_json::Value;

use crate::params::parse_strict_json;

/// The kind of a GraphQL operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// One operation of a GraphQL document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphQlOperation {
    pub kind: OperationKind,
    pub name: Option<String>,
    /// Root field names (not aliases), fragments at the root expanded, in document order.
    pub root_fields: Vec<String>,
}

/// A parsed GraphQL request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphQlRequest {
    pub operations: Vec<GraphQlOperation>,
    /// `operationName`, when given.
    pub operation_name: Option<String>,
}

/// Why a GraphQL body could not be understood (safe to show: no content is echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphQlError {
    #[error("the GraphQL request body must be a JSON object with a string 'query'")]
    BadBody,
    #[error("the GraphQL document could not be parsed")]
    Syntax,
    #[error("the GraphQL document nests too deeply")]
    TooDeep,
    #[error("the GraphQL document contains no operation")]
    NoOperation,
}

/// `true` only when the body is a JSON object whose `query` parses and contains nothing but
/// `query` operations (including the `{ ... }` shorthand). Conservative: any doubt → `false`.
pub fn graphql_is_read_only(body: &[u8]) -> bool {
    graphql_request(body).is_ok_and(|r| {
        r.operations
            .iter()
            .all(|op| op.kind == OperationKind::Query)
    })
}

/// Parses a `/graphql` request body into its operations and their root fields.
pub fn graphql_request(body: &[u8]) -> Result<GraphQlRequest, GraphQlError> {
    let Ok(Value::Object(obj)) = parse_strict_json(body) else {
        return Err(GraphQlError::BadBody);
    };
    let Some(Value::String(query)) = obj.get("query") else {
        return Err(GraphQlError::BadBody);
    };
    let operation_name = match obj.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(GraphQlError::BadBody),
    };
    let operations = parse_document(query)?;
    if operations.is_empty() {
        return Err(GraphQlError::NoOperation);
    }
    Ok(GraphQlRequest {
        operations,
        operation_name,
    })
}

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Value, // int, float or string literal (content irrelevant here)
}

fn lex(src: &str) -> Result<Vec<Tok>, GraphQlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\u{feff}' | ' ' | '\t' | '\n' | '\r' | ',' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                    i += 1;
                }
            }
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                toks.push(Tok::Punct(c));
                i += 1;
            }
            '.' if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') => {
                toks.push(Tok::Spread);
                i += 3;
            }
            '"' => {
                if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                    // block string: ends at an unescaped """
                    i += 3;
                    loop {
                        if i >= chars.len() {
                            return Err(GraphQlError::Syntax);
                        }
                        if chars[i] == '\\' && chars.get(i + 1..i + 4) == Some(&['"', '"', '"'][..])
                        {
                            i += 4;
                        } else if chars.get(i..i + 3) == Some(&['"', '"', '"'][..]) {
                            i += 3;
                            break;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None | Some('\n') | Some('\r') => return Err(GraphQlError::Syntax),
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some('\\') => i += 2,
                            Some(_) => i += 1,
                        }
                    }
                }
                toks.push(Tok::Value);
            }
            '-' | '0'..='9' => {
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '+' | '-'))
                {
                    i += 1;
                }
                toks.push(Tok::Value);
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                toks.push(Tok::Name(chars[start..i].iter().collect()));
            }
            _ => return Err(GraphQlError::Syntax),
        }
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
enum Sel {
    Field(String),
    Spread(String),
    Inline(Vec<Sel>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), GraphQlError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(GraphQlError::Syntax)
        }
    }
    fn name(&mut self) -> Result<String, GraphQlError> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            _ => Err(GraphQlError::Syntax),
        }
    }
    fn peek_name(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Name(n)) => Some(n),
            _ => None,
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), GraphQlError> {
        if depth > MAX_DEPTH {
            return Err(GraphQlError::TooDeep);
        }
        match self.next() {
            Some(Tok::Value) | Some(Tok::Name(_)) => Ok(()),
            Some(Tok::Punct('$')) => self.name().map(|_| ()),
            Some(Tok::Punct('[')) => {
                while !self.eat(']') {
                    self.value(depth + 1)?;
                }
                Ok(())
            }
            Some(Tok::Punct('{')) => {
                while !self.eat('}') {
                    self.name()?;
                    self.expect(':')?;
                    self.value(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(GraphQlError::Syntax),
        }
    }

    fn arguments(&mut self, depth: usize) -> Result<(), GraphQlError> {
        if self.eat('(') {
            if self.eat(')') {
                return Err(GraphQlError::Syntax);
            }
            while !self.eat(')') {
                self.name()?;
                self.expect(':')?;
                self.value(depth + 1)?;
            }
        }
        Ok(())
    }

    fn directives(&mut self, depth: usize) -> Result<(), GraphQlError> {
        while self.eat('@') {
            self.name()?;
            self.arguments(depth)?;
        }
        Ok(())
    }

    fn type_ref(&mut self, depth: usize) -> Result<(), GraphQlError> {
        if depth > MAX_DEPTH {
            return Err(GraphQlError::TooDeep);
        }
        if self.eat('[') {
            self.type_ref(depth + 1)?;
            self.expect(']')?;
        } else {
            self.name()?;
        }
        self.eat('!');
        Ok(())
    }

    fn variable_definitions(&mut self) -> Result<(), GraphQlError> {
        if self.eat('(') {
            if self.eat(')') {
                return Err(GraphQlError::Syntax);
            }
            while !self.eat(')') {
                self.expect('$')?;
                self.name()?;
                self.expect(':')?;
                self.type_ref(0)?;
                if self.eat('=') {
                    self.value(0)?;
                }
                self.directives(0)?;
            }
        }
        Ok(())
    }

    fn selection_set(&mut self, depth: usize) -> Result<Vec<Sel>, GraphQlError> {
        if depth > MAX_DEPTH {
            return Err(GraphQlError::TooDeep);
        }
        self.expect('{')?;
        let mut out = Vec::new();
        loop {
            if self.eat('}') {
                break;
            }
            if self.peek() == Some(&Tok::Spread) {
                self.pos += 1;
                match self.peek_name() {
                    Some("on") => {
                        self.pos += 1;
                        self.name()?;
                        self.directives(depth)?;
                        out.push(Sel::Inline(self.selection_set(depth + 1)?));
                    }
                    Some(_) => {
                        let name = self.name()?;
                        self.directives(depth)?;
                        out.push(Sel::Spread(name));
                    }
                    None => {
                        self.directives(depth)?;
                        out.push(Sel::Inline(self.selection_set(depth + 1)?));
                    }
                }
                continue;
            }
            let mut name = self.name()?;
            if self.eat(':') {
                name = self.name()?; // the first name was an alias
            }
            self.arguments(depth)?;
            self.directives(depth)?;
            if self.peek() == Some(&Tok::Punct('{')) {
                self.selection_set(depth + 1)?;
            }
            out.push(Sel::Field(name));
        }
        if out.is_empty() {
            return Err(GraphQlError::Syntax);
        }
        Ok(out)
    }
}

fn parse_document(src: &str) -> Result<Vec<GraphQlOperation>, GraphQlError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let mut ops: Vec<(OperationKind, Option<String>, Vec<Sel>)> = Vec::new();
    let mut fragments: Vec<(String, Vec<Sel>)> = Vec::new();
    while p.peek().is_some() {
        if p.peek() == Some(&Tok::Punct('{')) {
            ops.push((OperationKind::Query, None, p.selection_set(1)?));
            continue;
        }
        let kw = p.name()?;
        let kind = match kw.as_str() {
            "query" => OperationKind::Query,
            "mutation" => OperationKind::Mutation,
            "subscription" => OperationKind::Subscription,
            "fragment" => {
                let name = p.name()?;
                if name == "on" || p.name()? != "on" {
                    return Err(GraphQlError::Syntax);
                }
                p.name()?;
                p.directives(0)?;
                fragments.push((name, p.selection_set(1)?));
                continue;
            }
            // type-system definitions and anything else: not an executable document
            _ => return Err(GraphQlError::Syntax),
        };
        let name = match p.peek_name() {
            Some(_) => Some(p.name()?),
            None => None,
        };
        p.variable_definitions()?;
        p.directives(0)?;
        ops.push((kind, name, p.selection_set(1)?));
    }
    let lookup = |name: &str| fragments.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let mut out = Vec::new();
    for (kind, name, sels) in ops {
        let mut fields = Vec::new();
        let mut stack: Vec<&Sel> = sels.iter().rev().collect();
        let mut visited: Vec<&str> = Vec::new();
        while let Some(sel) = stack.pop() {
            match sel {
                Sel::Field(f) => fields.push(f.clone()),
                Sel::Inline(inner) => stack.extend(inner.iter().rev()),
                Sel::Spread(frag) => {
                    if visited.contains(&frag.as_str()) {
                        continue;
                    }
                    visited.push(frag);
                    // An unknown fragment is a validation error for graphql-core.
                    let inner = lookup(frag).ok_or(GraphQlError::Syntax)?;
                    stack.extend(inner.iter().rev());
                }
            }
        }
        out.push(GraphQlOperation {
            kind,
            name,
            root_fields: fields,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(q: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"query": q, "variables": {}})).unwrap()
    }

    #[test]
    fn queries_are_read_only() {
        for q in [
            "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { run { info { runId } } } }",
            "{ mlflowGetExperiment(input: {experimentId: \"1\"}) { experiment { name } } }",
            "query A { a: mlflowGetRun(input: {runId: \"x\"}) { run { info { runUuid } } } } fragment F on MlflowRun { info { runId } }",
            "# comment\n query { __typename }",
            "query Q($x: [String!]! = [\"a\", \"b\"]) @dir(a: 1) { test(inputString: \"\"\"block \\\"\"\" \"\"\") { output } }",
            "query { ...F } fragment F on Query { mlflowSearchRuns(input: {}) { runs { info { runId } } } }",
        ] {
            assert!(graphql_is_read_only(&body(q)), "{q}");
        }
        let r = graphql_request(&body("query { ...F x: mlflowGetRun(input: {}) { run { info { runId } } } } fragment F on Query { test { output } }")).unwrap();
        assert_eq!(r.operations[0].root_fields, vec!["test", "mlflowGetRun"]);
    }

    #[test]
    fn mutations_and_doubt_are_not_read_only() {
        for q in [
            "mutation { mlflowSearchRuns(input: {}) { runs { info { runId } } } }",
            "mutation M { testMutation(inputString: \"x\") { output } }",
            "subscription { x }",
            "query A { a } mutation B { b }",
            "  mutation{a}",
            "query { a ",
            "query { }",
            "",
            "# only a comment",
            "type Query { a: String }",
            "schema { query: Query }",
            "query { ...Missing }",
            "query { a(x: ) }",
            "query { a } \u{0}",
            "{ a } \"unterminated",
        ] {
            assert!(!graphql_is_read_only(&body(q)), "{q:?}");
        }
        // operationName does not make a mutation-bearing document read-only
        let b = serde_json::to_vec(
            &serde_json::json!({"query": "query A { a } mutation B { b }", "operationName": "A"}),
        )
        .unwrap();
        assert!(!graphql_is_read_only(&b));
        for raw in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"query\": 5}",
            b"{\"variables\": {}}",
            b"{\"query\": \"{a}\", \"query\": \"mutation {a}\"}",
            b"\"{\\\"query\\\": \\\"{a}\\\"}\"",
            b"{\"query\": \"{a}\", \"operationName\": 3}",
        ] {
            assert!(
                !graphql_is_read_only(raw),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let q = format!("{{ {} }}", "a {".repeat(5000) + &"}".repeat(5000));
        assert!(!graphql_is_read_only(&body(&q)));
        let q = format!("{{ a(x: {}) }}", "[".repeat(5000) + &"]".repeat(5000));
        assert!(!graphql_is_read_only(&body(&q)));
    }
}
