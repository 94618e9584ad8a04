# Building a connector written in JavaScript; sourced by lib.sh.

# build_js_connector <connector dir> <into>: installs the pinned
# componentize-js (npm install from the lock file, cached in ~/.npm) and compiles the connector's
# src/connector.js against wit/ into <into>/<name>/ beside its connector.toml.
# componentize-js reads its inputs through a WASI sandbox rooted at the
# working directory, so it runs from the repository with relative paths.
build_js_connector() {
  local dir="$1" into="$2" name crate started
  name="$(basename "$dir")"
  crate="${name//-/_}"
  if ! command -v npm > /dev/null; then
    log "building $name needs Node.js and npm (apt-get install nodejs npm)"
    return 1
  fi
  started=$SECONDS
  log "building $name (JavaScript, componentize-js)"
  (cd "$repo/$dir" && npm install --no-audit --no-fund --loglevel=error)
  mkdir -p "$into/$name"
  (cd "$repo" && "$dir/node_modules/.bin/componentize-js" "$dir/src/connector.js" \
    --wit wit --world-name connector --out "${into#"$repo"/}/$name/$crate.wasm" \
    --disable stdio random clocks http fetch-event)
  cp "$repo/$dir/connector.toml" "$into/$name/connector.toml"
  log "built $name in $((SECONDS - started)) s ($(stat -c %s "$into/$name/$crate.wasm") bytes)"
}
