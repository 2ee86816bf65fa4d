# Sourced by the device scripts, from the repository root, with WORK set to a scratch folder:
# puts node on PATH (NODE_XZ: an xz-compressed node binary, for a machine without one) and links
# production node_modules (NODE_MODULES) where the checkout has none.
if [ -n "${NODE_XZ:-}" ]; then
  mkdir -p "$WORK/bin" && xz -dc "$NODE_XZ" >"$WORK/bin/node" && chmod +x "$WORK/bin/node" && export PATH="$WORK/bin:$PATH"
fi
if [ -n "${NODE_MODULES:-}" ] && [ ! -e node_modules ]; then ln -s "$NODE_MODULES" node_modules; fi
