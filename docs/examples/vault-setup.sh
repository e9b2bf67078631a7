#!/usr/bin/env bash
# Prepare a Hashicorp Vault (or OpenBao) for kes-server: a K/V engine, AppRole login, a
# policy that gives kes-server what it needs and nothing more, and a role. Prints the two
# lines kes-server's config reads (VAULT_ROLE_ID, VAULT_SECRET_ID).
#
# Run it with a token that may manage mounts, auth methods and policies:
#   VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... ./vault-setup.sh
# Settings (environment):
#   VAULT=vault      the CLI: vault, or bao for OpenBao
#   ENGINE=kv        the K/V engine's mount path (keystore.vault.engine); enabled if missing
#   VERSION=1        its K/V version (keystore.vault.version v1 or v2)
#   PREFIX=kes       the folder for keys (keystore.vault.prefix)
#   ROLE=kes-server  the AppRole role and the policy's name
set -euo pipefail
VAULT=${VAULT:-vault}
ENGINE=${ENGINE:-kv}
VERSION=${VERSION:-1}
PREFIX=${PREFIX:-kes}
ROLE=${ROLE:-kes-server}

if ! "$VAULT" secrets list -format=json | grep -q "\"$ENGINE/\""; then
  "$VAULT" secrets enable -path="$ENGINE" -version="$VERSION" kv >/dev/null
fi
if ! "$VAULT" auth list -format=json | grep -q '"approle/"'; then
  "$VAULT" auth enable approle >/dev/null
fi

# Keys: create, read, delete, list, but no update, so that Vault itself refuses to
# overwrite a key. pykes's policies and identity bindings, beside the key folder
# (<prefix>.pykes), may be updated.
keys="${PREFIX:+$PREFIX/}*"
meta="$PREFIX.pykes/*"
if [ "$VERSION" = 2 ]; then
  policy="path \"$ENGINE/data/$keys\"     { capabilities = [\"create\", \"read\"] }
path \"$ENGINE/metadata/$keys\" { capabilities = [\"read\", \"delete\", \"list\"] }
path \"$ENGINE/data/$meta\"     { capabilities = [\"create\", \"read\", \"update\"] }
path \"$ENGINE/metadata/$meta\" { capabilities = [\"read\", \"delete\", \"list\"] }"
else
  policy="path \"$ENGINE/$keys\" { capabilities = [\"create\", \"read\", \"delete\", \"list\"] }
path \"$ENGINE/$meta\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }"
fi
printf '%s\n' "$policy" | "$VAULT" policy write "$ROLE" - >/dev/null

# Tokens live an hour and are renewed by kes-server; after a day it logs in again.
"$VAULT" write "auth/approle/role/$ROLE" token_policies="$ROLE" token_ttl=1h token_max_ttl=24h >/dev/null
echo "VAULT_ROLE_ID=$("$VAULT" read -field=role_id "auth/approle/role/$ROLE/role-id")"
echo "VAULT_SECRET_ID=$("$VAULT" write -f -field=secret_id "auth/approle/role/$ROLE/secret-id")"
