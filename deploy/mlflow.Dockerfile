# MLflow for deploy/compose.yaml: the pinned server plus the PostgreSQL driver and boto3 (for
# its S3 artifact store). Build from the repository root: docker build -f deploy/mlflow.Dockerfile .
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13 boto3==1.44.8
USER 1000:1000
