#!/usr/bin/env bash
# A two-node Ray cluster on one machine: a head and a second "node" with its own resources,
# for trying multi-node placement (env runners, demo tasks) without a real cluster.
#
#   bash cluster/local_two_node.sh start   # head on 127.0.0.1:6380 (dashboard 8266), worker node
#   RAY_ADDRESS=127.0.0.1:6380 python -m rl_app.data.demos --num-workers 2 ...
#   bash cluster/local_two_node.sh stop
#
# Ray 2.60 turns on token authentication; RAY_AUTH_MODE=token is exported so that job
# submission (`ray job submit`) to this head works.
set -euo pipefail
PORT=${RL_APP_HEAD_PORT:-6380}
DASH=${RL_APP_DASHBOARD_PORT:-8266}
HEAD_CPUS=${RL_APP_HEAD_CPUS:-1}
WORKER_CPUS=${RL_APP_WORKER_CPUS:-1}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
case "${1:-}" in
  start)
    ray start --head --node-ip-address=127.0.0.1 --port="$PORT" --dashboard-port="$DASH" \
      --num-cpus="$HEAD_CPUS" --resources='{"node_head": 1}' --disable-usage-stats
    ray start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 \
      --num-cpus="$WORKER_CPUS" --resources='{"node_worker": 1}' --disable-usage-stats
    ray status --address="127.0.0.1:$PORT"
    ;;
  stop)
    ray stop --force
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
