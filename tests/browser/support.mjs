// What the browser tests share: the page under test (tests/browser/page.mjs, bundled by esbuild)
// served from its own origin on 127.0.0.1, and Debian's chromium driven by playwright-core.
import { createServer } from "node:http";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";

import { ROOT } from "../support/system.mjs";

/** Serves the bundled page titled `title`; resolves to `{ url, close }`. */
export async function servePage(title) {
  const bundled = await build({
    entryPoints: [join(ROOT, "tests/browser/page.mjs")],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const script = bundled.outputFiles[0].contents;
  const html = `<!doctype html><meta charset="utf-8"><title>${title}</title><script type="module" src="/page.js"></script>`;
  const server = createServer((request, response) => {
    const isScript = request.url === "/page.js";
    response.writeHead(200, { "content-type": isScript ? "text/javascript" : "text/html" });
    response.end(isScript ? script : html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Debian's chromium (EDGEFLAGS_CHROMIUM, set by scripts/lib/browser.sh), headless. */
export function launchChromium() {
  const executablePath = process.env.EDGEFLAGS_CHROMIUM ?? "/usr/bin/chromium";
  return chromium.launch({ executablePath, args: ["--no-sandbox", "--headless=new"] });
}
