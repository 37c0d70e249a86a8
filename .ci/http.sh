#!/usr/bin/env bash
# CI for the service front (feature `http`): lints, the HTTP tests (the page in headless
# Chromium among them), and a smoke run of examples/serve.rs talked to with curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== http: %s\n' "$*"; }

step "chromium for the page test"
if ! command -v chromium > /dev/null 2>&1; then
    if command -v apt-get > /dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq > /dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null 2>&1 || true
    fi
fi
if command -v chromium > /dev/null 2>&1; then
    chromium --version 2> /dev/null || true
else
    echo "chromium could not be installed here: the page test will say SKIPPED"
fi

step "lints"
cargo clippy --all-targets --features http -- -D warnings

step "docs (every link resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet --features http

step "tests"
cargo test --features http --lib http::
cargo test --features http --lib pipeline::query
cargo test --features http --test http

step "smoke: examples/serve.rs talked to with curl"
cargo build --features http --example serve
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# Starts serve on a free loopback port with the given options; sets pid and base.
start() {
    : > "$tmp/serve.out"
    target/debug/examples/serve --addr 127.0.0.1:0 --api-key smoke-key --center-key smoke-op \
        "$@" > "$tmp/serve.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on ' "$tmp/serve.out" 2> /dev/null && break
        sleep 0.1
    done
    base=$(sed -n 's/^listening on //p' "$tmp/serve.out")
    [ -n "$base" ] || { echo "serve did not start:"; cat "$tmp/serve.out"; exit 1; }
}
start --tokens "$tmp/tokens.csv" --rate 5
curl -fsS "$base/services.xml" | grep -q '<service_code>ZF-01</service_code>'
id=$(curl -fsS -X POST "$base/requests.json" \
    --data-urlencode api_key=smoke-key --data-urlencode service_code=ZF-02 \
    --data-urlencode lat=36.12 --data-urlencode long=120.33 \
    --data-urlencode 'description=car on the pavement' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["service_request_id"])')
curl -fsS "$base/requests/$id.json" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; assert r["service_code"]=="ZF-02" and r["description"]=="car on the pavement" and r["status"]=="open", r'
curl -fsS "$base/requests/$id.xml" |
    python3 -c 'import sys, xml.etree.ElementTree as E; r=E.fromstring(sys.stdin.buffer.read()).find("request"); assert r.findtext("service_request_id")=="'"$id"'" and r.findtext("service_code")=="ZF-02", E.tostring(r)'
status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/requests.json" \
    --data-urlencode api_key=wrong --data-urlencode service_code=ZF-02 \
    --data-urlencode lat=36.12 --data-urlencode long=120.33)
[ "$status" = 403 ] || { echo "a wrong api_key got $status, want 403"; exit 1; }
curl -fsS -H 'Authorization: Bearer smoke-op' "$base/center/snapshot" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["cases"] >= 1, s'
kill "$pid"
wait "$pid" 2> /dev/null || true
pid=""
echo "http: smoke run passed (request $id filed, read back in JSON and XML)"

step "smoke: a served engine on a journal, killed and restarted"
start --no-sim --journal "$tmp/journal"
id=$(curl -fsS -X POST "$base/requests.json" \
    --data-urlencode api_key=smoke-key --data-urlencode service_code=ZF-02 \
    --data-urlencode lat=36.12 --data-urlencode long=120.33 \
    --data-urlencode 'description=still there after a crash' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["service_request_id"])')
kill -9 "$pid"
wait "$pid" 2> /dev/null || true
start --no-sim --journal "$tmp/journal"
grep -q 'recovered 1 cases' "$tmp/serve.out" || { echo "no recovery reported:"; cat "$tmp/serve.out"; exit 1; }
curl -fsS "$base/requests/$id.json" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; assert r["description"]=="still there after a crash", r'
kill "$pid"
wait "$pid" 2> /dev/null || true
pid=""
echo "http: request $id filed, the server killed with SIGKILL, restarted: the request is there"
