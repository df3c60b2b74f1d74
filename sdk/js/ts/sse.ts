// A parser of `text/event-stream` (the WHATWG HTML standard's "event stream interpretation"),
// fed with decoded text chunks as they arrive: Node 20 has no EventSource, and the provider's
// stream needs headers (Last-Event-ID) that EventSource would not let it choose anyway.

/** One dispatched event. */
export interface SseEvent {
  /** `event:` (default `message`). */
  readonly type: string;
  /** The `data:` lines joined by newlines. */
  readonly data: string;
  /** The last event ID in force when the event was dispatched (`""` when none). */
  readonly lastEventId: string;
}

export class SseParser {
  /** The stream's last event ID: set by `id:` fields, even on events without data. */
  lastEventId = "";
  /** The reconnection time the server asked for with `retry:`, in ms. */
  retryMs: number | undefined;

  #buffer = "";
  #data: string[] = [];
  #type = "";
  #idBuffer = "";
  /** A chunk ended in `\r`: a `\n` starting the next one belongs to the same line break. */
  #skipNewline = false;

  /** Feeds decoded text; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.#skipNewline && text.startsWith("\n")) {
      text = text.slice(1);
    }
    this.#skipNewline = false;
    this.#buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf("\r", start);
      const lf = this.#buffer.indexOf("\n", start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 === this.#buffer.length) {
          // `\r` at the end of the chunk: the line is complete, a following `\n` is not a new one.
          this.#skipNewline = true;
          next = cr + 1;
        } else {
          next = this.#buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      const event = this.#line(this.#buffer.slice(start, end));
      if (event !== undefined) events.push(event);
      start = next;
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      return this.#dispatch();
    }
    if (line.startsWith(":")) {
      return undefined; // a comment (the server's heartbeat)
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.#idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    this.lastEventId = this.#idBuffer;
    const data = this.#data;
    const type = this.#type;
    this.#data = [];
    this.#type = "";
    if (data.length === 0) return undefined;
    return { type: type === "" ? "message" : type, data: data.join("\n"), lastEventId: this.lastEventId };
  }
}
