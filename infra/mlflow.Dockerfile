# MLflow server with the Postgres driver and the S3 client MinIO needs, pinned by infra/constraints.txt.
FROM python:3.11-slim
COPY infra/constraints.txt /opt/constraints.txt
RUN pip install --no-cache-dir -c /opt/constraints.txt "mlflow[auth]" psycopg2-binary boto3
COPY infra/mlflow-start.sh /opt/mlflow-start.sh
# runs as 'mlflow'; it writes only its auth config under /tmp (the stores are Postgres and MinIO)
RUN useradd --system --uid 10002 --user-group --create-home --home-dir /home/mlflow --shell /usr/sbin/nologin mlflow
WORKDIR /home/mlflow
USER mlflow
EXPOSE 5000
