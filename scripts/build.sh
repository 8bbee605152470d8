#!/usr/bin/env bash
# Compile every workspace (tsc -b is incremental) and bundle the web demo for the browser.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -b
bundle=web-demo/public/build/app.js
# Rebuild the bundle only when its sources (the demo, the SDK, the protocol) changed.
if [[ ! -f "$bundle" ]] || [[ -n "$(find web-demo/src client-sdk/dist protocol/dist -newer "$bundle" -name '*.js' -o -newer "$bundle" -name '*.ts' 2>/dev/null | head -1)" ]]; then
  npx tsc -p web-demo
  npx esbuild web-demo/src/app.ts --bundle --format=iife --target=chrome100 --minify --sourcemap \
    --outfile="$bundle" --log-level=warning
fi
