// Runs the GraphQL-over-HTTP server audit of `graphql-http` (the spec's reference
// implementation) against a running server.
// Usage: node graphql-http.mjs <package dir> <url>
// Prints one line per audit: status, id, name and the reason of a failure, tab-separated.
import { createRequire } from "node:module";

const [packageDir, url] = process.argv.slice(2);
const { auditServer } = createRequire(import.meta.url)(packageDir);
for (const { id, name, status, reason } of await auditServer({ url })) {
  const oneLine = (text) => (text ?? "").replace(/\s+/g, " ");
  console.log([status, id, oneLine(name), oneLine(reason)].join("\t"));
}
