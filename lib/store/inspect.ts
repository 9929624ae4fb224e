/**
 * Reads a crypto store without opening it for the agent: which databases it
 * holds and whether each one loads. For `doctor` (beside a running agent, so
 * nothing is written or compacted) and for `login` (which needs an empty one).
 * @module
 */

import v8 from "node:v8";
import { storeCipher } from "./store_key.ts";
import { readRecords } from "./record_file.ts";
import type { DbImage } from "./idb_image.ts";

/** The store's files: database names (from `<name>.snap` / `.journal`) and whether a key file is there. */
export interface StoreFiles {
  databases: string[];
  keyFile: boolean;
}

/** Lists `dir`; a missing dir is an empty store. Throws when it cannot be read. */
export function storeFiles(dir: string): StoreFiles {
  const names = new Set<string>();
  let keyFile = false;
  try {
    for (const e of Deno.readDirSync(dir)) {
      const m = e.name.match(/^(.*)\.(snap|journal)$/);
      if (m) names.add(decodeURIComponent(m[1]));
      if (e.name === "store-key.json") keyFile = true;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { databases: [...names].sort(), keyFile };
}

/** What {@linkcode inspectStore} found. */
export type StoreState =
  | { kind: "empty" }
  | { kind: "unreadable"; reason: string }
  | { kind: "ok"; databases: number; journalRecords: number; encrypted: boolean };

/**
 * Decrypts and decodes every snapshot and journal record of the store in `dir`
 * with the agent's passphrase (null: unencrypted), read-only.
 */
export function inspectStore(dir: string, passphrase: string | null): StoreState {
  let files: StoreFiles;
  try {
    files = storeFiles(dir);
  } catch (e) {
    return { kind: "unreadable", reason: `cannot read ${dir}: ${(e as Error).message}` };
  }
  if (files.databases.length === 0 && !files.keyFile) return { kind: "empty" };
  let cipher;
  try {
    cipher = storeCipher(dir, passphrase);
  } catch (e) {
    return { kind: "unreadable", reason: (e as Error).message };
  }
  let journalRecords = 0;
  for (const name of files.databases) {
    const base = `${dir}/${encodeURIComponent(name)}`;
    try {
      const snap = readRecords(`${base}.snap`, cipher);
      if (snap.records.length === 0 && sizeOf(`${base}.snap`) > 0) {
        return {
          kind: "unreadable",
          reason: `${base}.snap is corrupt: the agent cannot load its keys`,
        };
      }
      const image = snap.records.length > 0 ? v8.deserialize(snap.records[0]) as DbImage : null;
      if (image && image.name !== name) throw new Error(`the snapshot holds "${image.name}"`);
      const journal = readRecords(`${base}.journal`, cipher);
      for (const rec of journal.records) v8.deserialize(rec);
      journalRecords += journal.records.length;
    } catch (e) {
      return {
        kind: "unreadable",
        reason: `cannot read database "${name}" in ${dir}: ${(e as Error).message}`,
      };
    }
  }
  return {
    kind: "ok",
    databases: files.databases.length,
    journalRecords,
    encrypted: cipher !== null,
  };
}

function sizeOf(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}
