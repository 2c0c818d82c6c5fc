// Bundles the console (main.ts and the generated client) into console/dist/ with esbuild, next
// to its HTML and CSS: any static file server can serve that folder.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, "main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
for (const f of ["index.html", "style.css"]) await copyFile(join(here, f), join(out, f));
