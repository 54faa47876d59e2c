//! Request fields that look as if they name a resource but are not identifiers of their route
//! ([`crate::Route::ids`]), each with the reason no decision on them is needed.
//!
//! `tests/mlflow_coverage.rs` walks every field of every request message the installed MLflow
//! serves and fails on a field that [`looks_like_a_reference`] when it is neither an identifier of
//! its route nor listed here, so a new MLflow field that names a resource cannot slip through
//! unnoticed: it is decided, or someone wrote down why it need not be.
//!
//! [`contents_naming_resources`] lists the fields whose name does not say so but whose content
//! names resources (job parameters, serialized judges, webhook events, ...), each with how it
//! is decided.

/// A field reviewed: in [`reviewed_fields`] found to need no decision of its own; in
/// [`contents_naming_resources`] decided as `why` says, or left undecided for the reason given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewedField {
    /// The operation whose request carries it.
    pub operation: &'static str,
    /// Its path in mlgate's field syntax (`a.b`, `a[].b`).
    pub field: &'static str,
    /// Why it is not decided (or how it is).
    pub why: &'static str,
}

/// Whether a field's name says it may name a resource: `*_id(s)`, `*_uri(s)`, `run_uuid`,
/// `source`, `*_location`, `*_link`, `*_name`, `name`.
pub fn looks_like_a_reference(field: &str) -> bool {
    let leaf = field
        .rsplit('.')
        .next()
        .unwrap_or(field)
        .trim_end_matches("[]");
    [
        "id", "ids", "uri", "uris", "uuid", "source", "location", "link", "name",
    ]
    .iter()
    .any(|suffix| leaf == *suffix || leaf.ends_with(&format!("_{suffix}")))
}

/// The reviewed fields, by operation.
pub fn reviewed_fields() -> &'static [ReviewedField] {
    REVIEWED
}

const fn f(operation: &'static str, field: &'static str, why: &'static str) -> ReviewedField {
    ReviewedField {
        operation,
        field,
        why,
    }
}

// Reasons, reused where several fields share one.
const LABEL: &str = "a label or display name of the object the request writes or looks up; it names no other resource";
const NEW_NAME: &str = "the new name of the route's own resource: renames are decided a second time under the new name (mlflow:NewName)";
const INSIDE_TRACE: &str = "part of the trace the request writes (its own spans, assessments and their ids), which MLflow stores under the trace decided";
const SPANS_IGNORED: &str = "MLflow's StartTraceV3 handler reads only trace.trace_info: spans are never stored from this request";
const INSIDE_ASSESSMENT: &str = "part of the assessment written on the trace named in the path (MLflow takes the trace and assessment ids from the path, not the body)";
const DATABRICKS: &str = "a Databricks-only field: the open-source server does not read it";
const GATEWAY_FILTER: &str =
    "narrows a listing of the route's own AI-gateway objects, which is decided on its own";
const QUEUE_ITEMS: &str = "trace ids inside the queue's experiment: MLflow refuses items from any other experiment, and the queue is decided";

const REVIEWED: &[ReviewedField] = &[
    f(
        "AbortMultipartUpload",
        "upload_id",
        "an upload of the artifact path the route decides by its owner",
    ),
    f(
        "CompleteMultipartUpload",
        "upload_id",
        "an upload of the artifact path the route decides by its owner",
    ),
    f("AddItemsToReviewQueue", "item_ids", QUEUE_ITEMS),
    f("RemoveItemsFromReviewQueue", "item_ids", QUEUE_ITEMS),
    f("SetReviewQueueItemStatus", "item_id", QUEUE_ITEMS),
    f(
        "ListReviewQueues",
        "item_id",
        "narrows the listing of queues in the experiment decided",
    ),
    f(
        "CreateAssessment",
        "assessment.assessment_id",
        INSIDE_ASSESSMENT,
    ),
    f("CreateAssessment", "assessment.assessment_name", LABEL),
    f("CreateAssessment", "assessment.issue.issue_name", LABEL),
    f(
        "CreateAssessment",
        "assessment.source",
        "who or what made the assessment: attribution, not a resource",
    ),
    f(
        "CreateAssessment",
        "assessment.source.source_id",
        "who or what made the assessment: attribution, not a resource",
    ),
    f("CreateAssessment", "assessment.span_id", INSIDE_ASSESSMENT),
    f("CreateAssessment", "assessment.trace_id", INSIDE_ASSESSMENT),
    f(
        "UpdateAssessment",
        "assessment.assessment_id",
        INSIDE_ASSESSMENT,
    ),
    f("UpdateAssessment", "assessment.assessment_name", LABEL),
    f("UpdateAssessment", "assessment.issue.issue_name", LABEL),
    f(
        "UpdateAssessment",
        "assessment.source",
        "who or what made the assessment: attribution, not a resource",
    ),
    f(
        "UpdateAssessment",
        "assessment.source.source_id",
        "who or what made the assessment: attribution, not a resource",
    ),
    f("UpdateAssessment", "assessment.span_id", INSIDE_ASSESSMENT),
    f("UpdateAssessment", "assessment.trace_id", INSIDE_ASSESSMENT),
    f("CreateDataset", "name", LABEL),
    f(
        "CreateDataset",
        "source",
        "not read by MLflow's CreateDataset handler",
    ),
    f(
        "CreateExperiment",
        "artifact_location",
        "where the new experiment's files go: runs and logged models write under fresh ids of their own, a trace id that already exists is decided as a write of its trace (StartTrace), and every read or write through the artifact proxy is decided on the owner its path names, so a location inside another experiment's directory reaches none of its files",
    ),
    f("CreateGatewayGuardrail", "name", LABEL),
    f(
        "CreateGatewayModelDefinition",
        "model_name",
        "the provider's model name (e.g. gpt-4o), not an MLflow resource",
    ),
    f("CreateGatewayModelDefinition", "name", LABEL),
    f(
        "UpdateGatewayModelDefinition",
        "model_name",
        "the provider's model name (e.g. gpt-4o), not an MLflow resource",
    ),
    f("UpdateGatewayModelDefinition", "name", LABEL),
    f("UpdateGatewayEndpoint", "name", LABEL),
    f("ListGatewayEndpointBindings", "resource_id", GATEWAY_FILTER),
    f("ListGatewayEndpoints", "secret_id", GATEWAY_FILTER),
    f("ListGatewayModelDefinitions", "secret_id", GATEWAY_FILTER),
    f("CreateIssue", "name", LABEL),
    f("UpdateIssue", "name", LABEL),
    f("CreateLabelSchema", "name", LABEL),
    f("UpdateLabelSchema", "name", LABEL),
    f(
        "GetLabelSchemaByName",
        "name",
        "looked up inside the experiment decided",
    ),
    f(
        "GetReviewQueueByName",
        "name",
        "looked up inside the experiment decided",
    ),
    f("CreateReviewQueue", "name", LABEL),
    f("UpdateReviewQueue", "name", LABEL),
    f(
        "CreateReviewQueue",
        "schema_ids",
        "label schemas of the queue's experiment, which MLflow resolves inside that experiment",
    ),
    f(
        "UpdateReviewQueue",
        "schema_ids",
        "label schemas of the queue's experiment, which MLflow resolves inside that experiment",
    ),
    f(
        "UpdateReviewQueue",
        "update_schema_ids",
        "whether schema_ids is to be applied, a flag",
    ),
    f("CreateLoggedModel", "name", LABEL),
    f(
        "CreateModelVersion",
        "run_link",
        "a URL MLflow stores and shows, never follows",
    ),
    f("CreateRegisteredModel", "deployment_job_id", DATABRICKS),
    f("UpdateRegisteredModel", "deployment_job_id", DATABRICKS),
    f("CreateRun", "run_name", LABEL),
    f("UpdateRun", "run_name", LABEL),
    f(
        "CreateRun",
        "user_id",
        "rewritten to the authenticated principal before MLflow sees it",
    ),
    f("CreateWebhook", "name", LABEL),
    f("UpdateWebhook", "name", LABEL),
    f(
        "CreateWorkspace",
        "trace_archival_config.location",
        "storage for the workspace's archived traces, set by whoever may create or update the workspace",
    ),
    f(
        "UpdateWorkspace",
        "trace_archival_config.location",
        "storage for the workspace's archived traces, set by whoever may create or update the workspace",
    ),
    f(
        "DeleteDatasetRecords",
        "dataset_record_ids",
        "records of the dataset decided",
    ),
    f(
        "GetOnlineTraceDetails",
        "source_databricks_request_id",
        DATABRICKS,
    ),
    f("GetOnlineTraceDetails", "sql_warehouse_id", DATABRICKS),
    f("SearchUnifiedTraces", "sql_warehouse_id", DATABRICKS),
    f(
        "SearchTraces",
        "locations[].inference_table.full_table_name",
        "MLflow's SearchTracesV3 handler reads only mlflow_experiment locations (decided)",
    ),
    f(
        "StartTrace",
        "trace.trace_info.trace_location",
        "the message holding the experiment id, which is decided",
    ),
    f(
        "StartTrace",
        "trace.trace_info.trace_location.inference_table.full_table_name",
        DATABRICKS,
    ),
    f(
        "StartTrace",
        "trace.trace_info.client_request_id",
        "the client's own correlation id, stored as is",
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].assessment_name",
        LABEL,
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].issue.issue_name",
        LABEL,
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].source",
        "who or what made the assessment: attribution, not a resource",
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].source.source_id",
        "who or what made the assessment: attribution, not a resource",
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].span_id",
        INSIDE_TRACE,
    ),
    f(
        "StartTrace",
        "trace.trace_info.assessments[].trace_id",
        INSIDE_TRACE,
    ),
    f("StartTrace", "trace.spans[].events[].name", SPANS_IGNORED),
    f("StartTrace", "trace.spans[].links[].span_id", SPANS_IGNORED),
    f(
        "StartTrace",
        "trace.spans[].links[].trace_id",
        SPANS_IGNORED,
    ),
    f("StartTrace", "trace.spans[].name", SPANS_IGNORED),
    f("StartTrace", "trace.spans[].parent_span_id", SPANS_IGNORED),
    f("StartTrace", "trace.spans[].span_id", SPANS_IGNORED),
    f("StartTrace", "trace.spans[].trace_id", SPANS_IGNORED),
    f(
        "LogBatch",
        "metrics[].dataset_name",
        "the name of the dataset a metric was computed on, stored as a label",
    ),
    f(
        "LogBatch",
        "metrics[].run_id",
        "MLflow's LogBatch logs every metric to the request's run_id (decided)",
    ),
    f(
        "LogMetric",
        "dataset_name",
        "the name of the dataset a metric was computed on, stored as a label",
    ),
    f(
        "LogInputs",
        "datasets[].dataset.name",
        "a description of the data the run used, stored with the run decided; MLflow reads no data through it",
    ),
    f(
        "LogInputs",
        "datasets[].dataset.source",
        "a description of the data the run used, stored with the run decided; MLflow reads no data through it",
    ),
    f("QueryTraceMetrics", "metric_name", LABEL),
    f(
        "SearchLoggedModels",
        "datasets[].dataset_name",
        "a filter on the logged models of the experiments decided",
    ),
    f(
        "SearchLoggedModels",
        "order_by[].dataset_name",
        "a sort key",
    ),
    f("SearchLoggedModels", "order_by[].field_name", "a sort key"),
    f("UpdateExperiment", "new_name", NEW_NAME),
];

/// Fields whose content names resources though their name does not say so, reviewed against
/// the installed MLflow: `why` says how each is decided, or why it is not.
pub fn contents_naming_resources() -> &'static [ReviewedField] {
    CONTENTS
}

const SERIALIZED_JUDGE: &str = "serialized judges, whose models may be AI-gateway endpoints the server calls when it runs them. Decided: every `gateway:/<name>` or `endpoints:/<name>` found in any string of the JSON (JSON held in strings is read too) is decided as mlflow:InvokeGatewayEndpoint on `gateway-endpoint/<name>` (crate::judge_endpoints); the registered scorer version MLflow runs instead (InvokeScorer's `scorer_name` + `scorer_version`, InvokeGenaiEvaluate's `scorer_versions`) is read from MLflow and its judges decided the same way";

const CONTENTS: &[ReviewedField] = &[
    f(
        "SubmitJob",
        "params",
        "the job function's arguments: experiment, run, trace and dataset ids, prompt URIs, serialized judges, AI-gateway secrets, run by the server with its own access. Not decided field by field: SubmitJob is decided on `server`, an administrator's grant that reaches everything its job functions name",
    ),
    f("RegisterScorer", "serialized_scorer", SERIALIZED_JUDGE),
    f("InvokeScorer", "serialized_scorer", SERIALIZED_JUDGE),
    f(
        "InvokeGenaiEvaluate",
        "serialized_scorers",
        SERIALIZED_JUDGE,
    ),
    f(
        "CreateGatewayBudgetPolicy",
        "target_value",
        "an AI-gateway endpoint id (ENDPOINT scope) or a user name (USER scope), read per `target_scope`; a REJECT budget stops the endpoint (or the user's calls) once spent. Not decided on the endpoint or user: budget policies are the gateway's administration, decided on `gateway-budget-policy/...`, an administrator's grant",
    ),
    f(
        "UpdateGatewayBudgetPolicy",
        "target_value",
        "as CreateGatewayBudgetPolicy's `target_value`",
    ),
    f(
        "CreateWebhook",
        "events",
        "kinds of events (`registered_model.created`, `prompt_version.created`, ...), not objects: a webhook receives the events of every model and prompt in its workspace (names, versions, sources, tags, aliases), so CreateWebhook and UpdateWebhook amount to reading all of them, an administrator's grant",
    ),
    f("UpdateWebhook", "events", "as CreateWebhook's `events`"),
    f(
        "CreatePromptOptimizationJob",
        "source_prompt_uri",
        "the prompt version the job reads (decided with the job's action on `prompt/<name>/version/<n>`) and the prompt it registers its result in as a new version (decided as mlflow:CreateModelVersion on `prompt/<name>`)",
    ),
    f(
        "LinkPromptsToTrace",
        "prompt_versions[].version",
        "the link is decided on each prompt named (`prompt/<name>`, its kind from its tags in MLflow), which covers its versions: MLflow stores only the trace's association with `<name>/<version>` and reads no version content",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_naming_resources_are_of_served_operations() {
        for content in contents_naming_resources() {
            assert!(
                crate::routes()
                    .iter()
                    .any(|route| route.operation == content.operation),
                "{} is no operation of the catalog",
                content.operation
            );
        }
    }
}
