#!/usr/bin/env bash
# Installs what the compatibility suite runs: the servers from Debian's
# packages, and the Node servers from npm into test/compat/node (npm ci,
# from package-lock.json). Nothing comes from anywhere else. Run as root,
# or with sudo available.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
	wrk                                     # the load generator: never retries
	python3 python3-uvicorn python3-hypercorn python3-waitress gunicorn
	uwsgi-core uwsgi-plugin-python3
	ruby puma ruby-sd-notify
	systemd                                 # systemd-notify, for Node's READY=1
	lighttpd nginx-light
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
# Node and npm may come from elsewhere than Debian (a build with npm
# inside, which conflicts with Debian's npm): only a missing command counts.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	# Servers must not start as system services: herd runs them.
	DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
(cd node && npm ci --no-audit --no-fund --loglevel=error)
