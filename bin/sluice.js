#!/usr/bin/env node
// The `sluice` command: runs demo/cli.ts through tsx (the demos and benchmarks are TypeScript
// sources), passing the arguments, the terminal and the exit code through.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../demo/cli.ts", import.meta.url));
const tsx = import.meta.resolve("tsx");
const child = spawn(process.execPath, ["--import", tsx, cli, ...process.argv.slice(2)], { stdio: "inherit" });
// Ctrl-C reaches the child too (same process group): the child stops its run and exits.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => {});
child.on("error", (e) => {
  process.stderr.write(`sluice: ${e.message}\n`);
  process.exitCode = 1;
});
child.on("close", (code, signal) => {
  process.exitCode = code ?? (signal === "SIGINT" ? 130 : 1);
});
