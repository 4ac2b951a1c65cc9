#!/bin/sh
# Runs once MinIO answers (the minio-init service, with MinIO's root credentials): creates the artifact bucket
# and MLflow's own key, whose policy reaches that bucket only. Safe to run again: the user's secret and the
# policy are replaced, the attachment renewed.
set -eu
policy=mlflow-artifacts
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$MLFLOW_BUCKET"
cat > /tmp/policy.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::${MLFLOW_BUCKET}"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::${MLFLOW_BUCKET}/*"]}
  ]
}
JSON
mc admin user add local "$MLFLOW_S3_ACCESS_KEY" "$MLFLOW_S3_SECRET_KEY"
mc admin policy create local "$policy" /tmp/policy.json
# attach refuses a policy already attached: detach first so a second start succeeds too
mc admin policy detach local "$policy" --user "$MLFLOW_S3_ACCESS_KEY" >/dev/null 2>&1 || true
mc admin policy attach local "$policy" --user "$MLFLOW_S3_ACCESS_KEY"
rm -f /tmp/policy.json
