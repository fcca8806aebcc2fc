#!/bin/sh
# Create the vitalgate database and its users on an InfluxDB 1.x server (idempotent).
#
#   INFLUX_URL=https://influx.example.org:8086 \
#   INFLUX_CA=/etc/vitalgate/tls/ca.crt \            # optional: a private CA for HTTPS
#   INFLUX_DB=vitalgate \                            # optional, default vitalgate
#   ADMIN_PASSWORD_FILE=/root/influx-admin.pw \
#   INGEST_PASSWORD_FILE=/root/influx-ingest.pw \
#   DASHBOARD_PASSWORD_FILE=/root/influx-dashboard.pw \
#   sh deploy/influxdb/setup-influxdb1.sh
#
# Users: "admin" (all privileges; created first, while the server has no users, which is the
# only time InfluxDB accepts an unauthenticated CREATE USER), "ingest" (WRITE on the
# database: the ingest workers) and "dashboard" (READ: the dashboard, reports, `vitalgate
# query`). Passwords are read from files (never given on a command line, which other users
# can see) and must not contain ' or \ (generate them with `openssl rand -hex 24`).
set -eu

: "${INFLUX_URL:?set INFLUX_URL, e.g. https://influx.example.org:8086}"
: "${ADMIN_PASSWORD_FILE:?}" "${INGEST_PASSWORD_FILE:?}" "${DASHBOARD_PASSWORD_FILE:?}"
DB="${INFLUX_DB:-vitalgate}"

read_pw() {
    pw=$(head -n 1 "$1" | tr -d '\r\n')
    case "$pw" in
        "" ) echo "setup-influxdb1: $1 is empty" >&2; exit 1 ;;
        *\'* | *\\* ) echo "setup-influxdb1: $1: passwords must not contain ' or \\" >&2; exit 1 ;;
    esac
    printf '%s' "$pw"
}
ADMIN_PW=$(read_pw "$ADMIN_PASSWORD_FILE")
INGEST_PW=$(read_pw "$INGEST_PASSWORD_FILE")
DASHBOARD_PW=$(read_pw "$DASHBOARD_PASSWORD_FILE")

CURL_TLS=""
if [ -n "${INFLUX_CA:-}" ]; then CURL_TLS="--cacert $INFLUX_CA"; fi

# q AUTH STATEMENT: run one InfluxQL statement; prints the JSON answer; fails on HTTP errors.
# The admin password goes to curl through a config on stdin, not the command line.
q() {
    if [ "$1" = auth ]; then
        printf 'user = "admin:%s"\n' "$ADMIN_PW" |
            curl -sS --fail $CURL_TLS -K - --data-urlencode "q=$2" "$INFLUX_URL/query"
    else
        curl -sS --fail $CURL_TLS --data-urlencode "q=$2" "$INFLUX_URL/query"
    fi
}

# must OUTPUT: fail when an InfluxQL answer carries an error.
must() {
    case "$1" in
        *'"error"'*) echo "setup-influxdb1: $1" >&2; exit 1 ;;
    esac
}

if ! q auth "SHOW USERS" >/dev/null 2>&1; then
    echo "setup-influxdb1: creating the admin user"
    must "$(q none "CREATE USER \"admin\" WITH PASSWORD '$ADMIN_PW' WITH ALL PRIVILEGES")"
fi

must "$(q auth "CREATE DATABASE \"$DB\"")"

user() {  # user NAME PASSWORD PRIVILEGE
    out=$(q auth "CREATE USER \"$1\" WITH PASSWORD '$2'")
    case "$out" in
        *'already exists'*) must "$(q auth "SET PASSWORD FOR \"$1\" = '$2'")" ;;
        *) must "$out" ;;
    esac
    must "$(q auth "REVOKE ALL PRIVILEGES ON \"$DB\" FROM \"$1\"")"
    must "$(q auth "GRANT $3 ON \"$DB\" TO \"$1\"")"
}
user ingest "$INGEST_PW" WRITE
user dashboard "$DASHBOARD_PW" READ

echo "setup-influxdb1: database \"$DB\" with users admin, ingest (WRITE), dashboard (READ) ready"
