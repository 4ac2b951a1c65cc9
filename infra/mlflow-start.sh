#!/bin/sh
# Start the MLflow server with basic auth. The auth store's URI carries the Postgres password, so the
# config file is written here from the environment instead of being baked into the image.
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, so the psycopg2 driver is named explicitly.
set -eu
cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/mlflow_auth
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
exec mlflow server --host 0.0.0.0 --port 5000 --app-name basic-auth \
  --backend-store-uri "postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/mlflow" \
  --artifacts-destination "s3://${MLFLOW_BUCKET}" --serve-artifacts
