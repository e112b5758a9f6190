#!/bin/sh
# Writes mosquitto's password file from the environment or Docker secrets, then runs mosquitto.
#
# For each user in MOSQUITTO_USERS the password is MQTT_<USER>_PASSWORD when set, else the
# content of $MOSQUITTO_SECRETS_DIR/<user>_mqtt_password (surrounding whitespace removed, as
# the services' DSMR_MQTT_PASSWORD_FILE reader does). A user without a password is left out (it
# cannot log in); no password at all is an error. The file is rewritten on every start, so a
# changed secret takes effect with a restart. Plain-text passwords never appear on a command
# line: they go to a private file that mosquitto_passwd -U hashes in place.
set -eu

PASSWORD_FILE="${MOSQUITTO_PASSWORD_FILE:-/mosquitto/auth/passwd}"
# The shipped ACL is copied next to the password file, owned by mosquitto's user: mosquitto warns
# about (and later versions refuse) a world-readable ACL owned by someone else.
ACL_SOURCE="${MOSQUITTO_ACL_SOURCE:-/mosquitto/config/acl}"
ACL_FILE="$(dirname "$PASSWORD_FILE")/acl"
# TLS files (docker-compose.tls.yml mounts them here) are copied next to the password file too:
# mosquitto reads them after switching to its own user, who may not read the host's 0600 key.
CERTS_SOURCE="${MOSQUITTO_CERTS_SOURCE:-/mosquitto/certs}"
CERTS_DIR="$(dirname "$PASSWORD_FILE")/certs"
SECRETS_DIR="${MOSQUITTO_SECRETS_DIR:-/run/secrets}"
DROPIN_DIR="${MOSQUITTO_CONF_D:-/mosquitto/conf.d}"
DATA_DIR="${MOSQUITTO_DATA_DIR:-/mosquitto/data}"
USERS="${MOSQUITTO_USERS:-datalogger backend pvoutput plugins homeassistant}"
# mosquitto started as root switches to this user (its "user" option, default mosquitto).
RUN_AS="${MOSQUITTO_RUN_AS:-mosquitto}"

say() { printf 'entrypoint: %s\n' "$*" >&2; }

trim() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'; }

password_for() {
    name="MQTT_$(printf '%s' "$1" | tr 'abcdefghijklmnopqrstuvwxyz-' 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_')_PASSWORD"
    value="$(printenv "$name" || true)"
    if [ -z "$value" ] && [ -r "$SECRETS_DIR/$1_mqtt_password" ]; then
        value="$(trim <"$SECRETS_DIR/$1_mqtt_password")"
    fi
    printf '%s' "$value"
}

write_password_file() {
    umask 077
    mkdir -p "$(dirname "$PASSWORD_FILE")"
    plain="$PASSWORD_FILE.new"
    : >"$plain"
    count=0
    for user in $USERS; do
        password="$(password_for "$user")"
        case "$password" in
        "") say "no password for '$user' (MQTT_*_PASSWORD or $SECRETS_DIR/${user}_mqtt_password): it cannot log in" ;;
        *"
"*) say "the password of '$user' spans several lines: refused"; rm -f "$plain"; exit 1 ;;
        *) printf '%s:%s\n' "$user" "$password" >>"$plain"; count=$((count + 1)) ;;
        esac
    done
    if [ "$count" -eq 0 ]; then
        rm -f "$plain"
        say "no MQTT password given for any user; run services/mosquitto/make-secrets.sh first"
        exit 1
    fi
    mosquitto_passwd -U "$plain"
    mv "$plain" "$PASSWORD_FILE"
    say "password file written for $count user(s)"
}

copy_certs() {
    [ -d "$CERTS_SOURCE" ] || return 0
    mkdir -p "$CERTS_DIR"
    for file in "$CERTS_SOURCE"/*; do
        if [ -f "$file" ]; then cp "$file" "$CERTS_DIR/"; fi
    done
}

hand_over() {
    # Only root can (and must) hand the files to the user mosquitto switches to.
    if [ "$(id -u)" = 0 ] && id "$RUN_AS" >/dev/null 2>&1; then
        chown "$RUN_AS" "$(dirname "$PASSWORD_FILE")" "$PASSWORD_FILE" "$ACL_FILE"
        if [ -d "$CERTS_DIR" ]; then chown -R "$RUN_AS" "$CERTS_DIR"; fi
        mkdir -p "$DATA_DIR"
        chown -R "$RUN_AS" "$DATA_DIR"
    fi
}

write_password_file
cp "$ACL_SOURCE" "$ACL_FILE.new" && mv "$ACL_FILE.new" "$ACL_FILE"
copy_certs
hand_over
mkdir -p "$DROPIN_DIR"
if [ "$#" -eq 0 ]; then
    set -- /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
fi
exec "$@"
