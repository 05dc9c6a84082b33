#!/bin/sh
# Makes the NATS authorization, certificate and credentials of the
# Kubernetes deployment and stores them in the cluster; nothing secret is
# written to the repository. Run from the repository root, with zoomctl on
# the PATH (or ZOOMCTL=path) and kubectl pointed at the cluster:
#
#   deploy/k8s/nats-secrets.sh [DIR]
#
# DIR (default ./nats-creds, keep it safe and out of git) holds the signing
# keys: running the script again keeps them, so credentials issued before
# stay valid. Afterwards, issue a tenant's downstream consumer with
#   zoomctl creds tenant --dir DIR --tenant T --name APP
set -eu
dir=${1:-nats-creds}
ns=${NAMESPACE:-clarity-zoom}
zoomctl=${ZOOMCTL:-zoomctl}

"$zoomctl" creds init --dir "$dir" >/dev/null
if [ ! -f "$dir/nats.crt" ]; then
	hosts="nats,nats.$ns,nats.$ns.svc,nats.$ns.svc.cluster.local"
	for i in 0 1 2; do
		hosts="$hosts,nats-$i.nats-headless,nats-$i.nats-headless.$ns.svc.cluster.local"
	done
	"$zoomctl" creds tls --dir "$dir" --name nats --hosts "$hosts" >/dev/null
fi

apply() { kubectl -n "$ns" "$@" --dry-run=client -o yaml | kubectl -n "$ns" apply -f -; }
apply create configmap nats-auth --from-file=nats-auth.conf="$dir/nats-auth.conf"
apply create configmap nats-ca --from-file=ca.crt="$dir/ca.crt"
apply create secret generic nats-tls --from-file=tls.crt="$dir/nats.crt" \
	--from-file=tls.key="$dir/nats.key" --from-file=ca.crt="$dir/ca.crt"
for role in fetcher normalizer writer webhook; do
	apply create secret generic "zoom-nats-$role" --from-file="$role.creds=$dir/$role.creds"
done
echo "NATS credentials stored in namespace $ns; zoomctl.creds and clarity.creds are in $dir" >&2
