#!/usr/bin/env sh
# Runs before `npm test`: the report and live-page tests open them in a real headless browser
# (playwright-core drives /usr/bin/chromium). Installs Debian's chromium when it is missing and
# apt-get can (root, Debian); playwright's own browser download is not used.
command -v chromium >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "pretest: installing chromium (Debian) for the report and live-page browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) && exit 0
fi
echo "pretest: chromium is not installed; the browser tests need it (Debian: apt-get install chromium)" >&2
exit 1
