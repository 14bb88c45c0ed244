#!/bin/sh
# temporal-setup service of docker-compose.yml (temporalio/admin-tools image): waits until the
# cluster is healthy, creates Switchboard's namespace and registers its custom search attributes
# (SEARCH_ATTRIBUTES, "Name=Type ..." pairs equal to domain/search_attributes.py ALL; the unit test
# tests/unit/test_compose.py keeps them equal). Idempotent: what exists is kept, "already exists"
# is success. Runs on every `docker compose up`; the api and the worker start after it succeeded.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"
ATTEMPTS=40
changed=0

log() { echo "temporal-setup: $*"; }

# ensure WHAT COMMAND...: run COMMAND until it succeeds or reports "already exists"; other errors
# (the cluster still warming up, the namespace cache not refreshed yet) are retried.
ensure() {
    what=$1
    shift
    n=1
    while :; do
        if out=$("$@" 2>&1); then
            log "$what: done"
            changed=1
            return 0
        fi
        case "$out" in
            *"different type"*)
                log "$what: $out" >&2
                return 1
                ;;
            *"already exists"* | *"AlreadyExists"*)
                log "$what: already exists"
                return 0
                ;;
        esac
        if [ "$n" -ge "$ATTEMPTS" ]; then
            log "$what: failed after $n attempts: $out" >&2
            return 1
        fi
        n=$((n + 1))
        sleep 3
    done
}

for pair in $SEARCH_ATTRIBUTES; do
    case "$pair" in
        ?*=?*) ;;
        *)
            log "malformed SEARCH_ATTRIBUTES entry '$pair' (want Name=Type)" >&2
            exit 1
            ;;
    esac
done

n=1
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    if [ "$n" -ge "$ATTEMPTS" ]; then
        log "Temporal at $TEMPORAL_ADDRESS is not healthy after $n attempts" >&2
        exit 1
    fi
    n=$((n + 1))
    sleep 3
done
log "cluster at $TEMPORAL_ADDRESS is healthy"

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    log "namespace $TEMPORAL_NAMESPACE: already exists"
else
    ensure "namespace $TEMPORAL_NAMESPACE" \
        temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
        --namespace "$TEMPORAL_NAMESPACE" --retention "$RETENTION"
fi

existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" 2>/dev/null || true)
for pair in $SEARCH_ATTRIBUTES; do
    name=${pair%%=*}
    type=${pair#*=}
    if printf '%s\n' "$existing" | grep -qw -- "$name"; then
        # a search attribute's type cannot change in place, and the code would fail to upsert it
        if ! printf '%s\n' "$existing" | grep -w -- "$name" | grep -qi -- "$type"; then
            log "search attribute $name exists, but not as $type:" >&2
            printf '%s\n' "$existing" | grep -w -- "$name" >&2 || true
            log "rename it in domain/search_attributes.py, or remove it first" \
                "(temporal operator search-attribute remove --name $name)" >&2
            exit 1
        fi
        log "search attribute $name: already exists"
        continue
    fi
    ensure "search attribute $name ($type)" \
        temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
        --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type"
done

if [ "$changed" -eq 1 ]; then
    # frontend, history and matching cache namespaces (about 10 s): let them see the new entries
    # before the worker starts workflows that upsert these attributes
    sleep 15
fi
log "done"
