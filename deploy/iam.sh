#!/usr/bin/env bash
# Creates the service accounts and grants the least-privilege roles listed in
# the IAM table of deploy/README.md (go test ./deploy checks that the table and
# this script grant the same). Idempotent. Needs an operator with rights to set
# IAM policy.
#
#   PROJECT=my-project REGION=europe-west1 deploy/iam.sh
#   ANALYSTS_GROUP=analysts@example.com PROJECT=... deploy/iam.sh   # also grants analysts
set -euo pipefail

: "${PROJECT:?set PROJECT}"
: "${REGION:?set REGION}"
REPOSITORY="${REPOSITORY:-inventory}"
DATASET="${DATASET:-inventory}"
DATAFLOW_BUCKET="${DATAFLOW_BUCKET:-${PROJECT}-dataflow}"
TEMPLATES_BUCKET="${TEMPLATES_BUCKET:-${PROJECT}-dataflow-templates}"
BUILD_BUCKET="${BUILD_BUCKET:-${PROJECT}_cloudbuild}"
REPORTS_BUCKET="${REPORTS_BUCKET:-${PROJECT}-reports}"
CONFIG_BUCKET="${CONFIG_BUCKET:-${PROJECT}-config}"
TRIGGER_SERVICE="${TRIGGER_SERVICE:-nightly-trigger}"

sa() { echo "$1@${PROJECT}.iam.gserviceaccount.com"; }

ensure_sa() { # name, display name
  gcloud iam service-accounts describe "$(sa "$1")" --project "$PROJECT" >/dev/null 2>&1 ||
    gcloud iam service-accounts create "$1" --project "$PROJECT" --display-name "$2"
}

project_role() { # member, role
  gcloud projects add-iam-policy-binding "$PROJECT" --member "$1" --role "$2" --condition None --quiet >/dev/null
}
bucket_role() { # bucket, member, role
  gcloud storage buckets add-iam-policy-binding "gs://$1" --member "$2" --role "$3" >/dev/null
}
topic_role() { # topic, member, role
  gcloud pubsub topics add-iam-policy-binding "$1" --project "$PROJECT" --member "$2" --role "$3" >/dev/null
}
subscription_role() { # subscription, member, role
  gcloud pubsub subscriptions add-iam-policy-binding "$1" --project "$PROJECT" --member "$2" --role "$3" >/dev/null
}
dataset_role() { # member, role (BigQuery dataset-level binding)
  bq add-iam-policy-binding --member="$1" --role="$2" "${PROJECT}:${DATASET}" >/dev/null
}
repo_role() { # member, role
  gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" --project "$PROJECT" \
    --location "$REGION" --member "$1" --role "$2" >/dev/null
}
sa_user() { # service account the member may act as, member
  gcloud iam service-accounts add-iam-policy-binding "$(sa "$1")" --project "$PROJECT" \
    --member "$2" --role roles/iam.serviceAccountUser >/dev/null
}

ensure_sa inventory-stream    "Inventory streaming Dataflow job"
ensure_sa inventory-nightly   "Inventory nightly summary Dataflow job"
ensure_sa inventory-trigger   "Inventory nightly trigger (Cloud Run)"
ensure_sa inventory-scheduler "Inventory nightly Scheduler invoker"
ensure_sa inventory-deployer  "Inventory Cloud Build deployer"
ensure_sa inventory-publisher "Inventory event publishers"
ensure_sa inventory-alerts    "Inventory low-stock alert consumer"

STREAM="serviceAccount:$(sa inventory-stream)"
NIGHTLY="serviceAccount:$(sa inventory-nightly)"
TRIGGER="serviceAccount:$(sa inventory-trigger)"
SCHEDULER="serviceAccount:$(sa inventory-scheduler)"
DEPLOYER="serviceAccount:$(sa inventory-deployer)"
PUBLISHER="serviceAccount:$(sa inventory-publisher)"
ALERTS="serviceAccount:$(sa inventory-alerts)"

# Streaming job (Flex Template launcher and workers).
project_role "$STREAM" roles/dataflow.worker
project_role "$STREAM" roles/bigquery.jobUser
subscription_role inventory-sub "$STREAM" roles/pubsub.subscriber
subscription_role inventory-sub "$STREAM" roles/pubsub.viewer
subscription_role threshold-updates-sub "$STREAM" roles/pubsub.subscriber
subscription_role threshold-updates-sub "$STREAM" roles/pubsub.viewer
topic_role low-stock-alerts "$STREAM" roles/pubsub.publisher
topic_role inventory-dead-letter "$STREAM" roles/pubsub.publisher
dataset_role "$STREAM" roles/bigquery.dataEditor
bucket_role "$DATAFLOW_BUCKET" "$STREAM" roles/storage.objectAdmin
bucket_role "$CONFIG_BUCKET" "$STREAM" roles/storage.objectViewer
repo_role "$STREAM" roles/artifactregistry.reader

# Nightly job.
project_role "$NIGHTLY" roles/dataflow.worker
project_role "$NIGHTLY" roles/bigquery.jobUser
dataset_role "$NIGHTLY" roles/bigquery.dataEditor
bucket_role "$DATAFLOW_BUCKET" "$NIGHTLY" roles/storage.objectAdmin
bucket_role "$REPORTS_BUCKET" "$NIGHTLY" roles/storage.objectAdmin
bucket_role "$CONFIG_BUCKET" "$NIGHTLY" roles/storage.objectViewer
repo_role "$NIGHTLY" roles/artifactregistry.reader

# Trigger service: launch the nightly template, as inventory-nightly only.
project_role "$TRIGGER" roles/dataflow.developer
sa_user inventory-nightly "$TRIGGER"
bucket_role "$TEMPLATES_BUCKET" "$TRIGGER" roles/storage.objectViewer
project_role "$TRIGGER" roles/bigquery.jobUser
dataset_role "$TRIGGER" roles/bigquery.dataViewer

# Scheduler's OIDC identity may invoke the trigger (once it is deployed).
if gcloud run services describe "$TRIGGER_SERVICE" --project "$PROJECT" --region "$REGION" >/dev/null 2>&1; then
  gcloud run services add-iam-policy-binding "$TRIGGER_SERVICE" --project "$PROJECT" --region "$REGION" \
    --member "$SCHEDULER" --role roles/run.invoker >/dev/null
else
  echo "iam.sh: $TRIGGER_SERVICE is not deployed yet; re-run after the first deploy for run.invoker" >&2
fi

# Deployer (Cloud Build, inventory setup).
repo_role "$DEPLOYER" roles/artifactregistry.writer
bucket_role "$TEMPLATES_BUCKET" "$DEPLOYER" roles/storage.objectAdmin
bucket_role "$BUILD_BUCKET" "$DEPLOYER" roles/storage.objectViewer
project_role "$DEPLOYER" roles/run.admin
project_role "$DEPLOYER" roles/cloudscheduler.admin
project_role "$DEPLOYER" roles/logging.logWriter
sa_user inventory-trigger "$DEPLOYER"
sa_user inventory-scheduler "$DEPLOYER"

# Event publishers and the alert consumer.
topic_role inventory-topic "$PUBLISHER" roles/pubsub.publisher
subscription_role low-stock-consumer "$ALERTS" roles/pubsub.subscriber
topic_role threshold-updates "$ALERTS" roles/pubsub.publisher

# No grants for Pub/Sub's service agent: inventory-sub has no dead-letter
# policy on Dataflow (inventory setup --for-dataflow); the job dead-letters.

# Analysts (people), if a group is given.
if [[ -n "${ANALYSTS_GROUP:-}" ]]; then
  dataset_role "group:${ANALYSTS_GROUP}" roles/bigquery.dataViewer
  project_role "group:${ANALYSTS_GROUP}" roles/bigquery.jobUser
  bucket_role "$REPORTS_BUCKET" "group:${ANALYSTS_GROUP}" roles/storage.objectViewer
fi
