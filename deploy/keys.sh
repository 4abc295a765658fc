#!/usr/bin/env bash
# The CURVE keys of docs/deploy.md's hosts, run once from an admin workstation that reaches each host by ssh as
# the service user (dualgait). Every host generates its own key pair (the secret key never leaves it); only public
# keys are copied (scp -3: through this workstation). Afterwards each host holds what deploy/hosts.yaml lists:
#   gpu-a, gpu-b: host.key, host.key_secret, allowed/aggregator.key (their inference admits the aggregator)
#   aggregator:   host.key, host.key_secret, gpu-a.key, gpu-b.key (security.server_keys scores.0 / scores.1)
# A new GPU host: the same three lines for it, its endpoint appended to the aggregator's endpoints.scores and its
# key as the next scores.N. tests/test_deploy.py runs these lines against temporary folders (one per host).
set -euo pipefail

ssh gpu-a /opt/dualgait/.venv/bin/dualgait keys generate --dir /etc/dualgait/keys
ssh gpu-b /opt/dualgait/.venv/bin/dualgait keys generate --dir /etc/dualgait/keys
ssh aggregator /opt/dualgait/.venv/bin/dualgait keys generate --dir /etc/dualgait/keys

# the aggregator knows each GPU host's public key (its server key for that host's scores endpoint)
scp -3 gpu-a:/etc/dualgait/keys/host.key aggregator:/etc/dualgait/keys/gpu-a.key
scp -3 gpu-b:/etc/dualgait/keys/host.key aggregator:/etc/dualgait/keys/gpu-b.key

# each GPU host admits the aggregator (its inference process is the CURVE server of its scores endpoint)
scp -3 aggregator:/etc/dualgait/keys/host.key gpu-a:/tmp/aggregator.key
ssh gpu-a /opt/dualgait/.venv/bin/dualgait keys allow /tmp/aggregator.key --as aggregator --dir /etc/dualgait/keys
scp -3 aggregator:/etc/dualgait/keys/host.key gpu-b:/tmp/aggregator.key
ssh gpu-b /opt/dualgait/.venv/bin/dualgait keys allow /tmp/aggregator.key --as aggregator --dir /etc/dualgait/keys

# check: fingerprints only (compare the aggregator's gpu-a.key with gpu-a's host.key, and so on)
ssh gpu-a /opt/dualgait/.venv/bin/dualgait keys list --dir /etc/dualgait/keys
ssh gpu-b /opt/dualgait/.venv/bin/dualgait keys list --dir /etc/dualgait/keys
ssh aggregator /opt/dualgait/.venv/bin/dualgait keys list --dir /etc/dualgait/keys
