#!/bin/sh
# TEST STAND-IN for tecnativa/docker-socket-proxy (see haproxy.cfg): fills in the
# listening address as that image does, then runs HAProxy in the foreground.
set -eu

# Event streams and attached runs keep connections open: allow plenty of them.
ulimit -n 10000 2>/dev/null || true

case "$(printf '%s' "${DISABLE_IPV6:-0}" | tr '[:upper:]' '[:lower:]')" in
  1|true|yes) bind=":2375" ;;
  *) bind="[::]:2375 v4v6" ;;
esac
sed "s/\${BIND_CONFIG}/$bind/" /etc/haproxy/socket-proxy.cfg.template >/tmp/haproxy.cfg
exec haproxy -W -db -f /tmp/haproxy.cfg "$@"
