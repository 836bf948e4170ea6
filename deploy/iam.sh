#!/usr/bin/env bash
# Creates the service accounts and grants the least-privilege roles listed in
# the IAM table of deploy/README.md (go test ./deploy checks that the table and
# this script grant the same). Idempotent. Needs an operator with rights to set
# IAM policy.
#
#   PROJECT=my-project REGION=europe-west1 deploy/iam.sh
#   ANALYSTS_GROUP=analysts@example.com PROJECT=... deploy/iam.sh   # also grants analysts
#   OPERATOR=user:you@example.com PROJECT=... deploy/iam.sh         # Token Creator for the smoke test
set -euo pipefail

: "${PROJECT:?set PROJECT}"
: "${REGION:?set REGION}"
REPOSITORY="${REPOSITORY:-inventory}"
DATASET="${DATASET:-inventory}"
STREAM_BUCKET="${STREAM_BUCKET:-${PROJECT}-dataflow-stream}"
NIGHTLY_BUCKET="${NIGHTLY_BUCKET:-${PROJECT}-dataflow-nightly}"
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
table_role() { # table, member, role (BigQuery table-level binding; the table exists after inventory setup)
  bq add-iam-policy-binding --member="$2" --role="$3" "${PROJECT}:${DATASET}.$1" >/dev/null
}
custom_role() { # id, title, permissions (comma-separated); prints the role's name
  if gcloud iam roles describe "$1" --project "$PROJECT" >/dev/null 2>&1; then
    gcloud iam roles update "$1" --project "$PROJECT" --title "$2" --permissions "$3" --stage GA --quiet >/dev/null
  else
    gcloud iam roles create "$1" --project "$PROJECT" --title "$2" --permissions "$3" --stage GA >/dev/null
  fi
  echo "projects/${PROJECT}/roles/$1"
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

# Custom roles where no predefined role is narrow enough.
# The trigger launches the nightly template and looks jobs up by name; it
# cannot cancel or update a job (dataflow.developer could: the streaming job).
LAUNCHER_ROLE=$(custom_role inventoryFlexLauncher "Inventory nightly launcher" dataflow.jobs.create,dataflow.jobs.get,dataflow.jobs.list)
# The deployer deploys one Cloud Run service and writes one Scheduler job;
# run.admin and cloudscheduler.admin would also let it delete any service or
# job. run.services.setIamPolicy is needed by gcloud run deploy's invoker
# setting (see the notes under the IAM table).
DEPLOYER_ROLE=$(custom_role inventoryDeployer "Inventory deployer" run.services.create,run.services.get,run.services.update,run.services.setIamPolicy,run.operations.get,run.revisions.get,run.revisions.list,cloudscheduler.jobs.create,cloudscheduler.jobs.get,cloudscheduler.jobs.update,cloudscheduler.locations.get)
# OPERATOR (user:you@example.com) gets Token Creator on inventory-scheduler
# for the smoke test of the nightly path (README, step 8).
: "${OPERATOR:=}"

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
bucket_role "$STREAM_BUCKET" "$STREAM" roles/storage.objectAdmin
bucket_role "$CONFIG_BUCKET" "$STREAM" roles/storage.objectViewer
repo_role "$STREAM" roles/artifactregistry.reader

# Nightly job.
project_role "$NIGHTLY" roles/dataflow.worker
project_role "$NIGHTLY" roles/bigquery.jobUser
dataset_role "$NIGHTLY" roles/bigquery.dataViewer
table_role daily_summary "$NIGHTLY" roles/bigquery.dataEditor
table_role report_runs "$NIGHTLY" roles/bigquery.dataEditor
bucket_role "$NIGHTLY_BUCKET" "$NIGHTLY" roles/storage.objectAdmin
bucket_role "$REPORTS_BUCKET" "$NIGHTLY" roles/storage.objectAdmin
bucket_role "$CONFIG_BUCKET" "$NIGHTLY" roles/storage.objectViewer
repo_role "$NIGHTLY" roles/artifactregistry.reader

# Trigger service: launch the nightly template, as inventory-nightly only.
project_role "$TRIGGER" "$LAUNCHER_ROLE"
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
project_role "$DEPLOYER" "$DEPLOYER_ROLE"
project_role "$DEPLOYER" roles/logging.logWriter
sa_user inventory-trigger "$DEPLOYER"
sa_user inventory-scheduler "$DEPLOYER"

# The operator who runs the smoke test of step 8 mints an ID token as
# inventory-scheduler (gcloud auth print-identity-token --impersonate-service-account).
if [[ -n "${OPERATOR}" ]]; then
  gcloud iam service-accounts add-iam-policy-binding "$(sa inventory-scheduler)" --project "$PROJECT" \
    --member "$OPERATOR" --role roles/iam.serviceAccountTokenCreator >/dev/null
fi

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
