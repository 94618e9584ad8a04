# Building a connector written in Python; sourced by lib.sh.

# build_py_connector <connector dir> <into>: installs the connector's pinned
# componentize-py (requirements.txt) into a venv under ~/.cache/switchboard,
# then compiles its app.py against wit/ into <into>/<name>/ beside its
# connector.toml. The bindings are generated from the WIT at each build.
build_py_connector() {
  local dir="$1" into="$2" name crate started venv
  name="$(basename "$dir")"
  crate="${name//-/_}"
  if ! command -v python3 > /dev/null; then
    log "building $name needs Python 3.10 or newer (apt-get install python3-venv)"
    return 1
  fi
  started=$SECONDS
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/venv-$(sha256sum "$repo/$dir/requirements.txt" | cut -c1-12)"
  if [[ ! -x "$venv/bin/componentize-py" ]]; then
    log "installing $(cat "$repo/$dir/requirements.txt") into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$repo/$dir/requirements.txt"
  fi
  log "building $name (Python, componentize-py)"
  mkdir -p "$into/$name"
  "$venv/bin/componentize-py" --quiet --wit-path "$repo/wit" --world connector \
    componentize --python-path "$repo/$dir" app --output "$into/$name/$crate.wasm"
  cp "$repo/$dir/connector.toml" "$into/$name/connector.toml"
  log "built $name in $((SECONDS - started)) s ($(stat -c %s "$into/$name/$crate.wasm") bytes)"
}
