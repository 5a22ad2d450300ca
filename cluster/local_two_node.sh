#!/usr/bin/env bash
# A two-node Ray cluster on one machine: a head and a second "node" with its own resources,
# for trying multi-node placement (env runners on both nodes, job submission) without a
# real cluster. Tested in CI (tests/experiments/test_tune_cluster.py).
#
#   bash cluster/local_two_node.sh start
#   RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8266 --working-dir . -- \
#       python -m rl_app.tune dpo_vs_ppo --preset smoke --cpus-per-trial 3 --placement-strategy SPREAD \
#       --out "$PWD/results"
#   bash cluster/local_two_node.sh stop
#
# Ray 2.60 turns on token authentication: RAY_AUTH_MODE=token is exported here and must be
# set for `ray job submit` too. The nodes keep their files under RL_APP_RAY_TMPDIR (default
# /tmp/rl_app_2node), and `stop` stops only the processes started from there, never another
# Ray running on the machine (`ray stop` would stop them all). Each node has its own temp dir
# below it: nodes sharing one would share a session directory, and one node's runtime-env
# agent would delete the job's working_dir files the other node unpacked.
set -euo pipefail
PORT=${RL_APP_HEAD_PORT:-6380}
DASH=${RL_APP_DASHBOARD_PORT:-8266}
HEAD_CPUS=${RL_APP_HEAD_CPUS:-2}
WORKER_CPUS=${RL_APP_WORKER_CPUS:-2}
# Each node's dashboard agent needs its own HTTP port (Ray's default, 52365, is taken by the
# first Ray on a machine; job submission needs the head's agent).
HEAD_AGENT_PORT=${RL_APP_HEAD_AGENT_PORT:-52381}
WORKER_AGENT_PORT=${RL_APP_WORKER_AGENT_PORT:-52382}
export RAY_TMPDIR=${RL_APP_RAY_TMPDIR:-/tmp/rl_app_2node}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
RAY=${RAY:-ray}
case "${1:-}" in
  start)
    mkdir -p "$RAY_TMPDIR"
    "$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" --dashboard-host=127.0.0.1 \
      --temp-dir="$RAY_TMPDIR/head" --dashboard-port="$DASH" --dashboard-agent-listen-port="$HEAD_AGENT_PORT" \
      --num-cpus="$HEAD_CPUS" \
      --resources='{"node_head": 1}' --disable-usage-stats
    "$RAY" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 \
      --temp-dir="$RAY_TMPDIR/worker" --dashboard-agent-listen-port="$WORKER_AGENT_PORT" --num-cpus="$WORKER_CPUS" --resources='{"node_worker": 1}' --disable-usage-stats
    for _ in $(seq 60); do  # until the second node has registered with the head
      "$RAY" status --address="127.0.0.1:$PORT" 2>/dev/null | grep -q node_worker && break
      sleep 1
    done
    "$RAY" status --address="127.0.0.1:$PORT"
    echo "dashboard / job submission: http://127.0.0.1:$DASH"
    ;;
  stop)
    target=$RAY_TMPDIR
    unset RAY_TMPDIR  # so that the helpers below do not match themselves
    # this cluster's processes: its temp dir on their command line, or in their environment
    # (Ray renames some processes, e.g. "ray::DashboardAgent", which hides the command line)
    ours() {
      for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}; pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        if tr '\0' '\n' < "$f" 2>/dev/null | grep -qxF "RAY_TMPDIR=$target" \
           || tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$target/"; then
          echo "$pid"
        fi
      done
    }
    ours 2>/dev/null | xargs -r kill -TERM 2>/dev/null || true
    sleep 2
    ours 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
