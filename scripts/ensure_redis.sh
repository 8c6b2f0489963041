#!/usr/bin/env sh
# Runs before `npm test`: the shared-quota tests start real redis-server processes (loopback, no
# persistence). Installs Debian's redis-server when it is missing and apt-get can (root, Debian).
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "pretest: installing redis-server (Debian) for the shared-quota tests" >&2
  (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) && exit 0
fi
echo "pretest: redis-server is not installed; the shared-quota tests need it (Debian: apt-get install redis-server; macOS: brew install redis)" >&2
exit 1
