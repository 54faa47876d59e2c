-- MLflow's own database beside mlgate's, for deploy/compose.yaml (demo credentials: MLflow
-- is reachable on the internal network only).
CREATE ROLE mlflow LOGIN PASSWORD 'mlflow';
CREATE DATABASE mlflow OWNER mlflow;
