/**
 * Files the way an operator's client sends and receives them, with
 * `matrix-encrypt-attachment` (what Element uses), so the agent's own streaming
 * cipher is checked against an independent implementation.
 * @module
 */

import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import { decryptAttachment, encryptAttachment } from "matrix-encrypt-attachment";

/** How to send a file: the defaults are what a well-behaved client does. */
export interface SendFileOptions {
  /** Encrypt the attachment (an encrypted room's events are encrypted either way). @default true */
  encrypted?: boolean;
  /** Flip one ciphertext byte after hashing: a tampered upload. @default false */
  tamper?: boolean;
  /** The size announced in `info.size`. @default the real size */
  announcedSize?: number;
}

/** Uploads `bytes` and sends them as the file `name` with `caption` as its body; returns the event id. */
export async function sendFile(
  client: MatrixClient,
  roomId: string,
  bytes: Uint8Array,
  name: string,
  caption: string,
  opts: SendFileOptions = {},
): Promise<string> {
  const info = { size: opts.announcedSize ?? bytes.length, mimetype: "application/octet-stream" };
  let content: Record<string, unknown>;
  if (opts.encrypted === false) {
    const up = await client.uploadContent(new Blob([bytes.slice()]), {
      type: "application/octet-stream",
      includeFilename: false,
    });
    content = { msgtype: "m.file", body: caption, filename: name, info, url: up.content_uri };
  } else {
    const enc = await encryptAttachment(bytes.slice().buffer);
    const data = new Uint8Array(enc.data);
    if (opts.tamper) data[Math.floor(data.length / 2)] ^= 1;
    const up = await client.uploadContent(new Blob([data]), {
      type: "application/octet-stream",
      includeFilename: false,
    });
    content = {
      msgtype: "m.file",
      body: caption,
      filename: name,
      info,
      file: { ...enc.info, url: up.content_uri },
    };
  }
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

/** Downloads and decrypts the file of an `m.file` event: its name and plaintext. */
export async function receiveFile(
  client: MatrixClient,
  event: MatrixEvent,
): Promise<{ name: string; bytes: Uint8Array; mxc: string }> {
  const c = event.getContent();
  const raw = await rawMedia(client, c.file.url);
  const plain = await decryptAttachment(raw.slice().buffer, c.file);
  return { name: c.filename ?? c.body, bytes: new Uint8Array(plain), mxc: c.file.url };
}
