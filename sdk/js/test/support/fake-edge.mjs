// A local stand-in for the edge's SDK endpoints, implementing docs/sdk.md's contract and no
// more: `GET /sdk/v1/snapshot` (server key, ETag / If-None-Match → 304, gzip, the
// X-Edgeflags-Event-Stream header) and the event stream it names (docs/event-streams.md: the
// opening's id, Last-Event-ID catch-up, one `refetchEvaluation` per new version). 127.0.0.1 on
// an ephemeral port; it can be stopped and started again on the same port to play "down".
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { gzipSync } from "node:zlib";

export const SERVER_KEY = `efs.test.${"0123456789abcdef".repeat(2)}`;
export const CLIENT_KEY = `efk.test.${"fedcba9876543210".repeat(2)}`;

/** A small snapshot of environment `test`: `checkout` (boolean, on for `vip` or when `beta`) and `colour` (a string flag without targeting: it serves `colour`). */
export function snapshot(version, { beta = false, colour = "red", checkoutVersion = 1 } = {}) {
  return {
    environment: "test",
    version,
    generatedAt: "2026-11-24T10:00:00Z",
    flags: [
      {
        flagKey: "checkout",
        enabled: true,
        version: checkoutVersion,
        variations: [
          { key: "on", value: true },
          { key: "off", value: false },
        ],
        defaultVariation: beta ? "on" : "off",
        onVariation: "on",
        offVariation: "off",
        targetingRules: { userIds: ["vip"] },
      },
      {
        flagKey: "colour",
        enabled: true,
        version: 1,
        variations: [
          { key: "red", value: "red" },
          { key: "blue", value: "blue" },
        ],
        defaultVariation: "red",
        onVariation: colour,
        offVariation: "red",
      },
    ],
    segments: [],
    clientKeys: [],
    serverKeys: [],
  };
}

export class FakeEdge {
  /** Every request: { method, path, query, headers, status, at (ms) }. */
  requests = [];
  /** Whether snapshot answers name an event stream. */
  streams = true;
  /** Events written with CR and CRLF line endings, a few bytes per write (the parser must reassemble them). */
  ragged = false;
  /** How many snapshot requests to answer `503 SNAPSHOT_UNAVAILABLE` with `Retry-After: 1`. */
  unavailable = 0;
  /** How many stream openings to refuse with `429 TOO_MANY_STREAMS` and `Retry-After: 1`. */
  refuseStreams = 0;
  /** The stream token snapshot answers carry; the stream accepts only the current one. */
  token = "v1.test.stream-token.1";
  #text = "";
  #version = 0;
  #etag = "";
  #server;
  #port = 0;
  #openStreams = new Set();
  #serverKey;

  /** `serverKey`: the one key it accepts (default SERVER_KEY, of environment `test`). */
  constructor(document, { serverKey = SERVER_KEY } = {}) {
    this.#serverKey = serverKey;
    this.#set(document);
  }

  get url() {
    return `http://127.0.0.1:${this.#port}`;
  }

  get openStreams() {
    return this.#openStreams.size;
  }

  /** Listens (again) on 127.0.0.1, on the port of the previous start if there was one. */
  async start() {
    this.#server = createServer((request, response) => this.#handle(request, response));
    await new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#port, "127.0.0.1", resolve);
    });
    this.#port = this.#server.address().port;
  }

  /** Stops listening and cuts every connection (streams included): the edge is down. */
  async stop() {
    for (const stream of this.#openStreams) stream.destroy();
    this.#openStreams.clear();
    const server = this.#server;
    await new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
  }

  /**
   * Publishes a new snapshot (a document, or raw text such as a broken one with `version`):
   * the next snapshot answer serves it, and every open stream hears of it.
   */
  publish(document, version) {
    this.replace(document, version);
    this.announce();
  }

  /** Serves a new snapshot without telling the streams (a cache catching up late, say). */
  replace(document, version) {
    this.#set(document, version);
  }

  /** A new stream token (the old one expired): open streams end, reconnecting with the old one gets 401. */
  rotateToken() {
    this.token = `v1.test.stream-token.${Number(this.token.split(".").at(-1)) + 1}`;
    for (const stream of this.#openStreams) stream.end();
  }

  /** Writes a `refetchEvaluation` event for `version` (default: the one served) to every open stream. */
  announce(version = this.#version) {
    for (const stream of this.#openStreams) this.#event(stream, version);
  }

  #set(document, version) {
    this.#text = typeof document === "string" ? document : JSON.stringify(document);
    this.#version = version ?? document.version;
    const checksum = createHash("sha256").update(this.#text).digest("hex").slice(0, 16);
    this.#etag = `"${this.#version}-${checksum}"`;
  }

  #event(stream, version = this.#version) {
    const data = JSON.stringify({ type: "refetchEvaluation", etag: `"${version}"`, lastModified: 1_795_514_400 });
    const text = `: heartbeat\nid: ${version}\nevent: message\ndata: ${data}\n\n`;
    if (!this.ragged) {
      stream.write(text);
      return;
    }
    let n = 0;
    const mixed = text.replaceAll("\n", () => (n++ % 2 === 0 ? "\r" : "\r\n"));
    for (let i = 0; i < mixed.length; i += 3) stream.write(mixed.slice(i, i + 3));
  }

  #handle(request, response) {
    const url = new URL(request.url, "http://127.0.0.1");
    const record = { method: request.method, path: url.pathname, query: url.search, headers: request.headers, status: 0, at: Date.now() };
    this.requests.push(record);
    const answer = (status, headers, body) => {
      record.status = status;
      response.writeHead(status, headers);
      response.end(body);
    };
    if (url.pathname === "/sdk/v1/snapshot") {
      const auth = request.headers.authorization ?? "";
      if (auth === `Bearer ${CLIENT_KEY}`) {
        return answer(403, { "content-type": "application/json" }, '{"error":{"code":"SERVER_KEY_REQUIRED","message":"a client key cannot download a snapshot"}}');
      }
      if (auth !== `Bearer ${this.#serverKey}`) {
        return answer(401, { "content-type": "application/json" }, '{"error":{"code":"INVALID_CLIENT_KEY","message":"unknown key"}}');
      }
      if (this.unavailable > 0) {
        this.unavailable--;
        return answer(503, { "content-type": "application/json", "retry-after": "1" }, '{"error":{"code":"SNAPSHOT_UNAVAILABLE","message":"no snapshot"}}');
      }
      const headers = {
        etag: this.#etag,
        "x-edgeflags-snapshot-version": String(this.#version),
        "cache-control": "private, no-cache",
        vary: "Accept-Encoding",
      };
      if (this.streams) headers["x-edgeflags-event-stream"] = `/ofrep/v1/event-stream?token=${this.token}`;
      if (request.headers["if-none-match"] === this.#etag) {
        return answer(304, headers);
      }
      headers["content-type"] = "application/json";
      if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
        headers["content-encoding"] = "gzip";
        record.gzip = true;
        return answer(200, headers, gzipSync(this.#text));
      }
      return answer(200, headers, this.#text);
    }
    if (url.pathname === "/ofrep/v1/event-stream") {
      if (url.searchParams.get("token") !== this.token) {
        return answer(401, { "content-type": "application/json" }, '{"error":{"code":"INVALID_STREAM_TOKEN","message":"bad token","field":"token"}}');
      }
      if (this.refuseStreams > 0) {
        this.refuseStreams--;
        return answer(429, { "content-type": "application/json", "retry-after": "1" }, '{"error":{"code":"TOO_MANY_STREAMS","message":"too many streams"}}');
      }
      record.status = 200;
      response.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "private, no-store",
      });
      response.write("retry: 2000\n");
      const last = Number(request.headers["last-event-id"]);
      if (Number.isInteger(last) && last < this.#version) {
        this.#event(response);
      } else {
        response.write(`id: ${this.#version}\n\n`);
      }
      this.#openStreams.add(response);
      response.on("close", () => this.#openStreams.delete(response));
      return undefined;
    }
    return answer(404, { "content-type": "application/json" }, '{"error":{"code":"NOT_FOUND","message":"no such route"}}');
  }
}
