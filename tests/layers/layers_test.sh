#!/usr/bin/env bash
# Layers depend one way (docs/ARCHITECTURE.md, "Parts"): every quoted
# #include of every non-test source under a layer's folder must name a
# header that layer may use. A new include across the line fails here, with
# the file, the line and what the layer may include.
set -euo pipefail
cd "${MR_SOURCE_DIR:-$(dirname "$0")/../..}"

# layer: the header paths (prefixes) it may include, besides its own folder.
# What a layer's list does not name it may not include: so nothing below
# dlq/ (bridge/, consumers/, proto/, core/) includes dlq/.
declare -A allow=(
	[core]="mailroom/error.h mailroom/version.h"
	[proto]="core/ mailroom/error.h mailroom/envelope.h"
	[client]="core/ proto/ mailroom/"
	[bridge]="core/ proto/address.h proto/header.h mailroom/error.h mailroom/envelope.h"
	[consumers]="core/ mailroom/error.h"
	[dlq]="core/ proto/header.h mailroom/ bridge/ consumers/"
	[broker]="core/ proto/ bridge/ consumers/ dlq/ mailroom/error.h mailroom/version.h mailroom/envelope.h"
	[cli]="core/ proto/ mailroom/"
	[bench]="core/ mailroom/"
	[actors]="core/ mailroom/"
	[examples/bank]="mailroom/" # the public API alone
)
# What no layer but its owner may include, whatever the prefixes say.
declare -A deny=(
	[bridge]="proto/frame.h proto/consume.h"
	[consumers]="proto/frame.h proto/consume.h"
)

fail=0
for layer in "${!allow[@]}"; do
	for f in "$layer"/*.c "$layer"/*.h; do
		[[ -e $f ]] || continue
		case $f in *_test.c | *_fuzz.c | *_test.h) continue ;; esac
		while IFS=: read -r line inc; do
			inc=${inc#*\"}
			inc=${inc%\"*}
			# A bare name is a header of the same folder.
			[[ $inc == */* ]] || inc="$layer/$inc"
			ok=0
			[[ $inc == "$layer/"* ]] && ok=1
			for p in ${allow[$layer]}; do
				[[ $inc == "$p"* ]] && ok=1
			done
			for p in ${deny[$layer]:-}; do
				[[ $inc == "$p" ]] && ok=0
			done
			if ((!ok)); then
				echo "layers: $f:$line includes \"$inc\";" \
					"$layer/ may include only $layer/ and:" \
					"${allow[$layer]}" >&2
				fail=1
			fi
		done < <(grep -n '^#include "' "$f" || true)
	done
done
((fail)) && exit 1
echo "layers: every include goes the right way"
