-- One server, three databases: MLflow's tracking store (created by POSTGRES_DB), its auth store, Prefect's.
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
