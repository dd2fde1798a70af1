// Parse and validate an AsyncAPI document with the official parser; exit 1 on any error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2] ?? "schemas/asyncapi.json";
const { document, diagnostics } = await new Parser().parse(readFileSync(path, "utf8"));
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  const level = ["error", "warning", "info", "hint"][d.severity] ?? d.severity;
  console.error(`${path}: ${level}: ${d.code}: ${d.message} at ${d.path.join(".") || "<root>"}`);
}
if (document === undefined || errors.length > 0) {
  console.error(`${path}: invalid AsyncAPI (${errors.length} error(s))`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}`);
