#!/usr/bin/env bash
# Puts the example solution (docs/example-solution) on a running stack, as a user would with curl: uploads the
# content folder and its sample documents through the files API, packages, publishes and installs it.
# Settings: IBSOL_URL (default http://127.0.0.1:$IBSOL_HTTP_PORT), IBSOL_TOKEN (default: the first admin
# token of $IBSOL_DATA/tokens). Does nothing when invoice_demo 1.0.0 is already installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/docs/example-solution"
url=${IBSOL_URL:-http://127.0.0.1:${IBSOL_HTTP_PORT:-8080}}
token=${IBSOL_TOKEN:-$(awk '$3 == "admin" && $1 !~ /^#/ {print $1; exit}' "${IBSOL_DATA:-./var}/tokens")}
auth="Authorization: Bearer $token"
base=/admin/examples/invoice_demo

call() { # METHOD PATH [JSON]: prints the body, fails on a non-2xx status
  local out code
  out=$(curl -sS -X "$1" -H "$auth" -w '\n%{http_code}' ${3:+-d "$3"} "$url$2")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if [[ $code != 2* ]]; then
    echo "example: $1 $2 answered $code: $out" >&2
    return 1
  fi
  printf '%s' "$out"
}

if call GET "/marketplace/info?name=invoice_demo&version=1.0.0" 2>/dev/null | grep -q '"installed":true'; then
  echo "example: invoice_demo 1.0.0 is already installed"
  exit 0
fi
(cd "$src" && find . -type f | sed 's|^\./||' | sort) | while read -r rel; do
  enc=$(printf '%s' "$rel" | sed 's/ /%20/g')
  curl -sS -f -X PUT -H "$auth" --data-binary @"$src/$rel" "$url/api/v2/files$base/content/$enc" >/dev/null
done
for f in "$src"/demo_data/*; do
  curl -sS -f -X PUT -H "$auth" --data-binary @"$f" "$url/api/v2/files$base/input/$(basename "$f")" >/dev/null
done
call POST /solution/create "{\"content_folder\": \"$base/content\", \"output_folder\": \"$base/build\"}" >/dev/null
call POST /marketplace/publish "{\"ibsolution_path\": \"$base/build/invoice_demo-1.0.0.ibsolution\"}" >/dev/null || true
call POST /marketplace/install '{"name": "invoice_demo", "version": "1.0.0"}' >/dev/null
echo "example: invoice_demo 1.0.0 is installed; its sample documents are in $base/input"
