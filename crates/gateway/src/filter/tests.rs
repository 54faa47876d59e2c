use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use mlgate_policy::{Context, NamedPolicy, PolicyDocument};
use serde_json::json;

use super::*;
use crate::authorize::PolicySet;
use crate::identity::{AuthMethod, Principal, PrincipalKind};

const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
const BOB: &str = "arn:aws:iam::111111111111:user/bob";
const API_ROOT: &str = "arn:aws:execute-api:us-east-1:111111111111:mlgate/prod/GET/";

/// The first catalogued route of `operation`.
fn route(operation: &str) -> &'static Route {
    mlgate_catalog::routes()
        .iter()
        .find(|route| route.operation == operation)
        .expect("catalogued")
}

/// A GET request's fields from its query string.
fn fields(query: &str) -> Params {
    mlgate_catalog::read_params("GET", Some(query), None, b"").expect("fields")
}

/// The listing of `operation`, filtered item by item.
fn listing(operation: &str) -> &'static Listing {
    listing_of(route(operation), &fields(""), None).expect("listing")
}

fn experiments() -> &'static Listing {
    listing("SearchExperiments")
}

fn models() -> &'static Listing {
    listing("SearchRegisteredModels")
}

fn versions() -> &'static Listing {
    listing("SearchModelVersions")
}

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

/// Reading experiments whose name passes `operator` with `value`.
fn experiment_names(operator: &str, value: &str) -> NamedPolicy {
    policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"mlflow:GetExperiment","Resource":"*",
            "Condition":{{"{operator}":{{"mlflow:ExperimentName":"{value}"}}}}}}]}}"#
    ))
}

fn team_a_only() -> Vec<NamedPolicy> {
    vec![experiment_names("StringLike", "team-a/*")]
}

/// Alice asking with `policies` (and no condition keys of her own).
fn asker(policies: &[NamedPolicy]) -> Asker<'static> {
    let alice: &'static Principal = Box::leak(Box::new(Principal {
        arn: ALICE.into(),
        account: "111111111111".into(),
        name: "alice".into(),
        kind: PrincipalKind::User,
        groups: Vec::new(),
        tags: Default::default(),
        auth_method: AuthMethod::Basic,
    }));
    Asker {
        principal: alice,
        policies: Cow::Owned(PolicySet {
            identity: Arc::from(policies.to_vec()),
            session: None,
        }),
        context: Context::default(),
        execute_api: API_ROOT,
    }
}

/// Alice's view of `listing`.
fn reader<'a>(
    listing: &'static Listing,
    scope: &'a ArnScope,
    asker: &'a Asker<'a>,
) -> Readability<'a> {
    Readability {
        listing,
        scope,
        asker,
        execute_api_root: API_ROOT,
    }
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
    let asker = asker(policies);
    let reader = reader(experiments(), &scope, &asker);
    fill_page(
        experiments(),
        want,
        start,
        &scope,
        |token: Option<String>, size| std::future::ready(upstream.page(token.as_deref(), size)),
        |_| std::future::ready(Ok(PageFacts::default())),
        |item, creator, links| reader.readable(item, creator, links),
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
    let asker = asker(&policies);
    let reader = reader(experiments(), &scope, &asker);
    assert!(reader.readable(&experiment(1, "team-a/x"), None, None));
    assert!(!reader.readable(&experiment(2, "team-b/x"), None, None));
    // An item without its identifier, or with one that could pose as another ARN, is dropped.
    assert!(!reader.readable(&json!({"name": "team-a/x"}), None, None));
    assert!(!reader.readable(
        &json!({"experiment_id": "1/run/x", "name": "team-a/x"}),
        None,
        None
    ));
}

#[test]
fn the_article_path_policies_list_what_they_may_get() {
    let reader_policy = vec![policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"{}"}}]}}"#,
        "arn:aws:execute-api:us-east-1:111111111111:mlgate/*/GET/*"
    ))];
    let scope = scope();
    let asker = asker(&reader_policy);
    let reader = reader(experiments(), &scope, &asker);
    assert!(reader.readable(&experiment(1, "anything"), None, None));
}

#[test]
fn models_and_versions_have_their_arns() {
    let s = scope();
    let item = json!({"name": "churn", "tags": [{"key": "team", "value": "a"}]});
    let ItemResource { arns, keys, .. } = item_resource(models(), &s, &item).expect("model");
    assert_eq!(arns, [s.registered_model("churn")]);
    assert_eq!(keys, [("mlflow:ModelTag/team".to_owned(), "a".to_owned())]);
    let item = json!({"name": "churn", "version": "3"});
    let ItemResource { arns, .. } = item_resource(versions(), &s, &item).expect("version");
    assert_eq!(arns, [s.model_version("churn", "3")]);
    assert!(item_resource(versions(), &s, &json!({"name": "churn"})).is_none());
}

fn query(v: Value) -> Map<String, Value> {
    v.as_object().expect("object").clone()
}

#[test]
fn tokens_are_bound_to_principal_operation_and_query() {
    let tokens = PageTokens::new([7; 32]);
    let cursor = Cursor {
        upstream: Some("eyJvZmZzZXQiOiAxMDB9".into()),
        skip: 3,
        size: 100,
    };
    let q = query(json!({"filter": "name LIKE 'team-a/%'", "max_results": 2}));
    let token = tokens.seal(&cursor, ALICE, experiments(), &q);
    assert_eq!(
        tokens
            .open(&token, ALICE, experiments(), &q)
            .expect("opens"),
        cursor
    );
    // The paging fields may change from page to page; the query may not.
    let next =
        query(json!({"filter": "name LIKE 'team-a/%'", "max_results": 5, "page_token": token}));
    assert!(tokens.open(&token, ALICE, experiments(), &next).is_ok());
    let other_query = query(json!({"filter": "name LIKE 'team-b/%'"}));
    assert!(
        tokens
            .open(&token, ALICE, experiments(), &other_query)
            .is_err()
    );
    assert!(tokens.open(&token, BOB, experiments(), &q).is_err());
    assert!(tokens.open(&token, ALICE, models(), &q).is_err());
    assert!(
        PageTokens::new([8; 32])
            .open(&token, ALICE, experiments(), &q)
            .is_err()
    );
    // MLflow's own tokens are not accepted: they would skip the filter's bookkeeping.
    assert!(
        tokens
            .open("eyJvZmZzZXQiOiAxMDB9", ALICE, experiments(), &q)
            .is_err()
    );
    // A tampered payload fails the MAC.
    let (head, tag) = token.rsplit_once('.').expect("tag");
    let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"t":"x","s":0,"m":100}"#);
    let forged = format!("{TOKEN_PREFIX}{forged_payload}.{tag}");
    assert!(head.starts_with(TOKEN_PREFIX));
    assert!(tokens.open(&forged, ALICE, experiments(), &q).is_err());
}

#[test]
fn page_requests_read_max_results_and_tokens() {
    let tokens = PageTokens::new([1; 32]);
    let fields = |v: Value| v.as_object().expect("object").clone();
    let req = PageRequest::read(
        experiments(),
        &fields(json!({"max_results": 5})),
        &tokens,
        ALICE,
    )
    .expect("ok");
    assert_eq!(req.want, 5);
    assert_eq!(req.start, first(100));
    // Query strings carry numbers as text.
    let req = PageRequest::read(
        models(),
        &fields(json!({"max_results": "1000"})),
        &tokens,
        ALICE,
    )
    .expect("ok");
    assert_eq!((req.want, req.start.size), (1000, 1000));
    let req = PageRequest::read(models(), &Map::new(), &tokens, ALICE).expect("ok");
    assert_eq!(req.want, 100);
    assert!(
        PageRequest::read(
            models(),
            &fields(json!({"max_results": 1001})),
            &tokens,
            ALICE
        )
        .is_err()
    );
    let token = tokens.seal(&first(100), BOB, experiments(), &Map::new());
    assert!(
        PageRequest::read(
            experiments(),
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
    let up = upstream_fields(
        experiments(),
        fields.as_object().expect("object"),
        Some("abc"),
        100,
        None,
    );
    assert_eq!(up["max_results"], 100);
    assert_eq!(up["page_token"], "abc");
    let first = upstream_fields(
        experiments(),
        fields.as_object().expect("object"),
        None,
        100,
        None,
    );
    assert!(!first.contains_key("page_token"));
    let q = query_string(&first);
    assert_eq!(
        q,
        "filter=name+LIKE+%27team-a%2F%25%27&max_results=100&order_by=name+ASC&order_by=last_update_time+DESC"
    );
}

#[test]
fn a_name_prefix_that_bounds_every_readable_experiment_narrows_the_upstream_search() {
    let scope = scope();
    let narrowing = |policies: &[NamedPolicy], listing| {
        let asker = asker(policies);
        reader(listing, &scope, &asker).upstream_narrowing()
    };
    assert_eq!(
        narrowing(&team_a_only(), experiments()).as_deref(),
        Some("name LIKE 'team-a/%'")
    );
    // Another listing, a policy that lets any name through, the article's path policies: none.
    assert_eq!(narrowing(&team_a_only(), models()), None);
    // The id at the end of the read's path is a prefix of its execute-api ARN; an id inside
    // the path is not a resource the bound can be asked about: no narrowing.
    let read_at = |read_path: &'static str| -> &'static Listing {
        Box::leak(Box::new(Listing {
            read_path,
            item: ListedItem::Experiment,
            ..*experiments()
        }))
    };
    assert_eq!(
        narrowing(&team_a_only(), read_at("/api/2.0/mlflow/experiments/{}")).as_deref(),
        Some("name LIKE 'team-a/%'")
    );
    assert_eq!(
        narrowing(
            &team_a_only(),
            read_at("/api/2.0/mlflow/experiments/{}/get")
        ),
        None
    );
    let everything = policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:Get*","Resource":"*"}]}"#,
    );
    assert_eq!(
        narrowing(&[team_a_only()[0].clone(), everything], experiments()),
        None
    );
    let article = policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"{}"}}]}}"#,
        "arn:aws:execute-api:us-east-1:111111111111:mlgate/*/GET/*"
    ));
    assert_eq!(
        narrowing(&[team_a_only()[0].clone(), article], experiments()),
        None
    );
    // Characters MLflow's filter could read otherwise end the prefix; case-insensitive names
    // are searched with ILIKE.
    let quoted = experiment_names("StringLike", "o'brien/*");
    assert_eq!(
        narrowing(&[quoted], experiments()).as_deref(),
        Some("name LIKE 'o%'")
    );
    let ignoring = experiment_names("StringEqualsIgnoreCase", "Ops/Main");
    assert_eq!(
        narrowing(&[ignoring], experiments()).as_deref(),
        Some("name ILIKE 'Ops/Main%'")
    );
}

#[test]
fn the_narrowing_clause_is_anded_to_a_filter_mlflow_reads_as_written() {
    let clause = "name LIKE 'team-a/%'";
    assert_eq!(
        narrowed_filter(&query(json!({})), clause).as_deref(),
        Some(clause)
    );
    assert_eq!(
        narrowed_filter(&query(json!({"filter": " "})), clause).as_deref(),
        Some(clause)
    );
    assert_eq!(
        narrowed_filter(&query(json!({"filter": "tags.stage = 'prod'"})), clause).as_deref(),
        Some("tags.stage = 'prod' AND name LIKE 'team-a/%'")
    );
    // An open quote would swallow the clause: the caller's filter goes as written.
    assert_eq!(
        narrowed_filter(&query(json!({"filter": "name = 'x"})), clause),
        None
    );
    assert_eq!(narrowed_filter(&query(json!({"filter": 3})), clause), None);
}

/// The narrowed search answers exactly what the filter alone does, page after page.
#[tokio::test]
async fn narrowing_upstream_keeps_the_same_pages() {
    let items = mixed(500);
    let all = Upstream {
        items: items.clone(),
        calls: RefCell::new(Vec::new()),
    };
    let prefixed = Upstream {
        items: items
            .into_iter()
            .filter(|item| {
                item["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("team-a/"))
            })
            .collect(),
        calls: RefCell::new(Vec::new()),
    };
    let mut starts = (first(100), first(100));
    loop {
        let plain = page_of(&all, &team_a_only(), 40, starts.0.clone()).await;
        let narrowed = page_of(&prefixed, &team_a_only(), 40, starts.1.clone()).await;
        assert_eq!(names(&plain), names(&narrowed));
        match (plain.next, narrowed.next) {
            (Some(a), Some(b)) => starts = (a, b),
            (None, None) => break,
            other => panic!("one search ended before the other: {other:?}"),
        }
    }
    assert!(prefixed.calls.borrow().len() < all.calls.borrow().len());
}

#[test]
fn answers_have_mlflow_shape() {
    let page = Page {
        items: vec![json!({"name": "m"})],
        next: None,
        rest: Map::new(),
    };
    assert_eq!(
        answer(models(), page, Some("t".into())),
        json!({"registered_models": [{"name": "m"}], "next_page_token": "t"})
    );
}

#[test]
fn unscoped_listings_are_answered_empty_and_datasets_always_filtered() {
    assert!(lists_nothing(route("SearchTraces"), 0));
    assert!(!lists_nothing(route("SearchTraces"), 1));
    assert!(!lists_nothing(route("SearchRuns"), 0));
    assert!(listing_of(route("SearchEvaluationDatasets"), &fields(""), None).is_some());
    assert!(listing_of(route("SearchExperiments"), &fields(""), None).is_some());
    assert_eq!(route("SearchDatasets").filtering, Some(Filtering::Narrowed));
}

#[test]
fn the_artifact_roots_folders_are_listed_as_their_direct_listings_are_decided() {
    let proxy = mlgate_catalog::routes()
        .iter()
        .find(|r| r.operation == "ListArtifacts" && r.resource == ResourceKind::Artifact)
        .expect("proxy listing");
    for root in ["", "path=", "path=%2F"] {
        assert_eq!(
            listing_of(proxy, &fields(root), None),
            Some(&ARTIFACT_ROOT),
            "{root}"
        );
    }
    assert_eq!(listing_of(proxy, &fields("path=1"), None), None);
    // A workspace's root, written with its prefix, is a root too.
    let root = fields("path=workspaces%2Fteam-a");
    assert_eq!(
        listing_of(proxy, &root, Some("team-a")),
        Some(&ARTIFACT_ROOT)
    );
    assert_eq!(listing_of(proxy, &root, None), None);
    assert_eq!(
        listing_of(route("ListArtifacts"), &fields("run_id=r"), None),
        None
    );
    let s = scope();
    let policies = vec![policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:ListArtifacts",
            "Resource":"arn:mlflow:*:*:experiment/*",
            "Condition":{"StringLike":{"mlflow:ExperimentName":"team-a/*"}}},
            {"Effect":"Allow","Action":"mlflow:ListArtifacts","Resource":"arn:mlflow:*:*:server"}]}"#,
    )];
    let asker = asker(&policies);
    let reader = reader(&ARTIFACT_ROOT, &s, &asker);
    let named = |name: &str| {
        Arc::new(crate::resolve::ExperimentFacts {
            name: name.to_owned(),
            ..Default::default()
        })
    };
    let links: Links = [
        ("1".to_owned(), vec![("1".to_owned(), named("team-a/x"))]),
        ("2".to_owned(), vec![("2".to_owned(), named("team-b/y"))]),
    ]
    .into_iter()
    .collect();
    let folder = |path: &str| json!({"path": path, "is_dir": true});
    assert!(reader.readable(&folder("1"), None, Some(&links)));
    assert!(!reader.readable(&folder("2"), None, Some(&links)));
    // An experiment id MLflow no longer knows: not listed.
    assert!(!reader.readable(&folder("3"), None, Some(&links)));
    // Other names are the server's, as listing them directly is.
    assert_eq!(linked_id(&ARTIFACT_ROOT, &folder("skills")), None);
    assert!(reader.readable(&folder("skills"), None, Some(&links)));
    assert!(!reader.readable(&folder(".."), None, Some(&links)));
}

#[test]
fn a_dataset_is_readable_under_every_experiment_it_is_linked_to() {
    let s = scope();
    let datasets = listing("SearchEvaluationDatasets");
    let policies = vec![policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:GetDataset",
            "Resource":"arn:mlflow:*:*:experiment/*",
            "Condition":{"StringLike":{"mlflow:ExperimentName":"team-a/*"}}}]}"#,
    )];
    let asker = asker(&policies);
    let reader = reader(datasets, &s, &asker);
    let named = |name: &str| {
        Arc::new(crate::resolve::ExperimentFacts {
            name: name.to_owned(),
            ..Default::default()
        })
    };
    let links: Links = [
        ("d-own", vec![("1".to_owned(), named("team-a/x"))]),
        (
            "d-shared",
            vec![
                ("1".to_owned(), named("team-a/x")),
                ("2".to_owned(), named("team-b/y")),
            ],
        ),
        ("d-other", vec![("2".to_owned(), named("team-b/y"))]),
        ("d-unlinked", vec![]),
    ]
    .into_iter()
    .map(|(id, linked)| (id.to_owned(), linked))
    .collect();
    let readable = |id: &str, links: Option<&Links>| {
        reader.readable(&json!({"dataset_id": id, "name": "n"}), None, links)
    };
    assert!(readable("d-own", Some(&links)));
    assert!(
        !readable("d-shared", Some(&links)),
        "one experiment is not enough"
    );
    assert!(!readable("d-other", Some(&links)));
    // Linked to no experiment: `dataset/<id>`, which this policy does not name.
    assert!(!readable("d-unlinked", Some(&links)));
    // Not looked up (gone since MLflow listed it): never listed.
    assert!(!readable("d-own", None));
    assert!(!readable("d-missing", Some(&links)));
    assert_eq!(
        linked_id(datasets, &json!({"dataset_id": "d-1"})),
        Some("d-1")
    );
    assert_eq!(
        linked_id(experiments(), &json!({"dataset_id": "d-1"})),
        None
    );
}

#[test]
fn flat_items_need_every_arn_readable() {
    let s = scope();
    let endpoints = listing("ListGatewayEndpoints");
    let item = json!({"endpoint_id": "e-1", "name": "chat"});
    let ItemResource { arns, id, .. } = item_resource(endpoints, &s, &item).expect("endpoint");
    assert_eq!(
        arns,
        [
            s.flat("gateway-endpoint", "e-1"),
            s.flat("gateway-endpoint", "chat")
        ]
    );
    assert_eq!(id, "e-1");
    let policies = vec![policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"mlflow:GetGatewayEndpoint","Resource":"*"},
            {"Effect":"Deny","Action":"mlflow:GetGatewayEndpoint","Resource":"arn:mlflow:*:*:gateway-endpoint/chat"}]}"#,
    )];
    let asker = asker(&policies);
    let reader = reader(endpoints, &s, &asker);
    assert!(!reader.readable(&item, None, None));
    assert!(reader.readable(&json!({"endpoint_id": "e-2", "name": "embed"}), None, None));
    // An MCP server is `namespace/slug`; anything else is never listed.
    let mcp = listing("SearchMcpServers");
    let server = json!({"name": "io.github/tool"});
    let ItemResource { arns, .. } = item_resource(mcp, &s, &server).expect("server");
    assert_eq!(arns, [s.flat("mcp-server", "io.github/tool")]);
    assert!(item_resource(mcp, &s, &json!({"name": "a/b/c"})).is_none());
    assert!(item_resource(mcp, &s, &json!({"name": "../b"})).is_none());
}

#[tokio::test]
async fn creators_are_looked_up_once_per_upstream_page() {
    let upstream = Upstream {
        items: (0..6).map(|i| experiment(i, &format!("x/e{i}"))).collect(),
        calls: RefCell::default(),
    };
    let scope = scope();
    let policies = vec![policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:GetExperiment","Resource":"*",
            "Condition":{"StringEquals":{"mlflow:ResourceCreator":"${aws:username}"}}}]}"#,
    )];
    let mut asker = asker(&policies);
    asker.context.insert("aws:username", "alice".to_owned());
    let reader = reader(experiments(), &scope, &asker);
    let lookups = RefCell::new(Vec::new());
    let page = fill_page(
        experiments(),
        10,
        first(4),
        &scope,
        |token: Option<String>, size| std::future::ready(upstream.page(token.as_deref(), size)),
        |asked: PageLookups| {
            lookups.borrow_mut().push(asked.creators.len());
            let creators = asked
                .creators
                .into_iter()
                .filter(|arn| arn.ends_with("/1") || arn.ends_with("/5"))
                .map(|arn| (arn, "alice".to_owned()))
                .collect();
            std::future::ready(Ok::<_, String>(PageFacts {
                creators,
                links: None,
            }))
        },
        |item, creator, links| reader.readable(item, creator, links),
    )
    .await
    .expect("pages");
    assert_eq!(names(&page), ["x/e1", "x/e5"]);
    assert_eq!(*lookups.borrow(), [4, 2]);
}

#[tokio::test]
async fn an_answer_whose_items_are_not_a_list_is_refused() {
    let scope = scope();
    let page = fill_page(
        experiments(),
        10,
        first(4),
        &scope,
        |_, _| std::future::ready(Ok::<_, String>(json!({"experiments": {"0": {}}}))),
        |_| std::future::ready(Ok(PageFacts::default())),
        |_, _, _| true,
    )
    .await;
    assert!(page.is_err());
}

#[tokio::test]
async fn unpaged_listings_take_every_readable_item_at_once() {
    let latest = listing("GetLatestModelVersions");
    let tokens = PageTokens::new([1; 32]);
    let request =
        PageRequest::read(latest, &query(json!({"name": "m"})), &tokens, ALICE).expect("request");
    assert_eq!(request.want, usize::MAX);
    let up = upstream_fields(
        latest,
        &query(json!({"name": "m"})),
        None,
        request.start.size,
        None,
    );
    assert_eq!(up, query(json!({"name": "m"})));
    let scope = scope();
    let page = fill_page(
        latest,
        request.want,
        request.start,
        &scope,
        |_, _| {
            std::future::ready(Ok::<_, String>(json!({
                "model_versions": [{"name": "m", "version": "1"}, {"name": "m", "version": "2"}],
                "next_page_token": "ignored",
                "object": "list"
            })))
        },
        |_| std::future::ready(Ok(PageFacts::default())),
        |item, _, _| item["version"] == "2",
    )
    .await
    .expect("page");
    assert_eq!(page.items, [json!({"name": "m", "version": "2"})]);
    assert_eq!(page.next, None);
    // The answer's other fields pass on as MLflow gave them (OpenAI-style `"object": "list"`).
    assert_eq!(
        answer(latest, page, None),
        json!({"model_versions": [{"name": "m", "version": "2"}], "object": "list"})
    );
}

#[test]
fn tokens_from_the_same_master_key_open_on_another_instance() {
    use crate::store::secrets::MasterKey;
    let bytes = [42u8; 32];
    let derived = |bytes: &[u8]| {
        PageTokens::new(
            MasterKey::from_bytes(bytes)
                .expect("key")
                .derive(PAGE_TOKEN_KEY_PURPOSE),
        )
    };
    let (one, replica, other) = (derived(&bytes), derived(&bytes), derived(&[43u8; 32]));
    let q = query(json!({"filter": "name = 'x'"}));
    let token = one.seal(&first(100), ALICE, experiments(), &q);
    assert_eq!(
        replica
            .open(&token, ALICE, experiments(), &q)
            .expect("opens"),
        first(100)
    );
    assert!(other.open(&token, ALICE, experiments(), &q).is_err());
    assert!(replica.open(&token, BOB, experiments(), &q).is_err());
}
