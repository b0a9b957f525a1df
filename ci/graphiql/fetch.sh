#!/usr/bin/env bash
# Vendors GraphiQL into the template, so that a generated project serves its IDE with no
# network: the browser builds of the pinned npm packages, copied verbatim into
# template/static/graphiql/ with their licences, and a SHA256SUMS the tests check.
#
# Run it once after changing a pin below, from anywhere; it needs npm and network access.
# Rendering a project never runs it.
set -euo pipefail

GRAPHIQL=graphiql@3.9.0
REACT=react@18.3.1
REACT_DOM=react-dom@18.3.1

repo=$(cd "$(dirname "$0")/../.." && pwd)
dest="$repo/template/static/graphiql"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
for package in "$GRAPHIQL" "$REACT" "$REACT_DOM"; do
    # npm checks each tarball against the registry's integrity hash.
    tarball=$(npm pack --silent "$package")
    mkdir "${package%@*}"
    tar -xzf "$tarball" -C "${package%@*}" --strip-components=1
done

install -m 0644 graphiql/graphiql.min.js graphiql/graphiql.min.css "$dest/"
install -m 0644 react/umd/react.production.min.js "$dest/"
install -m 0644 react-dom/umd/react-dom.production.min.js "$dest/"
install -m 0644 graphiql/LICENSE "$dest/LICENSE-graphiql"
install -m 0644 react/LICENSE "$dest/LICENSE-react"

cd "$dest"
{
    echo "# from the npm registry by ci/graphiql/fetch.sh: $GRAPHIQL $REACT $REACT_DOM"
    sha256sum graphiql.min.js graphiql.min.css react.production.min.js \
        react-dom.production.min.js LICENSE-graphiql LICENSE-react
} > SHA256SUMS
echo "vendored into $dest:"
cat SHA256SUMS
