#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-refs.sh [SOURCE_DIR]: the repository's references resolve inside the repository.
#   1. Every requirement id cited (R-MAP-7, ...) is defined in docs/requirements.md ("**R-MAP-7**").
#   2. Every `docs/design.md "Heading"` citation names a "## Heading" of docs/design.md.
#   3. Nothing points at design notes outside the repository (DESIGN.md, pcp-spec.md, ../shared).
#   4. No comment or document cites an issue number ("issue 7"): the reason belongs there instead.
# Prints each problem and exits 1 if there is any. Needs only bash, grep and sort (ctest label
# unit, also run by the package build).
set -u
src=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$src" || exit 2
dirs=(src tests scripts docs man packaging nft-rules ha systemd bench README.md)
bad=0
problem() { echo "check-refs: $*"; bad=$((bad + 1)); }
[ -f docs/requirements.md ] || { echo "check-refs: docs/requirements.md missing"; exit 1; }
[ -f docs/design.md ] || { echo "check-refs: docs/design.md missing"; exit 1; }

ids=$(grep -rhoE --exclude-dir=results 'R-[A-Z]+-[0-9]+' "${dirs[@]}" 2>/dev/null | sort -u)
n=0
for id in $ids; do
  n=$((n + 1))
  grep -qF "**$id**" docs/requirements.md || problem "$id is cited but not defined in docs/requirements.md"
done

while IFS= read -r heading; do
  grep -qxF "## $heading" docs/design.md || problem "docs/design.md \"$heading\" is cited but is not a heading there"
done < <(grep -rhoE --exclude-dir=results --exclude=check-refs.sh 'docs/design\.md "[^"]+"' "${dirs[@]}" 2>/dev/null |
  sed -E 's/^docs\/design\.md "(.*)"$/\1/' | sort -u)

# The checker itself names the patterns it looks for.
grep -rnE --exclude-dir=results --exclude=check-refs.sh '(^|[^/a-z])DESIGN(\.md)? "|(^|[^/a-z])DESIGN\.md|pcp-spec\.md|\.\./shared/|/work/shared' \
  "${dirs[@]}" 2>/dev/null | while IFS= read -r line; do echo "check-refs: outside the repository: $line"; done |
  tee /tmp/check-refs.$$ >/dev/null
if [ -s /tmp/check-refs.$$ ]; then cat /tmp/check-refs.$$; bad=$((bad + $(wc -l </tmp/check-refs.$$))); fi
rm -f /tmp/check-refs.$$

while IFS= read -r line; do problem "issue number cited: $line"; done < <(
  grep -rniE --exclude-dir=results --exclude=check-refs.sh '\bissue #?[0-9]+' "${dirs[@]}" 2>/dev/null)

echo "check-refs: $n requirement ids cited; $bad problem(s)"
[ "$bad" = 0 ]
