#!/usr/bin/env node
// The `sluice` command. From an installed package it runs the compiled CLI that the package
// carries (dist/cli/, built by `npm run build`, which `prepack` runs); in a clone of the
// repository (demo/cli.ts is there) it runs the TypeScript sources through tsx, a
// devDependency there, so what runs is always what is checked out.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const sources = fileURLToPath(new URL("../demo/cli.ts", import.meta.url));
const compiled = new URL("../dist/cli/demo/cli.js", import.meta.url);

if (existsSync(sources)) {
  const tsx = import.meta.resolve("tsx");
  const child = spawn(process.execPath, ["--import", tsx, sources, ...process.argv.slice(2)], { stdio: "inherit" });
  // Ctrl-C reaches the child too (same process group): the child stops its run and exits.
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => {});
  child.on("error", (e) => {
    process.stderr.write(`sluice: ${e.message}\n`);
    process.exitCode = 1;
  });
  child.on("close", (code, signal) => {
    process.exitCode = code ?? (signal === "SIGINT" ? 130 : 1);
  });
} else if (existsSync(compiled)) {
  const { cli } = await import(compiled.href);
  process.exitCode = await cli(process.argv.slice(2));
} else {
  process.stderr.write(`sluice: neither ${sources} nor ${fileURLToPath(compiled)} is there (npm run build makes the second)\n`);
  process.exitCode = 1;
}
