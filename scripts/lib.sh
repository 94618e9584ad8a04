# Shared by the project's scripts: paths, the wasm target, building connectors.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
dist="$repo/dist"

# Bundled connectors (served by `scripts/run`) and test fixtures (tests only).
bundled_connectors=(
  plugins/logistics-tracking plugins/payment-link plugins/clink-outcall plugins/ringostat
  plugins/easemob-routing plugins/crm plugins/ticketing plugins/messaging plugins/ai-analysis
)
fixture_connectors=(tests/connectors/echo tests/connectors/misbehaving tests/connectors/relay)

source "$repo/scripts/guest-js.sh"
source "$repo/scripts/guest-py.sh"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
}

# The dashboard test drives Debian's Chromium headless; installs it when absent
# (as root, or through sudo).
ensure_chromium() {
  if command -v chromium > /dev/null; then return; fi
  log "installing chromium for the dashboard test"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
  "${install[@]}" > /dev/null || { "${sudo[@]}" apt-get update > /dev/null && "${install[@]}" > /dev/null; }
}

# Builds every connector once and lays them out as plugins directories:
# dist/plugins/<name>/{connector.toml,<crate>.wasm} and dist/test-plugins/...
build_connectors() {
  ensure_wasm_target
  local crates=() dir
  for dir in "${bundled_connectors[@]}" "${fixture_connectors[@]}"; do
    crates+=(-p "$(basename "$dir")")
  done
  log "building connectors for wasm32-wasip2"
  (cd "$repo" && cargo build --profile guest --target wasm32-wasip2 "${crates[@]}")
  rm -rf "$dist/plugins" "$dist/test-plugins" "$dist/test-versions"
  for dir in "${bundled_connectors[@]}"; do place_connector "$dir" "$dist/plugins"; done
  for dir in "${fixture_connectors[@]}"; do place_connector "$dir" "$dist/test-plugins"; done
  build_echo_versions
}

# Lifecycle tests need more versions of one connector: echo 0.2.0 and the
# broken 0.3.0, in dist/test-versions/echo-<version>/.
build_echo_versions() {
  local feature version
  for feature in v2:0.2.0 broken:0.3.0; do
    version="${feature#*:}"
    feature="${feature%%:*}"
    log "building echo $version (feature $feature)"
    (cd "$repo" && cargo build --profile guest --target wasm32-wasip2 -p echo --features "$feature")
    place_connector tests/connectors/echo "$dist/test-versions" "echo-$version"
    sed -i "s/^version = .*/version = \"$version\"/" "$dist/test-versions/echo-$version/connector.toml"
  done
}

# place_connector <crate dir> <into> [<directory name>]
place_connector() {
  local dir="$1" into="$2" name crate
  name="${3:-$(basename "$dir")}"
  crate="$(basename "$dir")"
  crate="${crate//-/_}"
  mkdir -p "$into/$name"
  cp "$repo/$dir/connector.toml" "$into/$name/connector.toml"
  cp "$CARGO_TARGET_DIR/wasm32-wasip2/guest/$crate.wasm" "$into/$name/$crate.wasm"
}

# Connectors written in other languages from the same WIT, for the tests and
# benchmarks that set them against their Rust twins: dist/polyglot/<name>/.
build_polyglot_connectors() {
  rm -rf "$dist/polyglot"
  build_js_connector plugins/logistics-tracking-js "$dist/polyglot"
  build_py_connector plugins/logistics-tracking-py "$dist/polyglot"
}
