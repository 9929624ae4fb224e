/**
 * Small helpers for writes that must be on disk before the caller goes on.
 * @module
 */

/** Writes all of `bytes` to `file` (a single write may be short). */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

/** The directory holding `path` ("." for a bare name). */
export function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** fsyncs the directory holding `path`, so a file created there survives power loss. */
export function syncDirOf(path: string): void {
  const dir = Deno.openSync(dirOf(path), { read: true });
  try {
    dir.syncSync();
  } finally {
    dir.close();
  }
}
