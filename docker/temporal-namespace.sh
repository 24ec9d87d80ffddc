#!/bin/sh
# The namespace the runbooks run in, as `npm run cluster` sets it up (ensureNamespace in
# src/dev/cluster-schema.ts): registered with RETENTION_DAYS of retention (changed when it differs), the search
# attributes the runbooks upsert (SEARCH_ATTRIBUTES, comma-separated) added as Keyword when missing (one of another
# type is an error), then it waits until the frontend answers a visibility query on them. Idempotent.
#
# docker-compose.yml runs it in temporalio/admin-tools (service temporal-namespace) once the frontend serves. Run it
# against any cluster with the `temporal` CLI on PATH:
#   TEMPORAL_ADDRESS=127.0.0.1:7233 SEARCH_ATTRIBUTES=RunbookName,Environment,Target,Outcome sh docker/temporal-namespace.sh
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS: the frontend, host:port}"
: "${SEARCH_ATTRIBUTES:?SEARCH_ATTRIBUTES: comma-separated Keyword search attributes}"
NAMESPACE="${NAMESPACE:-default}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
export TEMPORAL_ADDRESS

attempts=0
until health="$(temporal operator cluster health 2>&1)" && printf '%s' "$health" | grep -q SERVING; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 60 ] || { echo "the frontend at $TEMPORAL_ADDRESS does not serve: $health" >&2; exit 1; }
  echo "waiting for the frontend at $TEMPORAL_ADDRESS"
  sleep 2
done

seconds=$((RETENTION_DAYS * 86400))
if ! described="$(temporal operator namespace describe -n "$NAMESPACE" -o json 2>/dev/null)"; then
  temporal operator namespace create -n "$NAMESPACE" --retention "$((RETENTION_DAYS * 24))h"
  echo "namespace $NAMESPACE registered (retention $RETENTION_DAYS days)"
else
  current="$(printf '%s\n' "$described" | sed -n 's/^ *"workflowExecutionRetentionTtl": *"\([0-9]*\)s".*/\1/p')"
  if [ "$current" != "$seconds" ]; then
    temporal operator namespace update -n "$NAMESPACE" --retention "$((RETENTION_DAYS * 24))h"
    echo "namespace $NAMESPACE: retention changed from $((current / 86400)) to $RETENTION_DAYS days"
  fi
fi

# a namespace just registered may take a moment to be listable
attempts=0
until listed="$(temporal operator search-attribute list -n "$NAMESPACE" -o json 2>&1)"; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 30 ] || { echo "search attributes of $NAMESPACE: $listed" >&2; exit 1; }
  sleep 1
done
query=""
for name in $(printf '%s' "$SEARCH_ATTRIBUTES" | tr ',' ' '); do
  case "$name" in *[!A-Za-z0-9_]*) echo "search attribute name $name: letters, digits and _ only" >&2; exit 1 ;; esac
  type="$(printf '%s\n' "$listed" | sed -n "s/^ *\"$name\": *\"\\([A-Z_]*\\)\".*/\\1/p")"
  if [ -z "$type" ]; then
    temporal operator search-attribute create -n "$NAMESPACE" --name "$name" --type Keyword
    echo "search attribute $name added to $NAMESPACE"
  elif [ "$type" != INDEXED_VALUE_TYPE_KEYWORD ]; then
    echo "search attribute $name exists in $NAMESPACE with type $type, not Keyword" >&2
    exit 1
  fi
  query="${query:+$query AND }$name = 'cluster-probe'"
done

# the frontend's namespace cache refreshes every few seconds: wait until it knows the attributes
attempts=0
until temporal workflow list -n "$NAMESPACE" --query "$query" --limit 1 >/dev/null 2>&1; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 150 ] || { echo "namespace $NAMESPACE not queryable on $SEARCH_ATTRIBUTES" >&2; exit 1; }
  sleep 0.2
done
echo "namespace $NAMESPACE ready: retention $RETENTION_DAYS days, search attributes $SEARCH_ATTRIBUTES"
