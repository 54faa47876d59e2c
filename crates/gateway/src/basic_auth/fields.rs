//! The fields of a request as basic-auth's `_get_request_param` reads them: a GET's query
//! string; the JSON object of a POST or PATCH body; a DELETE's JSON body when it is JSON, else
//! its query string. A body that is not a JSON object reads as no fields (basic-auth then says
//! which field is missing). A query naming a field twice is refused: basic-auth would take the
//! first, mlgate does not guess.

use serde_json::{Map, Value};

use crate::error::GatewayError;

/// The fields of one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Map<String, Value>);

/// Whether a `Content-Type` is JSON as Werkzeug's `request.is_json` sees it
/// (`application/json` or `application/*+json`, parameters ignored).
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl Fields {
    /// Reads the fields of a request with `method`, `query` and `body` (`json_body`: the body
    /// is declared JSON).
    pub fn read(
        method: &str,
        query: Option<&str>,
        json_body: bool,
        body: &[u8],
    ) -> Result<Fields, GatewayError> {
        let from_body = match method {
            "GET" => false,
            "DELETE" => json_body,
            _ => true,
        };
        if from_body {
            return Ok(match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => Fields(fields),
                _ => Fields::default(),
            });
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|_| GatewayError::BadRequest("the query string cannot be read".into()))?;
        let mut fields = Map::new();
        for (key, value) in pairs {
            if fields.contains_key(&key) {
                return Err(GatewayError::BadRequest(format!(
                    "parameter '{key}' is given more than once"
                )));
            }
            fields.insert(key, Value::String(value));
        }
        Ok(Fields(fields))
    }

    /// A field, or basic-auth's refusal of a missing one.
    pub fn get(&self, name: &str) -> Result<&Value, GatewayError> {
        self.0.get(name).ok_or_else(|| {
            GatewayError::BadRequest(format!(
                "Missing value for required parameter '{name}'. See the API docs for more \
                 information about request parameters."
            ))
        })
    }

    /// A field that must be text.
    pub fn string(&self, name: &str) -> Result<&str, GatewayError> {
        match self.get(name)? {
            Value::String(value) => Ok(value),
            _ => Err(GatewayError::BadRequest(format!(
                "Parameter '{name}' must be a string."
            ))),
        }
    }

    /// A field that must be an integer, as a JSON number or its text (basic-auth's
    /// `_get_int_request_param`).
    pub fn int(&self, name: &str) -> Result<i64, GatewayError> {
        let number = match self.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        number.ok_or_else(|| {
            GatewayError::BadRequest(format!("Parameter '{name}' must be an integer."))
        })
    }

    /// An optional field that must be text when given.
    pub fn optional_string(&self, name: &str) -> Result<Option<&str>, GatewayError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_reads_the_query_and_refuses_repeats() {
        let fields = Fields::read("GET", Some("username=a%20b"), false, b"").unwrap();
        assert_eq!(fields.string("username").unwrap(), "a b");
        assert!(Fields::read("GET", Some("username=a&username=b"), false, b"").is_err());
        let missing = Fields::read("GET", None, false, b"").unwrap();
        assert!(
            missing
                .string("username")
                .unwrap_err()
                .to_string()
                .contains("Missing value for required parameter 'username'")
        );
    }

    #[test]
    fn writes_read_the_json_object_and_nothing_else() {
        let body = br#"{"username": "u", "is_admin": true}"#;
        let fields = Fields::read("PATCH", Some("username=other"), true, body).unwrap();
        assert_eq!(fields.string("username").unwrap(), "u");
        assert_eq!(fields.get("is_admin").unwrap(), &Value::Bool(true));
        for body in [&b"[1]"[..], b"null", b"not json", b""] {
            let fields = Fields::read("POST", None, true, body).unwrap();
            assert!(fields.get("username").is_err());
        }
        let fields = Fields::read("POST", None, true, br#"{"username": 1}"#).unwrap();
        assert!(fields.string("username").is_err());
    }

    #[test]
    fn integers_are_numbers_or_their_text() {
        let fields = Fields::read(
            "POST",
            None,
            true,
            br#"{"a": 7, "b": "8", "c": "x", "d": 1.5}"#,
        );
        let fields = fields.unwrap();
        assert_eq!(fields.int("a").unwrap(), 7);
        assert_eq!(fields.int("b").unwrap(), 8);
        assert!(fields.int("c").is_err());
        assert!(fields.int("d").is_err());
        assert!(fields.int("e").is_err());
        assert_eq!(fields.optional_string("e").unwrap(), None);
        assert!(fields.optional_string("a").is_err());
    }

    #[test]
    fn delete_reads_json_when_declared_else_the_query() {
        let json = Fields::read("DELETE", Some("username=q"), true, br#"{"username": "b"}"#);
        assert_eq!(json.unwrap().string("username").unwrap(), "b");
        let query = Fields::read("DELETE", Some("username=q"), false, br#"{"username": "b"}"#);
        assert_eq!(query.unwrap().string("username").unwrap(), "q");
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/vnd.api+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(None));
    }
}
