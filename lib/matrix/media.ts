/**
 * The homeserver's media repository, streamed both ways: an upload of a known
 * size without holding it (Synapse wants a Content-Length, and AES-CTR
 * ciphertext is as long as its plaintext), and a download read as it arrives.
 * Only ciphertext passes here.
 * @module
 */

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** A media failure, worded for the operator. */
export class MediaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MediaError";
  }
}

/** `mxc://server/id` into its parts, or null when it is not one. */
export function parseMxc(url: string): { server: string; id: string } | null {
  const m = /^mxc:\/\/([A-Za-z0-9.:\-\[\]]+)\/([A-Za-z0-9_-]+)$/.exec(url);
  return m ? { server: m[1], id: m[2] } : null;
}

function failure(what: string, status: number, text: string): MediaError {
  let why = text.slice(0, 200);
  try {
    const j = JSON.parse(text);
    why = `${j.errcode ?? ""} ${j.error ?? ""}`.trim() || why;
  } catch { /* not JSON */ }
  return new MediaError(`${what}: HTTP ${status}${why ? ` ${why}` : ""}`);
}

/**
 * Uploads `size` bytes of `body`; resolves to the content's mxc:// URL. Through
 * `node:http`, because Deno's fetch sends a stream chunked and drops the
 * Content-Length that Synapse requires.
 */
export async function uploadMedia(
  homeserver: string,
  accessToken: string,
  body: ReadableStream<Uint8Array>,
  size: number,
  name: string,
): Promise<string> {
  const url = new URL(
    `${homeserver.replace(/\/+$/, "")}/_matrix/media/v3/upload?filename=${
      encodeURIComponent(name)
    }`,
  );
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>(
    (resolve, reject) => {
      const req = send(url, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${accessToken}`,
          "Content-Type": "application/octet-stream",
          "Content-Length": String(size),
        },
      }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => text += d);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      });
      req.on("error", reject);
      (async () => {
        let sent = 0;
        for await (const chunk of body) {
          sent += chunk.length;
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        }
        if (sent !== size) throw new MediaError(`upload of ${size} bytes got ${sent}`);
        req.end();
      })().catch((e) => {
        req.destroy(e);
        reject(e);
      });
    },
  );
  if (status < 200 || status > 299) {
    throw failure(
      status === 413 ? "the homeserver refuses a file this large" : "upload failed",
      status,
      text,
    );
  }
  const j = JSON.parse(text) as { content_uri?: unknown };
  if (typeof j.content_uri !== "string" || parseMxc(j.content_uri) === null) {
    throw new MediaError("upload failed: the homeserver gave no mxc:// URL");
  }
  return j.content_uri;
}

/**
 * Starts downloading `mxc`; resolves once the homeserver answered, with the body
 * and its announced length (null if none). Authenticated media first
 * (`/_matrix/client/v1/media`), the older public path for servers without it.
 */
export async function downloadMedia(
  homeserver: string,
  accessToken: string,
  mxc: string,
): Promise<{ body: ReadableStream<Uint8Array>; length: number | null }> {
  const parts = parseMxc(mxc);
  if (parts === null) throw new MediaError(`"${mxc}" is not an mxc:// URL`);
  const base = homeserver.replace(/\/+$/, "");
  const path = `${encodeURIComponent(parts.server)}/${encodeURIComponent(parts.id)}`;
  let res = await fetch(`${base}/_matrix/client/v1/media/download/${path}`, {
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  if (res.status === 404 || res.status === 400) {
    const errcode = await res.clone().json().then((j) => j.errcode).catch(() => null);
    if (errcode === "M_UNRECOGNIZED") {
      res = await fetch(`${base}/_matrix/media/v3/download/${path}`, {
        headers: { Authorization: `Bearer ${accessToken}` },
      });
    }
  }
  if (!res.ok || res.body === null) {
    throw failure("download failed", res.status, await res.text().catch(() => ""));
  }
  const len = res.headers.get("content-length");
  return { body: res.body, length: len === null ? null : Number(len) };
}
