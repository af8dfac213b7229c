#!/bin/sh
# Writes the secrets docker-compose.yml reads into .env (or the file named),
# each 32 random bytes. Never commit the file; keep it 0600.
#   sh deploy/make-secrets.sh && docker compose up --build
set -eu
out=${1:-.env}
if [ -e "$out" ]; then
  echo "$out exists; not overwriting it (delete it to make new secrets)" >&2
  exit 1
fi
hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
{
  echo "HANDOFF_MEDIA_SECRET=$(hex)"
  echo "HANDOFF_MEDIA_CONTROL_TOKEN=$(hex)"
  echo "HANDOFF_TURN_SECRET=$(hex)"
  echo "HANDOFF_CODEC_TOKEN=$(hex)"
  echo "HANDOFF_CODEC_KEYS=k1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
  echo "HANDOFF_DATA_KEYS=d1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
} > "$out"
echo "wrote $out"
