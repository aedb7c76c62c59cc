#!/usr/bin/env bash
# The program as ../shared/peer/bench.sh runs it: as the image does (a node of the image's major,
# fetched once by `npm run node:image` when this machine's is another, with the Deployment's
# NODE_OPTIONS), and with what this project's trust boundary asks of an install that the Go peer
# does not: the simulator's loopback endpoint allowed by an explicit flag, and the bench's
# credentials Secret opted in with its label. From the root:
#
#   CLI="bash bench/peer-cli.sh" bash ../shared/peer/bench.sh
#
# `exec` keeps the pid the bench measures the operator's own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shipped=$(cd "$root" && npm run -s node:image)
node=${shipped%%$'\n'*}
export NODE_OPTIONS=${shipped#*$'\n'}
if [ "${1:-}" != run ]; then exec "$node" "$root/dist/cli/main.js" "$@"; fi
shift
kubeconfig="" namespace=""
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --kubeconfig) kubeconfig=${args[$((i + 1))]} ;;
    --namespaces) namespace=${args[$((i + 1))]} ;;
  esac
done
if [ -n "$namespace" ]; then
  "$root/.local/bin/kubectl" --kubeconfig "$kubeconfig" -n "$namespace" label secrets --all --overwrite hpc.shanhe.com/credentials=true >/dev/null
fi
exec "$node" "$root/dist/cli/main.js" run --allow-loopback-endpoints "$@"
