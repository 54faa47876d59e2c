use crate::Classified;
use serde_json::json;

use super::*;

fn body(q: &str, variables: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"query": q, "variables": variables})).expect("json")
}

fn request(q: &str, variables: Value) -> Result<GraphQlRequest, GraphQlError> {
    graphql_request(&body(q, variables))
}

fn ok(q: &str, variables: Value) -> GraphQlRequest {
    request(q, variables).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// (key, operation, one id field's values) of each root field.
fn summary(r: &GraphQlRequest, id: &str) -> Vec<(String, &'static str, Vec<String>)> {
    r.fields
        .iter()
        .map(|f| {
            let ids = f
                .params
                .as_ref()
                .and_then(|p| p.try_str_values(id).ok())
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned)
                .collect();
            (f.key.clone(), f.operation, ids)
        })
        .collect()
}

/// The MLflow UI's run page query (mlflow/server/js, 3.17.2).
const UI_GET_RUN: &str = r#"query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      apiError { helpUrl code message }
      run {
        info { runName status runUuid experimentId artifactUri }
        experiment { experimentId name tags { key value } }
        modelVersions { status version name source }
        data { metrics { key value step timestamp } }
      }
    }
  }"#;

#[test]
fn ui_queries_map_to_their_rest_twins() {
    let r = ok(UI_GET_RUN, json!({"data": {"runId": "abc"}}));
    assert_eq!(r.kind, OperationKind::Query);
    assert_eq!(
        summary(&r, "run_id"),
        vec![("mlflowGetRun".to_owned(), "GetRun", vec!["abc".to_owned()])]
    );
    let field = &r.fields[0];
    assert_eq!(field.action(), "mlflow:GetRun");
    assert_eq!(field.route.map(|r| r.operation), Some("GetRun"));
    assert!(field.reads_experiment);
    assert_eq!(
        field.model_versions,
        vec![ModelVersionList {
            path: vec!["mlflowGetRun".into(), "run".into(), "modelVersions".into()],
            name_key: Some("name".into()),
            version_key: Some("version".into()),
        }]
    );

    let r = ok(
        "query SearchRuns($data: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $data) { runs { info { runUuid } } } }",
        json!({"data": {"experimentIds": ["1", "2"], "filter": "", "runViewType": "ACTIVE_ONLY"}}),
    );
    assert_eq!(
        summary(&r, "experiment_ids"),
        vec![(
            "mlflowSearchRuns".to_owned(),
            "SearchRuns",
            vec!["1".to_owned(), "2".to_owned()]
        )]
    );
    assert!(!r.fields[0].reads_experiment);
    assert!(r.fields[0].model_versions.is_empty());

    let r = ok(
        "query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) { mlflowGetExperiment(input: $input) { experiment { name } } }",
        json!({"input": {"experimentId": "7"}}),
    );
    assert_eq!(
        summary(&r, "experiment_id"),
        vec![(
            "mlflowGetExperiment".into(),
            "GetExperiment",
            vec!["7".into()]
        )]
    );

    let r = ok(
        "query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!) { mlflowGetMetricHistoryBulkInterval(input: $data) { __typename metrics { key } } }",
        json!({"data": {"runIds": ["r1", "r2"], "metricKey": "loss", "maxResults": 320}}),
    );
    assert_eq!(
        summary(&r, "run_ids"),
        vec![(
            "mlflowGetMetricHistoryBulkInterval".into(),
            "GetMetricHistoryBulkInterval",
            vec!["r1".into(), "r2".into()]
        )]
    );
}

#[test]
fn literal_arguments_and_every_field() {
    let r = ok(
        r#"{
            a: mlflowListArtifacts(input: {runUuid: "r1", path: "model"}) { files { path } }
            b: mlflowSearchModelVersions(input: {filter: "name='m'"}) { modelVersions { name version } }
            c: mlflowSearchRuns(input: {experimentIds: "5"}) { runs { modelVersions { v: version name } } }
            test(inputString: "x") { output }
            __typename
            __schema { types { name } }
            __type(name: "MlflowRun") { name }
        }"#,
        json!(null),
    );
    let ops: Vec<_> = r.fields.iter().map(|f| f.operation).collect();
    assert_eq!(
        ops,
        [
            "ListArtifacts",
            "SearchModelVersions",
            "SearchRuns",
            "GraphQLQuery",
            "GraphQLQuery",
            "GraphQLQuery",
            "GraphQLQuery"
        ]
    );
    // run_uuid is read as run_id, as MLflow's handler does
    assert_eq!(summary(&r, "run_id")[0].2, ["r1"]);
    // a single value where a list is expected is coerced to a list, as graphql-core does
    assert_eq!(summary(&r, "experiment_ids")[2].2, ["5"]);
    assert_eq!(
        r.fields[1].model_versions[0].path,
        ["b".to_owned(), "modelVersions".to_owned()]
    );
    assert_eq!(
        r.fields[2].model_versions[0],
        ModelVersionList {
            path: vec!["c".into(), "runs".into(), "modelVersions".into()],
            name_key: Some("name".into()),
            version_key: Some("v".into()),
        }
    );
}

#[test]
fn mutations_are_decided_as_what_they_do() {
    let r = ok(
        "mutation M { mlflowSearchRuns(input: {experimentIds: [\"1\"]}) { runs { info { runId } } } mlflowSearchDatasets(input: {experimentIds: [\"1\"]}) { datasetSummaries { name } } testMutation(inputString: \"x\") { output } }",
        json!({}),
    );
    assert_eq!(r.kind, OperationKind::Mutation);
    let ops: Vec<_> = r.fields.iter().map(|f| f.action()).collect();
    assert_eq!(
        ops,
        [
            "mlflow:SearchRuns",
            "mlflow:SearchDatasets",
            "mlflow:GraphQLMutation"
        ]
    );
    // a query field disguised in a mutation, and the reverse, are unknown
    for q in [
        "mutation { mlflowGetRun(input: {runId: \"x\"}) { run { info { runId } } } }",
        "query { testMutation(inputString: \"x\") { output } }",
        "query { mlflowSearchDatasets(input: {}) { datasetSummaries { name } } }",
        "subscription { mlflowGetRun(input: {runId: \"x\"}) { run { info { runId } } } }",
    ] {
        assert!(
            matches!(request(q, json!({})), Err(GraphQlError::UnknownField(_))),
            "{q}"
        );
    }
}

#[test]
fn aliases_and_fragments_cannot_hide_a_field() {
    let r = ok(
        r#"query Q($id: String) {
            mine: test(inputString: "x") { output }
            ...F
            ... on Query { inline: mlflowGetExperiment(input: {experimentId: "2"}) { experiment { name } } }
            ... @include(if: true) { mlflowGetRun(input: {runId: $id}) { run { ...R } } }
        }
        fragment F on Query { test: mlflowGetRun(input: {runId: "theirs"}) { run { info { runId } } } ...F }
        fragment R on MlflowRunExtension { other: experiment { name } modelVersions { name version } }"#,
        json!({"id": "r9"}),
    );
    assert_eq!(
        summary(&r, "run_id")
            .into_iter()
            .map(|(k, op, ids)| format!("{k}={op}{ids:?}"))
            .collect::<Vec<_>>(),
        [
            "mine=GraphQLQuery[]",
            "test=GetRun[\"theirs\"]",
            "inline=GetExperiment[]",
            "mlflowGetRun=GetRun[\"r9\"]"
        ]
    );
    assert_eq!(summary(&r, "experiment_id")[2].2, ["2"]);
    assert!(r.fields[3].reads_experiment);
    assert_eq!(r.fields[3].model_versions.len(), 1);

    // an alias cannot pass another field off as the model name the filter reads
    for q in [
        "{ mlflowSearchModelVersions(input: {}) { modelVersions { name: description version } } }",
        "{ mlflowSearchModelVersions(input: {}) { modelVersions { name version: name } } }",
        "{ mlflowGetRun(input: {runId: \"r\"}) { run { modelVersions { name ... on MlflowModelVersion { name: source } version } } } }",
    ] {
        assert!(
            matches!(request(q, json!({})), Err(GraphQlError::AmbiguousKey(_))),
            "{q}"
        );
    }
    // a list whose name is not selected is reported without a name key: nothing is kept
    let r = ok(
        "{ mlflowSearchModelVersions(input: {}) { modelVersions { version source } } }",
        json!({}),
    );
    assert_eq!(r.fields[0].model_versions[0].name_key, None);
}

#[test]
fn variables_and_defaults() {
    let q = r#"query Q($r: String = "default", $e: [String!]) {
        mlflowGetRun(input: {runId: $r}) { run { info { runId } } }
        mlflowSearchRuns(input: {experimentIds: $e}) { runs { info { runId } } }
    }"#;
    let r = ok(q, json!({"e": ["4"]}));
    assert_eq!(summary(&r, "run_id")[0].2, ["default"]);
    assert_eq!(summary(&r, "experiment_ids")[1].2, ["4"]);
    let r = ok(q, json!({"r": "given", "e": "single"}));
    assert_eq!(summary(&r, "run_id")[0].2, ["given"]);
    assert_eq!(summary(&r, "experiment_ids")[1].2, ["single"]);
    // escapes are decoded exactly as graphql-core does
    let r = ok(
        r#"{ mlflowGetExperiment(input: {experimentId: "\u0031\u0032"}) { experiment { name } } }"#,
        json!({}),
    );
    assert_eq!(summary(&r, "experiment_id")[0].2, ["12"]);
    let r = ok(
        "{ mlflowGetExperiment(input: {experimentId: \"\"\"  3\"\"\"}) { experiment { name } } }",
        json!({}),
    );
    assert_eq!(summary(&r, "experiment_id")[0].2, ["  3"]);
}

#[test]
fn operation_name_selects_what_executes() {
    let doc = r#"query Mine { mlflowGetRun(input: {runId: "mine"}) { run { info { runId } } } }
        query Theirs { mlflowGetRun(input: {runId: "theirs"}) { run { info { runId } } } }"#;
    let pick = |name: Value| {
        graphql_request(
            &serde_json::to_vec(&json!({"query": doc, "operationName": name})).expect("json"),
        )
    };
    let r = pick(json!("Theirs")).expect("named");
    assert_eq!(summary(&r, "run_id")[0].2, ["theirs"]);
    assert_eq!(pick(json!(null)), Err(GraphQlError::AmbiguousOperation));
    assert_eq!(pick(json!("Other")), Err(GraphQlError::NoOperation));
    for q in [
        "query A { test { output } } query A { test { output } }",
        "{ test { output } } query A { test { output } }",
    ] {
        assert_eq!(
            request(q, json!({})),
            Err(GraphQlError::AmbiguousOperation),
            "{q}"
        );
    }
}

#[test]
fn doubt_is_refused() {
    for (q, variables) in [
        ("{ unknownField { x } }", json!({})),
        (
            "{ mlflowDeleteExperiment(input: {experimentId: \"1\"}) { ok } }",
            json!({}),
        ),
        ("query { a ", json!({})),
        ("query { }", json!({})),
        ("", json!({})),
        ("# only a comment", json!({})),
        ("type Query { a: String }", json!({})),
        ("schema { query: Query }", json!({})),
        ("query { ...Missing }", json!({})),
        (
            "{ mlflowGetRun(input: {runId: $undefined}) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: {runId: 5}) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: {runId: \"a\", runId: \"b\"}) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: {run_id: \"a\"}) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: {runId: \"a\", runUuid: \"b\"}) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: {runId: \"a\"}, other: 1) { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowGetRun(input: \"a\") { run { info { runId } } } }",
            json!({}),
        ),
        (
            "{ mlflowSearchRuns(input: {experimentIds: [1]}) { runs { info { runId } } } }",
            json!({}),
        ),
        (
            "query Q($d: MlflowGetRunInput) { mlflowGetRun(input: $d) { run { info { runId } } } }",
            json!({"d": {"runId": ["a"]}}),
        ),
        (
            "query Q($d: MlflowGetRunInput) { mlflowGetRun(input: $d) { run { info { runId } } } }",
            json!({"d": {"run_id": "a"}}),
        ),
        ("{ a } \u{0}", json!({})),
        ("{ a } \"unterminated", json!({})),
    ] {
        assert!(request(q, variables).is_err(), "{q:?}");
    }
    for raw in [
        &b""[..],
        b"null",
        b"[]",
        b"{\"query\": 5}",
        b"{\"variables\": {}}",
        b"{\"query\": \"{test{output}}\", \"query\": \"mutation {testMutation{output}}\"}",
        b"\"{\\\"query\\\": \\\"{test{output}}\\\"}\"",
        b"{\"query\": \"{test{output}}\", \"operationName\": 3}",
        b"{\"query\": \"{test{output}}\", \"variables\": [1]}",
    ] {
        assert!(
            graphql_request(raw).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn deep_and_large_documents_are_refused_without_overflow() {
    let q = format!("{{ {} }}", "a {".repeat(5000) + &"}".repeat(5000));
    assert_eq!(request(&q, json!({})), Err(GraphQlError::TooLarge));
    let q = format!(
        "{{ test(inputString: {}) {{ output }} }}",
        "[".repeat(5000) + &"]".repeat(5000)
    );
    assert_eq!(request(&q, json!({})), Err(GraphQlError::TooLarge));
    let q = format!("{{ {} }}", "__typename ".repeat(MAX_ROOT_FIELDS + 1));
    assert_eq!(request(&q, json!({})), Err(GraphQlError::TooLarge));
    let q = format!("{{ {} }}", "__typename ".repeat(MAX_TOKENS));
    assert_eq!(request(&q, json!({})), Err(GraphQlError::TooLarge));
    // fragments spreading each other many times over stay bounded
    let mut q = String::from("{ ...F0 }");
    for i in 0..30 {
        q.push_str(&format!(
            " fragment F{i} on Query {{ ...F{n} ...F{n} __typename }}",
            n = i + 1
        ));
    }
    q.push_str(" fragment F30 on Query { __typename }");
    assert!(request(&q, json!({})).is_ok());
}

#[test]
fn model_version_lists_are_filtered_in_the_answer() {
    let list = ModelVersionList {
        path: vec!["k".into(), "runs".into(), "mv".into()],
        name_key: Some("name".into()),
        version_key: Some("v".into()),
    };
    let mut data = json!({"k": {"runs": [
        {"mv": [{"name": "mine", "v": "1"}, {"name": "theirs", "v": "1"}, {"v": "2"}]},
        {"mv": null},
        {"mv": [{"name": "theirs", "v": "3"}]}
    ]}});
    list.retain(&mut data, &mut |name, _| name == "mine");
    assert_eq!(
        data,
        json!({"k": {"runs": [{"mv": [{"name": "mine", "v": "1"}]}, {"mv": null}, {"mv": []}]}})
    );
    let nameless = ModelVersionList {
        name_key: None,
        ..list
    };
    let mut data = json!({"k": {"runs": [{"mv": [{"v": "1"}]}]}});
    nameless.retain(&mut data, &mut |_, _| true);
    assert_eq!(data, json!({"k": {"runs": [{"mv": []}]}}));
}

#[test]
fn every_root_field_has_a_rest_twin_in_the_catalog() {
    for spec in ROOT_FIELDS {
        if let Some((method, path)) = spec.rest {
            let Classified::Route { route, .. } = classify(method, path) else {
                panic!("{} has no route", spec.name);
            };
            assert_eq!(route.operation, spec.operation, "{}", spec.name);
        }
    }
}

/// The gateway decides a root field on its REST twin's own identifiers; a twin whose request
/// names other resources (references) would need those decided too, so none may have any.
#[test]
fn no_rest_twin_has_references() {
    for spec in ROOT_FIELDS {
        let Some((method, path)) = spec.rest else {
            continue;
        };
        let Classified::Route { route, .. } = crate::classify(method, path) else {
            panic!("{} has no REST twin at {method} {path}", spec.name)
        };
        assert!(
            route.ids.iter().all(|id| id.implies.is_none()),
            "{}'s REST twin {} names other resources: decide them in the GraphQL stage",
            spec.name,
            route.operation
        );
    }
}

/// The body after setting `values` in the first root field's `input`.
fn rewritten(q: &str, variables: Value, values: &[(&str, Value)]) -> Value {
    let body = body(q, variables.clone());
    let request = ok(q, variables);
    let mut rewrite = GraphQlRewrite::default();
    request.fields[0]
        .set_input(values, &mut rewrite)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let out = rewrite.apply(&body).expect("applies");
    // What mlgate forwards reads as the field with its new input.
    let again = graphql_request(&out).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(again.fields.len(), request.fields.len());
    serde_json::from_slice(&out).expect("json")
}

fn experiment_ids(body: &Value) -> Vec<String> {
    let again = graphql_request(&serde_json::to_vec(body).expect("json")).expect("reads");
    summary(&again, "experiment_ids")[0].2.clone()
}

#[test]
fn input_fields_are_rewritten_where_they_are_written() {
    let narrowed = [("experimentIds", json!(["1"]))];
    // Inline list, enum and number around it left as written.
    let q = r#"{ mlflowSearchRuns(input: {experimentIds: ["1", "2"], runViewType: ACTIVE_ONLY, maxResults: 5}) { runs { info { runId } } } }"#;
    let out = rewritten(q, json!({}), &narrowed);
    assert_eq!(experiment_ids(&out), ["1"]);
    let text = out["query"].as_str().expect("query");
    assert!(
        text.contains(r#"experimentIds: ["1"] , runViewType: ACTIVE_ONLY, maxResults: 5"#),
        "{text}"
    );
    // A single value (coerced to a list), followed directly by the next field.
    let q = r#"mutation { mlflowSearchRuns(input: {experimentIds: "2"maxResults: 5}) { runs { info { runId } } } }"#;
    assert_eq!(experiment_ids(&rewritten(q, json!({}), &narrowed)), ["1"]);
    // The list is a variable: the variable changes, the query does not.
    let q = "query Q($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } }";
    let out = rewritten(q, json!({"ids": ["1", "2"]}), &narrowed);
    assert_eq!(out["query"], q);
    assert_eq!(out["variables"], json!({"ids": ["1"]}));
    // A variable's default is overridden by the value mlgate sets.
    let q = r#"query Q($ids: [String] = ["1", "2"]) { mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } }"#;
    assert_eq!(experiment_ids(&rewritten(q, json!(null), &narrowed)), ["1"]);
    // The whole input is a variable: its other fields are kept.
    let q = "query Q($data: MlflowSearchRunsInput) { mlflowSearchRuns(input: $data) { runs { info { runId } } } }";
    let out = rewritten(
        q,
        json!({"data": {"experimentIds": ["1", "2"], "runViewType": "ALL"}}),
        &narrowed,
    );
    assert_eq!(
        out["variables"]["data"],
        json!({"experimentIds": ["1"], "runViewType": "ALL"})
    );
    // Absent fields are added; an absent or null input is written.
    let paging = [("pageToken", json!("t\"1")), ("maxResults", json!(3))];
    for q in [
        r#"{ mlflowSearchModelVersions(input: {filter: "name='m'"}) { modelVersions { name } } }"#,
        "{ mlflowSearchModelVersions { modelVersions { name } } }",
        "{ mlflowSearchModelVersions(input: null) { modelVersions { name } } }",
    ] {
        let out = rewritten(q, json!({}), &paging);
        let again = graphql_request(&serde_json::to_vec(&out).expect("json")).expect("reads");
        let fields = again.fields[0]
            .params
            .as_ref()
            .expect("params")
            .fields()
            .clone();
        assert_eq!(fields.get("page_token"), Some(&json!("t\"1")), "{out}");
        assert_eq!(fields.get("max_results"), Some(&json!(3)), "{out}");
    }
}

#[test]
fn a_value_shared_by_fields_changed_differently_is_refused() {
    let q = "query Q($ids: [String]) { a: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } b: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } }";
    let request = ok(q, json!({"ids": ["1", "2"]}));
    let mut rewrite = GraphQlRewrite::default();
    let [a, b] = &request.fields[..] else {
        panic!("two fields")
    };
    a.set_input(&[("experimentIds", json!(["1"]))], &mut rewrite)
        .expect("first");
    b.set_input(&[("experimentIds", json!(["1"]))], &mut rewrite)
        .expect("same value");
    assert_eq!(
        b.set_input(&[("experimentIds", json!(["2"]))], &mut rewrite),
        Err(GraphQlError::ConflictingRewrite)
    );
}

#[test]
fn a_version_search_is_paged_through_its_token() {
    let q = "{ s: mlflowSearchModelVersions(input: {maxResults: 2}) { modelVersions { name version } } }";
    let searched = ok(q, json!({}));
    let paging = searched.fields[0].paging.clone().expect("paged");
    assert_eq!(paging.token_key, None);
    let mut rewrite = GraphQlRewrite::default();
    searched.fields[0]
        .page_at("tok", 100, &mut rewrite)
        .expect("pages");
    let out = rewrite.apply(&body(q, json!({}))).expect("applies");
    let again = graphql_request(&out).expect("reads");
    let field = &again.fields[0];
    assert_eq!(
        field.paging.as_ref().and_then(|p| p.token_key.as_deref()),
        Some(NEXT_PAGE_TOKEN)
    );
    let fields = field.params.as_ref().expect("params").fields();
    assert_eq!(
        (fields.get("page_token"), fields.get("max_results")),
        (Some(&json!("tok")), Some(&json!(100)))
    );
    // Its token selected under an alias is read there; a refilled search shares no key.
    let q = "{ mlflowSearchModelVersions { t: nextPageToken modelVersions { name version } } }";
    assert_eq!(
        ok(q, json!({})).fields[0]
            .paging
            .as_ref()
            .and_then(|p| p.token_key.as_deref()),
        Some("t")
    );
    let q = "{ a: mlflowSearchModelVersions { modelVersions { name version } } a: mlflowSearchModelVersions { modelVersions { name version } } }";
    assert_eq!(
        request(q, json!({})),
        Err(GraphQlError::AmbiguousKey("a".into()))
    );
}
