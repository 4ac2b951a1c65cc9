# MLflow server with the Postgres driver and the S3 client MinIO needs.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow[auth]>=3.1,<4" psycopg2-binary boto3
COPY infra/mlflow-start.sh /opt/mlflow-start.sh
EXPOSE 5000
