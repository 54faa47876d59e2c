use std::cell::RefCell;

use mlgate_policy::PolicyDocument;
use serde_json::json;

use super::*;

const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
const BOB: &str = "arn:aws:iam::111111111111:user/bob";
const API: &str =
    "arn:aws:execute-api:us-east-1:111111111111:mlgate/prod/GET/api/2.0/mlflow/experiments/get";

fn scope() -> ArnScope {
    ArnScope::new("us-east-1", "111111111111")
}

fn policy(json: &str) -> NamedPolicy {
    NamedPolicy {
        name: "p".into(),
        document: PolicyDocument::parse(json).expect("valid policy"),
    }
}

fn experiment(id: u32, name: &str) -> Value {
    json!({"experiment_id": id.to_string(), "name": name, "tags": [{"key": "team", "value": name.split('/').next().unwrap_or("")}]})
}

/// An upstream with `items`, paged by offset like MLflow's SQL store; records the calls.
struct Upstream {
    items: Vec<Value>,
    calls: RefCell<Vec<(Option<String>, u64)>>,
}

impl Upstream {
    fn page(&self, token: Option<&str>, size: u64) -> Result<Value, String> {
        self.calls
            .borrow_mut()
            .push((token.map(str::to_owned), size));
        let offset: usize = token.map_or(0, |t| t.parse().expect("our token"));
        let end = (offset + size as usize).min(self.items.len());
        let mut answer = json!({"experiments": self.items[offset..end]});
        if end < self.items.len() {
            answer["next_page_token"] = json!(end.to_string());
        }
        Ok(answer)
    }
}

fn team_a_only() -> Vec<NamedPolicy> {
    vec![policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:GetExperiment","Resource":"*",
            "Condition":{"StringLike":{"mlflow:ExperimentName":"team-a/*"}}}]}"#,
    )]
}

fn mixed(n: u32) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let team = if i % 3 == 0 { "team-a" } else { "team-b" };
            experiment(i, &format!("{team}/e{i}"))
        })
        .collect()
}

async fn page_of(
    upstream: &Upstream,
    policies: &[NamedPolicy],
    want: usize,
    start: Cursor,
) -> Page {
    let scope = scope();
    let context = Context::default();
    let reader = Readability {
        listing: Listing::Experiments,
        scope: &scope,
        policies,
        session: None,
        principal: ALICE,
        execute_api: API,
        context: &context,
    };
    fill_page(
        Listing::Experiments,
        want,
        start,
        |token: Option<String>, size| std::future::ready(upstream.page(token.as_deref(), size)),
        |item| reader.readable(item),
    )
    .await
    .expect("upstream answers")
}

fn first(size: u64) -> Cursor {
    Cursor {
        upstream: None,
        skip: 0,
        size,
    }
}

fn names(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn pages_are_full_and_only_readable() {
    let upstream = Upstream {
        items: mixed(30),
        calls: RefCell::default(),
    };
    let page = page_of(&upstream, &team_a_only(), 4, first(4)).await;
    assert_eq!(
        names(&page),
        ["team-a/e0", "team-a/e3", "team-a/e6", "team-a/e9"]
    );
    // Item 9 ends upstream page 3 (items 8..12): the next page starts inside it.
    let next = page.next.clone().expect("more");
    assert_eq!(next.skip, 2);
    assert_eq!(upstream.calls.borrow().len(), 3);

    // Following the tokens yields every readable item exactly once.
    let mut all = names(&page);
    let mut cursor = Some(next);
    while let Some(c) = cursor {
        let page = page_of(&upstream, &team_a_only(), 4, c).await;
        all.extend(names(&page));
        cursor = page.next;
    }
    let expected: Vec<String> = (0..30)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("team-a/e{i}"))
        .collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn nothing_readable_is_an_empty_last_page() {
    let upstream = Upstream {
        items: mixed(5),
        calls: RefCell::default(),
    };
    let page = page_of(&upstream, &[], 10, first(100)).await;
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn upstream_calls_are_bounded() {
    // 1 readable item in 1000, pages of 10: the page comes back short with a token.
    let items: Vec<Value> = (0..1000)
        .map(|i| experiment(i, if i == 999 { "team-a/x" } else { "team-b/x" }))
        .collect();
    let upstream = Upstream {
        items,
        calls: RefCell::default(),
    };
    let page = page_of(&upstream, &team_a_only(), 5, first(10)).await;
    assert!(page.items.is_empty());
    assert_eq!(upstream.calls.borrow().len(), MAX_UPSTREAM_PAGES);
    assert_eq!(
        page.next,
        Some(Cursor {
            upstream: Some("100".into()),
            skip: 0,
            size: 10
        })
    );
}

#[test]
fn explicit_deny_hides_an_item_and_tags_are_condition_keys() {
    let policies = vec![policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"mlflow:Get*","Resource":"*"},
            {"Effect":"Deny","Action":"mlflow:GetExperiment","Resource":"*",
             "Condition":{"StringEquals":{"mlflow:ExperimentTag/team":"team-b"}}}]}"#,
    )];
    let scope = scope();
    let context = Context::default();
    let reader = Readability {
        listing: Listing::Experiments,
        scope: &scope,
        policies: &policies,
        session: None,
        principal: ALICE,
        execute_api: API,
        context: &context,
    };
    assert!(reader.readable(&experiment(1, "team-a/x")));
    assert!(!reader.readable(&experiment(2, "team-b/x")));
    // An item without its identifier, or with one that could pose as another ARN, is dropped.
    assert!(!reader.readable(&json!({"name": "team-a/x"})));
    assert!(!reader.readable(&json!({"experiment_id": "1/run/x", "name": "team-a/x"})));
}

#[test]
fn the_article_path_policies_list_what_they_may_get() {
    let reader_policy = vec![policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"{}"}}]}}"#,
        "arn:aws:execute-api:us-east-1:111111111111:mlgate/*/GET/*"
    ))];
    let scope = scope();
    let context = Context::default();
    let reader = Readability {
        listing: Listing::Experiments,
        scope: &scope,
        policies: &reader_policy,
        session: None,
        principal: ALICE,
        execute_api: API,
        context: &context,
    };
    assert!(reader.readable(&experiment(1, "anything")));
}

#[test]
fn models_and_versions_have_their_arns() {
    let s = scope();
    let (arn, keys) = Listing::RegisteredModels
        .resource(
            &s,
            &json!({"name": "churn", "tags": [{"key": "team", "value": "a"}]}),
        )
        .expect("model");
    assert_eq!(arn, s.registered_model("churn"));
    assert_eq!(keys, [("mlflow:ModelTag/team".to_owned(), "a".to_owned())]);
    let (arn, _) = Listing::ModelVersions
        .resource(&s, &json!({"name": "churn", "version": "3"}))
        .expect("version");
    assert_eq!(arn, s.model_version("churn", "3"));
    assert!(
        Listing::ModelVersions
            .resource(&s, &json!({"name": "churn"}))
            .is_none()
    );
}

#[test]
fn tokens_are_bound_to_principal_and_operation() {
    let tokens = PageTokens::new([7; 32]);
    let cursor = Cursor {
        upstream: Some("eyJvZmZzZXQiOiAxMDB9".into()),
        skip: 3,
        size: 100,
    };
    let token = tokens.seal(&cursor, ALICE, Listing::Experiments);
    assert_eq!(
        tokens
            .open(&token, ALICE, Listing::Experiments)
            .expect("opens"),
        cursor
    );
    assert!(tokens.open(&token, BOB, Listing::Experiments).is_err());
    assert!(
        tokens
            .open(&token, ALICE, Listing::RegisteredModels)
            .is_err()
    );
    assert!(
        PageTokens::new([8; 32])
            .open(&token, ALICE, Listing::Experiments)
            .is_err()
    );
    // MLflow's own tokens are not accepted: they would skip the filter's bookkeeping.
    assert!(
        tokens
            .open("eyJvZmZzZXQiOiAxMDB9", ALICE, Listing::Experiments)
            .is_err()
    );
    // A tampered payload fails the MAC.
    let (head, tag) = token.rsplit_once('.').expect("tag");
    let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"t":"x","s":0,"m":100}"#);
    let forged = format!("{TOKEN_PREFIX}{forged_payload}.{tag}");
    assert!(head.starts_with(TOKEN_PREFIX));
    assert!(tokens.open(&forged, ALICE, Listing::Experiments).is_err());
}

#[test]
fn page_requests_read_max_results_and_tokens() {
    let tokens = PageTokens::new([1; 32]);
    let fields = |v: Value| v.as_object().expect("object").clone();
    let req = PageRequest::read(
        Listing::Experiments,
        &fields(json!({"max_results": 5})),
        &tokens,
        ALICE,
    )
    .expect("ok");
    assert_eq!(req.want, 5);
    assert_eq!(req.start, first(100));
    // Query strings carry numbers as text.
    let req = PageRequest::read(
        Listing::RegisteredModels,
        &fields(json!({"max_results": "1000"})),
        &tokens,
        ALICE,
    )
    .expect("ok");
    assert_eq!((req.want, req.start.size), (1000, 1000));
    let req =
        PageRequest::read(Listing::RegisteredModels, &Map::new(), &tokens, ALICE).expect("ok");
    assert_eq!(req.want, 100);
    assert!(
        PageRequest::read(
            Listing::RegisteredModels,
            &fields(json!({"max_results": 1001})),
            &tokens,
            ALICE
        )
        .is_err()
    );
    let token = tokens.seal(&first(100), BOB, Listing::Experiments);
    assert!(
        PageRequest::read(
            Listing::Experiments,
            &fields(json!({"page_token": token})),
            &tokens,
            ALICE
        )
        .is_err()
    );
}

#[test]
fn upstream_requests_carry_the_client_fields() {
    let fields = json!({"filter": "name LIKE 'team-a/%'", "order_by": ["name ASC", "last_update_time DESC"], "max_results": 3, "page_token": "mlg1.x.y"});
    let up = upstream_fields(fields.as_object().expect("object"), Some("abc"), 100);
    assert_eq!(up["max_results"], 100);
    assert_eq!(up["page_token"], "abc");
    let first = upstream_fields(fields.as_object().expect("object"), None, 100);
    assert!(!first.contains_key("page_token"));
    let q = query_string(&first);
    assert_eq!(
        q,
        "filter=name+LIKE+%27team-a%2F%25%27&max_results=100&order_by=name+ASC&order_by=last_update_time+DESC"
    );
}

#[test]
fn answers_have_mlflow_shape() {
    let page = Page {
        items: vec![json!({"name": "m"})],
        next: None,
    };
    assert_eq!(
        answer(Listing::RegisteredModels, page, Some("t".into())),
        json!({"registered_models": [{"name": "m"}], "next_page_token": "t"})
    );
}
