-- Who created an experiment or a registered model through mlgate (issue 5): the condition key
-- `mlflow:ResourceCreator` of everything under that resource. Keyed by the resource ARN
-- (`arn:mlflow:<region>:<account>:experiment/<id>` or `.../registered-model/<name>`); a model
-- rename moves its row, a re-created name overwrites it.
CREATE TABLE resource_creators (
    resource_arn  TEXT    NOT NULL PRIMARY KEY,
    creator_name  TEXT    NOT NULL,
    creator_arn   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
