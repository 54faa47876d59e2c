//! What the gateway must know about an operation beyond where its identifiers are: how its
//! answer is kept to what the caller may read ([`Filtering`]), where its request names its
//! author ([`Author`]), what it changes of the experiments and registered models the gateway
//! caches and records ([`Changes`]), whether it writes tags ([`Route::writes_tags`]) and what
//! it serves ([`Serves`]). Each is a field of [`Route`], filled from the tables below, keyed by
//! operation; `tests/mlflow_coverage.rs` ties them to the installed MLflow (which answers list
//! items, which request fields name an author and which handlers read them).
//!
//! [`Route`]: crate::Route
//! [`Route::writes_tags`]: crate::Route::writes_tags

use crate::catalog::ResourceKind;

/// How the gateway keeps a list-like operation from showing what the caller may not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtering {
    /// The answer is filtered item by item (full pages, sealed tokens).
    Items(&'static Listing),
    /// The experiments the request names are narrowed to the readable ones before MLflow sees
    /// the request (an unreadable one is dropped instead of refusing the search).
    Narrowed,
    /// Every item lies under the resources the request names (an experiment, a run, a model,
    /// the trace or run ids of a batch, an artifact path), each decided like a direct read:
    /// all must be allowed.
    Parents,
    /// As [`Filtering::Parents`], but MLflow lists across every experiment when the request
    /// names none: the gateway then answers an empty list itself.
    ParentsOrEmpty,
    /// Server-wide catalogs whose items nobody owns (providers, supported models).
    Unowned,
    /// GraphQL: each root field is authorized with its arguments.
    GraphQl,
}

/// A search whose answer is filtered item by item: where MLflow puts the items and how each
/// names the resource whose read it must allow.
#[derive(Debug, PartialEq, Eq)]
pub struct Listing {
    pub operation: &'static str,
    /// The field of the answer holding the items.
    pub items: &'static str,
    /// The action an item must allow to be listed.
    pub read_action: &'static str,
    /// The route of that read (`GET`, `{}` standing for the item's id), so path-based
    /// policies (the article's readers: `GET/*`) list what they may read.
    pub read_path: &'static str,
    /// MLflow's `max_results` when the request names none, and the largest it accepts;
    /// `None` when MLflow answers every item at once.
    pub paging: Option<(u64, u64)>,
    pub item: ListedItem,
}

/// How a listed item names its resource.
#[derive(Debug, PartialEq, Eq)]
pub enum ListedItem {
    /// `experiment_id`, with `name` and `tags`.
    Experiment,
    /// `name`, with `tags`.
    RegisteredModel,
    /// `name` and `version` (with the version's `tags`).
    ModelVersion,
    /// A resource of this kind for each of the fields (the first one required): all must be
    /// readable.
    Flat(ResourceKind, &'static [&'static str]),
    /// An MCP server, `namespace/slug` in the field.
    McpServer(&'static str),
    /// An evaluation dataset, `dataset_id`: readable when its read is allowed under every
    /// experiment it is linked to (which the gateway looks up, the answer does not say).
    Dataset,
    /// A folder or file at the root of the proxied artifact store, `path`: an experiment id
    /// (decided on that experiment) or another name (decided on the server).
    ArtifactFolder,
}

/// Where a write's request names its author, which the gateway overwrites with the principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    /// `user_id` and the `mlflow.user` entry of the `tags` list (runs being created).
    RunCreator,
    /// `key`/`value` of one run tag: an `mlflow.user` value is replaced (SetTag).
    RunTag,
    /// `mlflow.user` entries of the `tags` list (LogBatch).
    RunTags,
    /// `mlflow.user` inside the `tags` field, a JSON object sent as a string (CreateDataset).
    DatasetTags,
    /// A `created_by` field.
    CreatedBy,
    /// An `updated_by` field.
    UpdatedBy,
}

/// What a write changes of an experiment or a registered model as the gateway knows them (its
/// cached names and tags, its creator records, the condition keys of the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changes {
    Nothing,
    Experiment(Change),
    RegisteredModel(Change),
    /// A model version's stage (`stage` fills `mlflow:TargetStage`).
    ModelVersionStage,
}

/// One kind of change to an experiment or a registered model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created (its kind, for a model, from the request's tags).
    Create,
    /// Renamed to the request's `new_name`.
    Rename,
    Delete,
    Restore,
    /// Its tags set or deleted.
    Tags,
}

/// What a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    /// MLflow's APIs (REST, artifacts, OTLP, AI gateway, ...).
    Api,
    /// `/graphql`: not one action but one per root field of the document.
    GraphQl,
    /// The UI's pages; an unauthenticated browser asking for one is sent to the sign-in page.
    UiPage,
}

/// The filtering decision of an operation, `None` when it is not list-like.
pub(crate) fn filtering(operation: &str) -> Option<Filtering> {
    keyed(&FILTERING, operation)
}

pub(crate) fn author(operation: &str) -> Option<Author> {
    keyed(&AUTHORS, operation)
}

pub(crate) fn changes(operation: &str) -> Changes {
    keyed(&CHANGES, operation).unwrap_or(Changes::Nothing)
}

pub(crate) fn writes_tags(operation: &str) -> bool {
    TAG_WRITES.contains(&operation)
}

pub(crate) fn selects_workspace(operation: &str) -> bool {
    !WORKSPACE_FREE.contains(&operation)
}

pub(crate) fn serves(operation: &str) -> Serves {
    keyed(&SERVES, operation).unwrap_or(Serves::Api)
}

fn keyed<T: Copy>(table: &[(&str, T)], operation: &str) -> Option<T> {
    table
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, fact)| *fact)
}

const fn listing(
    operation: &'static str,
    items: &'static str,
    read_action: &'static str,
    read_path: &'static str,
    paging: Option<(u64, u64)>,
    item: ListedItem,
) -> Listing {
    Listing {
        operation,
        items,
        read_action,
        read_path,
        paging,
        item,
    }
}

/// The action reading one experiment is decided as: each experiment SearchExperiments lists, and
/// the experiment of the runs a GraphQL field selects it from (`GraphQlField::reads_experiment`).
pub const GET_EXPERIMENT: &str = "mlflow:GetExperiment";

/// The proxied artifact store's root (ListArtifacts without a path): one folder per experiment
/// with artifacts, each listed when listing it directly would be allowed.
pub static ARTIFACT_ROOT: Listing = listing(
    "ListArtifacts",
    "files",
    "mlflow:ListArtifacts",
    "/api/2.0/mlflow-artifacts/artifacts",
    None,
    ListedItem::ArtifactFolder,
);

/// SearchModelVersions' listing, which GraphQL's lists of model versions are filtered by too.
pub static MODEL_VERSIONS: Listing = listing(
    "SearchModelVersions",
    "model_versions",
    "mlflow:GetModelVersion",
    "/api/2.0/mlflow/model-versions/get",
    Some((200_000, 200_000)),
    ListedItem::ModelVersion,
);

use ListedItem::Flat;
use ResourceKind as K;

#[rustfmt::skip]
static LISTINGS: [Listing; 16] = [
    listing("SearchExperiments", "experiments", GET_EXPERIMENT, "/api/2.0/mlflow/experiments/get", Some((1000, 50_000)), ListedItem::Experiment),
    listing("SearchRegisteredModels", "registered_models", "mlflow:GetRegisteredModel", "/api/2.0/mlflow/registered-models/get", Some((100, 1000)), ListedItem::RegisteredModel),
    listing("GetLatestModelVersions", "model_versions", "mlflow:GetModelVersion", "/api/2.0/mlflow/model-versions/get", None, ListedItem::ModelVersion),
    // A dataset linked to a named experiment may be linked to others too: always filtered.
    listing("SearchEvaluationDatasets", "datasets", "mlflow:GetDataset", "/api/3.0/mlflow/datasets/{}", Some((1000, 50_000)), ListedItem::Dataset),
    listing("ListWebhooks", "webhooks", "mlflow:GetWebhook", "/api/2.0/mlflow/webhooks/{}", Some((100, 1000)), Flat(K::Webhook, &["webhook_id"])),
    listing("ListWorkspaces", "workspaces", "mlflow:GetWorkspace", "/api/3.0/mlflow/workspaces/{}", None, Flat(K::Workspace, &["name"])),
    listing("SearchJobs", "jobs", "mlflow:GetJob", "/ajax-api/3.0/jobs/{}", None, Flat(K::Job, &["job_id"])),
    listing("ListGatewayEndpoints", "endpoints", "mlflow:GetGatewayEndpoint", "/api/3.0/mlflow/gateway/endpoints/get", None, Flat(K::GatewayEndpoint, &["endpoint_id", "name"])),
    listing("ListGatewayModels", "data", "mlflow:GetGatewayEndpoint", "/api/3.0/mlflow/gateway/endpoints/get", None, Flat(K::GatewayEndpoint, &["id"])),
    listing("ListGatewaySecretInfos", "secrets", "mlflow:GetGatewaySecretInfo", "/api/3.0/mlflow/gateway/secrets/get", None, Flat(K::GatewaySecret, &["secret_id", "secret_name"])),
    listing("ListGatewayModelDefinitions", "model_definitions", "mlflow:GetGatewayModelDefinition", "/api/3.0/mlflow/gateway/model-definitions/get", None, Flat(K::GatewayModelDefinition, &["model_definition_id"])),
    listing("ListGatewayGuardrails", "guardrails", "mlflow:GetGatewayGuardrail", "/api/3.0/mlflow/gateway/guardrails/get", Some((1000, 50_000)), Flat(K::GatewayGuardrail, &["guardrail_id"])),
    listing("ListGatewayBudgetPolicies", "budget_policies", "mlflow:GetGatewayBudgetPolicy", "/api/3.0/mlflow/gateway/budgets/get", Some((1000, 50_000)), Flat(K::GatewayBudgetPolicy, &["budget_policy_id"])),
    listing("ListGatewayBudgetWindows", "windows", "mlflow:GetGatewayBudgetPolicy", "/api/3.0/mlflow/gateway/budgets/get", None, Flat(K::GatewayBudgetPolicy, &["budget_policy_id"])),
    listing("SearchMcpServers", "mcp_servers", "mlflow:GetMcpServer", "/api/3.0/mlflow/mcp-servers/{}", Some((100, 1000)), ListedItem::McpServer("name")),
    listing("SearchMcpAccessEndpoints", "mcp_access_endpoints", "mlflow:GetMcpAccessEndpoint", "/api/3.0/mlflow/mcp-servers/{}/endpoints", Some((100, 1000)), ListedItem::McpServer("server_name")),
];

use Filtering::{GraphQl, Items, Narrowed, Parents, ParentsOrEmpty, Unowned};

/// The filtering decision of every list-like operation (docs/filtering.md has the table).
static FILTERING: [(&str, Filtering); 49] = [
    ("SearchExperiments", Items(&LISTINGS[0])),
    ("SearchRegisteredModels", Items(&LISTINGS[1])),
    ("SearchModelVersions", Items(&MODEL_VERSIONS)),
    ("GetLatestModelVersions", Items(&LISTINGS[2])),
    ("SearchEvaluationDatasets", Items(&LISTINGS[3])),
    ("ListWebhooks", Items(&LISTINGS[4])),
    ("ListWorkspaces", Items(&LISTINGS[5])),
    ("SearchJobs", Items(&LISTINGS[6])),
    ("ListGatewayEndpoints", Items(&LISTINGS[7])),
    ("ListGatewayModels", Items(&LISTINGS[8])),
    ("ListGatewaySecretInfos", Items(&LISTINGS[9])),
    ("ListGatewayModelDefinitions", Items(&LISTINGS[10])),
    ("ListGatewayGuardrails", Items(&LISTINGS[11])),
    ("ListGatewayBudgetPolicies", Items(&LISTINGS[12])),
    ("ListGatewayBudgetWindows", Items(&LISTINGS[13])),
    ("SearchMcpServers", Items(&LISTINGS[14])),
    ("SearchMcpAccessEndpoints", Items(&LISTINGS[15])),
    ("SearchRuns", Narrowed),
    ("SearchLoggedModels", Narrowed),
    ("SearchDatasets", Narrowed),
    ("SearchTraces", ParentsOrEmpty),
    ("ListScorers", ParentsOrEmpty),
    ("SearchIssues", ParentsOrEmpty),
    ("ListArtifacts", Parents),
    ("BatchGetTraces", Parents),
    ("BatchGetTraceInfos", Parents),
    ("SearchUnifiedTraces", Parents),
    ("QueryTraceMetrics", Parents),
    ("CalculateTraceFilterCorrelation", Parents),
    ("GetMetricHistory", Parents),
    ("GetMetricHistoryBulk", Parents),
    ("GetMetricHistoryBulkInterval", Parents),
    ("GetOnlineScoringConfigs", Parents),
    ("GetDatasetExperimentIds", Parents),
    ("GetDatasetRecords", Parents),
    ("ListLoggedModelArtifacts", Parents),
    ("ListScorerVersions", Parents),
    ("ListLabelSchemas", Parents),
    ("ListReviewQueues", Parents),
    ("ListReviewQueueItems", Parents),
    ("SearchPromptOptimizationJobs", Parents),
    ("ListGatewayEndpointBindings", Parents),
    ("ListEndpointGuardrailConfigs", Parents),
    ("SearchMcpServerVersions", Parents),
    ("ListGatewaySupportedModels", Unowned),
    ("ListGatewaySupportedProviders", Unowned),
    ("ListAssistantProviders", Unowned),
    ("ListAssistantProviderModels", Unowned),
    ("GraphQLQuery", GraphQl),
];

/// Where each write that names its author does. Request fields MLflow's handlers ignore
/// (CreateReviewQueue's and CreateDataset's `created_by`, ...) are not authors: the
/// coverage test reads the handlers.
static AUTHORS: [(&str, Author); 16] = [
    ("CreateRun", Author::RunCreator),
    ("CreatePromptlabRun", Author::RunCreator),
    ("SetTag", Author::RunTag),
    ("LogBatch", Author::RunTags),
    ("CreateDataset", Author::DatasetTags),
    ("CreateIssue", Author::CreatedBy),
    ("CreateGatewaySecret", Author::CreatedBy),
    ("CreateGatewayEndpoint", Author::CreatedBy),
    ("CreateGatewayModelDefinition", Author::CreatedBy),
    ("AttachModelToGatewayEndpoint", Author::CreatedBy),
    ("CreateGatewayEndpointBinding", Author::CreatedBy),
    ("CreateGatewayBudgetPolicy", Author::CreatedBy),
    ("UpdateGatewaySecret", Author::UpdatedBy),
    ("UpdateGatewayEndpoint", Author::UpdatedBy),
    ("UpdateGatewayModelDefinition", Author::UpdatedBy),
    ("UpdateGatewayBudgetPolicy", Author::UpdatedBy),
];

use Change::{Create, Delete, Rename, Restore, Tags};

static CHANGES: [(&str, Changes); 12] = [
    ("CreateExperiment", Changes::Experiment(Create)),
    ("UpdateExperiment", Changes::Experiment(Rename)),
    ("DeleteExperiment", Changes::Experiment(Delete)),
    ("RestoreExperiment", Changes::Experiment(Restore)),
    ("SetExperimentTag", Changes::Experiment(Tags)),
    ("DeleteExperimentTag", Changes::Experiment(Tags)),
    ("CreateRegisteredModel", Changes::RegisteredModel(Create)),
    ("RenameRegisteredModel", Changes::RegisteredModel(Rename)),
    ("DeleteRegisteredModel", Changes::RegisteredModel(Delete)),
    ("SetRegisteredModelTag", Changes::RegisteredModel(Tags)),
    ("DeleteRegisteredModelTag", Changes::RegisteredModel(Tags)),
    ("TransitionModelVersionStage", Changes::ModelVersionStage),
];

static SERVES: [(&str, Serves); 2] = [
    ("GraphQLQuery", Serves::GraphQl),
    ("AccessUI", Serves::UiPage),
];

/// The operations that set or delete tags: their `key`, `tags[].key` and `tag_key` fields fill
/// `mlflow:TagKeys`.
/// What MLflow answers without selecting a workspace (its `workspace_helpers` skips the server
/// info, which a client asks before it knows whether workspaces exist).
static WORKSPACE_FREE: [&str; 1] = ["GetServerInfo"];

static TAG_WRITES: [&str; 20] = [
    "SetTag",
    "DeleteTag",
    "SetExperimentTag",
    "DeleteExperimentTag",
    "SetRegisteredModelTag",
    "DeleteRegisteredModelTag",
    "SetModelVersionTag",
    "DeleteModelVersionTag",
    "SetTraceTag",
    "DeleteTraceTag",
    "SetLoggedModelTags",
    "DeleteLoggedModelTag",
    "SetDatasetTags",
    "DeleteDatasetTag",
    "SetGatewayEndpointTag",
    "DeleteGatewayEndpointTag",
    "SetMcpServerTag",
    "DeleteMcpServerTag",
    "SetMcpServerVersionTag",
    "DeleteMcpServerVersionTag",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Access, routes};

    /// Every operation a fact table names.
    fn fact_operations() -> impl Iterator<Item = &'static str> {
        let keys = |table: &'static [(&'static str, _)]| table.iter().map(|(op, _)| *op);
        keys(&FILTERING)
            .chain(AUTHORS.iter().map(|(op, _)| *op))
            .chain(CHANGES.iter().map(|(op, _)| *op))
            .chain(SERVES.iter().map(|(op, _)| *op))
            .chain(TAG_WRITES.iter().copied())
            .chain(WORKSPACE_FREE.iter().copied())
            .chain(LISTINGS.iter().map(|listing| listing.operation))
    }

    fn catalogued(operation: &str) -> bool {
        routes().iter().any(|route| route.operation == operation)
    }

    #[test]
    fn facts_name_catalogued_operations() {
        for operation in fact_operations() {
            assert!(catalogued(operation), "{operation} is not in the catalog");
        }
        for (operation, filtering) in &FILTERING {
            if let Filtering::Items(listing) = filtering {
                assert_eq!(listing.operation, *operation);
                let read = listing
                    .read_action
                    .strip_prefix("mlflow:")
                    .expect("mlflow action");
                assert!(catalogued(read), "{read} is not in the catalog");
            }
        }
    }

    /// The operations answering lists without a protobuf answer to check (MLflow's REST
    /// answers are checked against the installed MLflow in `tests/mlflow_coverage.rs`).
    fn list_like(operation: &str) -> bool {
        ["Search", "List", "BatchGet"]
            .iter()
            .any(|prefix| operation.starts_with(prefix))
            || matches!(
                operation,
                "GetLatestModelVersions"
                    | "GetMetricHistory"
                    | "GetMetricHistoryBulk"
                    | "GetMetricHistoryBulkInterval"
                    | "GetOnlineScoringConfigs"
                    | "GetDatasetExperimentIds"
                    | "GetDatasetRecords"
                    | "QueryTraceMetrics"
                    | "CalculateTraceFilterCorrelation"
                    | "GraphQLQuery"
            )
    }

    #[test]
    fn every_list_like_operation_has_a_filtering_decision() {
        let undecided: Vec<&str> = routes()
            .iter()
            .filter(|route| list_like(route.operation) && route.filtering.is_none())
            .map(|route| route.operation)
            .collect();
        assert!(undecided.is_empty(), "no filtering decision: {undecided:?}");
        for route in routes() {
            if route.filtering.is_some() {
                assert_eq!(route.access, Access::Read, "{}", route.operation);
                assert!(list_like(route.operation), "{}", route.operation);
            }
        }
    }

    /// MLflow names its tag writes `Set…Tag(s)` / `Delete…Tag(s)`; one on an experiment or a
    /// registered model changes what the gateway caches of it.
    #[test]
    fn tag_writes_are_named_so_and_change_their_experiment_or_model() {
        for route in routes() {
            let op = route.operation;
            let named = (op.starts_with("Set") || op.starts_with("Delete"))
                && (op.ends_with("Tag") || op.ends_with("Tags"));
            assert_eq!(route.writes_tags, named, "{op}");
            if !route.writes_tags {
                continue;
            }
            assert_eq!(route.access, Access::Write, "{op}");
            let changes = match route.resource {
                ResourceKind::Experiment => Changes::Experiment(Change::Tags),
                ResourceKind::RegisteredModel => Changes::RegisteredModel(Change::Tags),
                _ => Changes::Nothing,
            };
            assert_eq!(route.changes, changes, "{op}");
        }
    }

    #[test]
    fn changes_and_authors_are_writes() {
        for route in routes() {
            if route.changes != Changes::Nothing || route.author.is_some() {
                assert_eq!(route.access, Access::Write, "{}", route.operation);
            }
        }
    }

    #[test]
    fn graphql_and_ui_pages_are_told_apart() {
        let serving = |method, path| match crate::classify(method, path) {
            crate::Classified::Route { route, .. } => route.serves,
            crate::Classified::Unknown => panic!("{method} {path} is not catalogued"),
        };
        assert_eq!(serving("POST", "/graphql"), Serves::GraphQl);
        assert_eq!(serving("GET", "/graphql"), Serves::GraphQl);
        assert_eq!(serving("GET", "/"), Serves::UiPage);
        assert_eq!(serving("GET", "/static-files/app.js"), Serves::UiPage);
        assert_eq!(serving("POST", "/api/2.0/mlflow/runs/search"), Serves::Api);
    }

    #[test]
    fn bodies_read_are_those_mlflow_parses() {
        let route = |method, path| match crate::classify(method, path) {
            crate::Classified::Route { route, .. } => route,
            crate::Classified::Unknown => panic!("{method} {path} is not catalogued"),
        };
        assert!(route("POST", "/api/2.0/mlflow/runs/create").reads_body("POST"));
        assert!(route("POST", "/graphql").reads_body("POST"));
        assert!(route("GET", "/graphql").reads_body("GET"));
        let upload = route(
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/m.pkl",
        );
        assert!(!upload.reads_body("PUT"));
    }
}
