/**
 * Files on the Matrix side: a file the monitor sends becomes an encrypted
 * attachment in a reply (`m.file` with an `EncryptedFile`), and the attachment
 * of a `put` is downloaded and decrypted for the monitor. Only ciphertext
 * reaches the homeserver; the worker never opens a file on the host.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { Attachment } from "../matrix/events.ts";
import {
  badEncryptedFile,
  decryptAttachment,
  encryptAttachment,
  type EncryptedFile,
} from "../matrix/attachment.ts";
import { downloadMedia, uploadMedia } from "../matrix/media.ts";
import { FileError } from "../files/request.ts";

/** The content of a reply carrying the file `name` uploaded as `file`. */
export function fileReplyContent(
  inReplyTo: string,
  name: string,
  size: number,
  file: EncryptedFile,
): Record<string, unknown> {
  return {
    msgtype: "m.file",
    body: name,
    filename: name,
    info: { size, mimetype: name.endsWith(".txt") ? "text/plain" : "application/octet-stream" },
    file,
    "m.relates_to": { "m.in_reply_to": { event_id: inReplyTo } },
  };
}

/**
 * Encrypts `body` while uploading it; resolves to the reply content to send.
 * The upload streams: nothing holds the file whole.
 */
export async function uploadEncrypted(
  config: Config,
  inReplyTo: string,
  name: string,
  size: number,
  body: ReadableStream<Uint8Array>,
): Promise<Record<string, unknown>> {
  const enc = encryptAttachment();
  const url = await uploadMedia(
    config.homeserver,
    config.accessToken,
    body.pipeThrough(enc.stream),
    size,
    name,
  );
  return fileReplyContent(inReplyTo, name, size, enc.file(url));
}

/** Downloads and decrypts `attachment`; the stream errors if its hash does not match. */
export async function fetchDecrypted(
  config: Config,
  attachment: Attachment,
): Promise<ReadableStream<Uint8Array>> {
  const bad = badEncryptedFile(attachment.file);
  if (bad) throw new Error(bad);
  const file = attachment.file as EncryptedFile;
  const { body, length } = await downloadMedia(config.homeserver, config.accessToken, file.url);
  if (length !== null && length > config.maxFileBytes) {
    await body.cancel();
    throw new FileError(
      "deny.file.size",
      `the attachment is ${length} bytes; the limit is ${config.maxFileBytes} (TIBET_NC_MAX_FILE_BYTES)`,
    );
  }
  return body.pipeThrough(decryptAttachment(file));
}
