/**
 * The demos fork child processes from modules beside them. Run from the sources (through tsx,
 * in a clone) those are `.ts` files and the child needs tsx's loader; run from the compiled CLI
 * that the package publishes (`dist/cli/`), they are `.js` files and plain Node runs them.
 */
import { fileURLToPath } from "node:url";

const FROM_SOURCES = import.meta.url.endsWith(".ts");

/** The path of the module `name` (no extension) beside `from` (an `import.meta.url`), in the same form as it. */
export function sibling(name: string, from: string): string {
  return fileURLToPath(new URL(`${name}${FROM_SOURCES ? ".ts" : ".js"}`, from));
}

/** What a forked child needs to load a `sibling`: tsx's loader for sources, nothing compiled. */
export function childLoader(): string[] {
  return FROM_SOURCES ? ["--import", "tsx"] : [];
}
