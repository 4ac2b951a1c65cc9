#!/bin/sh
# Start the MLflow server with basic auth, as MLflow's own database role (owner of the mlflow and mlflow_auth
# databases only) and MinIO key (limited to the artifact bucket). The auth store's URI carries the password,
# so the config file is written here from the environment instead of being baked into the image.
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, so the psycopg2 driver is named explicitly.
# check-secrets.sh has already refused passwords with characters a URL would need escaped.
set -eu
db="postgresql+psycopg2://${MLFLOW_DB_USER}:${MLFLOW_DB_PASSWORD}@postgres:5432"
umask 077
cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = READ
database_uri = ${db}/mlflow_auth
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
exec mlflow server --host 0.0.0.0 --port 5000 --app-name basic-auth \
  --backend-store-uri "${db}/mlflow" \
  --artifacts-destination "s3://${MLFLOW_BUCKET}" --serve-artifacts
