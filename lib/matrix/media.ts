/**
 * The homeserver's media repository, streamed both ways: an upload of a known
 * size without holding it (Synapse wants a Content-Length, and AES-CTR
 * ciphertext is as long as its plaintext), and a download read as it arrives.
 * Only ciphertext passes here.
 * @module
 */

import { postStream } from "./http_upload.ts";

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

/** Uploads `size` bytes of `body`, streamed (`http_upload.ts`); resolves to its mxc:// URL. */
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
  const { status, text } = await postStream(
    url,
    {
      Authorization: `Bearer ${accessToken}`,
      "Content-Type": "application/octet-stream",
    },
    body,
    size,
  ).catch((e) => {
    throw new MediaError(`upload failed: ${(e as Error).message}`);
  });
  if (status < 200 || status > 299) {
    throw failure(
      status === 413 ? "the homeserver refuses a file this large" : "upload failed",
      status,
      text,
    );
  }
  let j: { content_uri?: unknown } = {};
  try {
    j = JSON.parse(text);
  } catch { /* checked below */ }
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
