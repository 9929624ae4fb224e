/**
 * Files the way an operator's client sends and receives them (`connect`'s own
 * code, on `matrix-encrypt-attachment`, what Element uses), so the agent's own
 * streaming cipher is checked against an independent implementation; and the
 * ways a hostile client sends them (unencrypted, tampered, a false size).
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { encryptAttachment } from "matrix-encrypt-attachment";
import { sendFile as clientSendFile } from "../../lib/connect/files.ts";

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
  if (opts.encrypted !== false && !opts.tamper && opts.announcedSize === undefined) {
    return await clientSendFile(client, roomId, bytes, name, caption);
  }
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

export { rawMedia, receiveFile } from "../../lib/connect/files.ts";
