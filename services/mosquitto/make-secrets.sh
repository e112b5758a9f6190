#!/bin/sh
# Creates ./secrets/ for docker-compose.yml: a random MQTT password per service user, and empty
# placeholders for the PVOutput API key and the backend's database URL. Existing files are kept,
# so running it again is safe. Usage (from anywhere): sh services/mosquitto/make-secrets.sh [--postgres]
#   --postgres  also a random PostgreSQL password and the backend's URL for the postgres profile.
set -eu

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECRETS="${DSMR_SECRETS_DIR:-$ROOT/secrets}"
USERS="datalogger backend pvoutput plugins homeassistant"

random_password() {
    # 32 characters from [A-Za-z0-9]: safe in a URL, a shell and mosquitto's password file.
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32
}

# Writes $2 into secret $1 unless it exists. Files are world-readable (0644) because the
# services run as uid 10001 and Docker Compose mounts secrets with the host's permissions;
# the folder itself (0700) keeps other host users out.
put() {
    if [ -e "$SECRETS/$1" ]; then
        echo "kept    $SECRETS/$1"
        return
    fi
    printf '%s' "$2" >"$SECRETS/$1"
    chmod 0644 "$SECRETS/$1"
    echo "created $SECRETS/$1"
}

mkdir -p "$SECRETS"
chmod 0700 "$SECRETS"
for user in $USERS; do
    put "${user}_mqtt_password" "$(random_password)"
done
put pvoutput_api_key ""
if [ "${1:-}" = "--postgres" ]; then
    # Empty placeholders from an earlier run without --postgres are replaced.
    for name in postgres_password backend_database_url; do
        [ -s "$SECRETS/$name" ] || rm -f "$SECRETS/$name"
    done
    put postgres_password "$(random_password)"
    put backend_database_url "postgresql+psycopg://dsmr:$(cat "$SECRETS/postgres_password")@postgres:5432/dsmr"
else
    put postgres_password ""
    put backend_database_url ""
fi
echo "Home Assistant's MQTT user is 'homeassistant', password in $SECRETS/homeassistant_mqtt_password"
