/**
 * One HTTP/1.1 POST of a stream with a known length, written to the socket as
 * it is read. Deno's fetch sends a stream chunked and drops Content-Length
 * (which Synapse requires for uploads), and `node:http` buffers what it is
 * given ahead of the socket (43 MiB for a 100 MB body); this holds one chunk.
 * @module
 */

/** The status and body of the response. */
export interface PostResult {
  status: number;
  text: string;
}

const CRLF = "\r\n";

/** Writes all of `bytes` (a socket write may take part of them). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Reads the response: status line, headers, then a Content-Length or chunked body. */
async function readResponse(conn: Deno.Conn, maxBytes = 1 << 20): Promise<PostResult> {
  let buf = new Uint8Array(0);
  const more = async () => {
    const chunk = new Uint8Array(16384);
    const n = await conn.read(chunk);
    if (n === null) return false;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    if (buf.length > maxBytes) throw new Error("the homeserver's answer is too long");
    return true;
  };
  const dec = new TextDecoder();
  let end = -1;
  while ((end = dec.decode(buf).indexOf("\r\n\r\n")) < 0) {
    if (!(await more())) throw new Error("the homeserver closed the connection without answering");
  }
  const head = dec.decode(buf).slice(0, end);
  const [statusLine, ...lines] = head.split(CRLF);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  if (!Number.isFinite(status)) throw new Error(`not an HTTP answer: ${statusLine.slice(0, 80)}`);
  const headers = new Map(lines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
  }));
  const bodyStart = new TextEncoder().encode(head).length + 4;
  const length = headers.get("content-length");
  if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    // Chunked: size line, data, CRLF, ... until a zero size.
    for (;;) {
      const text = dec.decode(buf.subarray(bodyStart));
      const chunks: string[] = [];
      let at = 0, done = false;
      for (;;) {
        const nl = text.indexOf(CRLF, at);
        if (nl < 0) break;
        const size = parseInt(text.slice(at, nl), 16);
        if (size === 0) {
          done = true;
          break;
        }
        if (text.length < nl + 2 + size + 2) break;
        chunks.push(text.slice(nl + 2, nl + 2 + size));
        at = nl + 2 + size + 2;
      }
      if (done) return { status, text: chunks.join("") };
      if (!(await more())) return { status, text: chunks.join("") };
    }
  }
  const want = length === undefined ? null : Number(length);
  while (want === null || buf.length - bodyStart < want) {
    if (!(await more())) break;
  }
  return {
    status,
    text: dec.decode(buf.subarray(bodyStart, want === null ? undefined : bodyStart + want)),
  };
}

/**
 * POSTs `size` bytes of `body` to `url` with `headers`; fails if the stream
 * gives more or fewer bytes than `size`.
 */
export async function postStream(
  url: URL,
  headers: Record<string, string>,
  body: ReadableStream<Uint8Array>,
  size: number,
): Promise<PostResult> {
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const conn = url.protocol === "https:"
    ? await Deno.connectTls({ hostname, port })
    : await Deno.connect({ hostname, port });
  try {
    const lines = [
      `POST ${url.pathname}${url.search} HTTP/1.1`,
      `Host: ${url.host}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      `Content-Length: ${size}`,
      "Connection: close",
      "",
      "",
    ];
    await writeAll(conn, new TextEncoder().encode(lines.join(CRLF)));
    let sent = 0;
    try {
      for await (const chunk of body) {
        sent += chunk.length;
        if (sent > size) throw new Error(`the upload is longer than the ${size} bytes announced`);
        await writeAll(conn, chunk);
      }
    } catch (e) {
      // A server that refuses early (413) answers, then closes: its answer says more.
      if (!(e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset)) {
        throw e;
      }
      return await readResponse(conn).catch(() => {
        throw e;
      });
    }
    if (sent !== size) throw new Error(`the upload ended after ${sent} of ${size} bytes`);
    return await readResponse(conn);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}
