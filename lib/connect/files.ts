/**
 * Files as an operator's client moves them: encrypted attachments with
 * `matrix-encrypt-attachment` (what Element uses), uploaded to and fetched
 * from the homeserver's media repository.
 * @module
 */

import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import { decryptAttachment, encryptAttachment } from "matrix-encrypt-attachment";
import { basename } from "node:path";
import { ConnectError, EXIT } from "./options.ts";

/** Encrypts and uploads `bytes`, and sends them as the file `name` with `caption` as its body. */
export async function sendFile(
  client: MatrixClient,
  roomId: string,
  bytes: Uint8Array,
  name: string,
  caption: string,
): Promise<string> {
  const enc = await encryptAttachment(bytes.slice().buffer);
  const up = await client.uploadContent(new Blob([new Uint8Array(enc.data)]), {
    type: "application/octet-stream",
    includeFilename: false,
  });
  const content = {
    msgtype: "m.file",
    body: caption,
    filename: name,
    info: { size: bytes.length, mimetype: "application/octet-stream" },
    file: { ...enc.info, url: up.content_uri },
  };
  // deno-lint-ignore no-explicit-any
  const { event_id } = await client.sendMessage(roomId, content as any);
  return event_id;
}

/** The raw bytes the media repository holds for `mxc` (ciphertext, for an encrypted file). */
export async function rawMedia(client: MatrixClient, mxc: string): Promise<Uint8Array> {
  const [server, id] = mxc.replace("mxc://", "").split("/");
  const res = await fetch(`${client.baseUrl}/_matrix/client/v1/media/download/${server}/${id}`, {
    headers: { Authorization: `Bearer ${client.getAccessToken()}` },
  });
  if (!res.ok) throw new Error(`download of ${mxc}: HTTP ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Downloads and decrypts the file of an `m.file` event (checking its hash): its name and bytes. */
export async function receiveFile(
  client: MatrixClient,
  event: MatrixEvent,
): Promise<{ name: string; bytes: Uint8Array; mxc: string }> {
  const c = event.getContent();
  if (!c.file?.url) throw new Error("the file is not an encrypted attachment; not taken");
  const raw = await rawMedia(client, c.file.url);
  const plain = await decryptAttachment(raw.slice().buffer, c.file);
  return { name: c.filename ?? c.body, bytes: new Uint8Array(plain), mxc: c.file.url };
}

/**
 * The file a `get` answers with: sent before its answer, it may still decrypt
 * after it. Null when none came within 10 s.
 */
export async function waitForFile(t: { files: MatrixEvent[] }): Promise<MatrixEvent | null> {
  const deadline = Date.now() + 10_000;
  const file = () => t.files.find((ev) => ev.getContent().filename !== "output.txt");
  while (!file() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return file() ?? null;
}

/** True when something (even a dangling symlink) is at `path`: a download never replaces it. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * `put LOCAL REMOTE_DIR` of either mode: reads LOCAL here and sends it with the
 * caption that asks `host` to write it into REMOTE_DIR; returns the event id.
 * An unreadable LOCAL is a usage error, and nothing is sent.
 */
export async function putLocal(
  client: MatrixClient,
  roomId: string,
  host: string,
  local: string,
  remoteDir: string,
): Promise<string> {
  let bytes;
  try {
    bytes = await Deno.readFile(local);
  } catch (e) {
    throw new ConnectError(
      `cannot read ${local} here: ${(e as Error).message}; nothing was sent`,
      EXIT.usage,
    );
  }
  return await sendFile(client, roomId, bytes, basename(local), `@${host} $ put ${remoteDir}`);
}
