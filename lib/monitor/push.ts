/**
 * The pushes of a running command's output to the worker: the first after
 * {@linkcode STREAM_AFTER_MS} (a quick command gets one reply, no edits), then
 * at most every {@linkcode EDIT_EVERY_MS} and only when the text changed, so
 * the homeserver's rate limits are never the reason an edit is lost.
 * @module
 */

/** A command still running after this gets a "running" reply, then edits. */
export const STREAM_AFTER_MS = 2000;
/** Minimum time between two pushes of a running command's output (homeserver rate limits). */
export const EDIT_EVERY_MS = 3000;

/**
 * Starts pushing `render()` to `progress`; returns the function that stops it.
 * `firstAfterMs` is when the first push is due.
 */
export function startPushing(
  render: () => string,
  progress: (elapsedMs: number, text: string) => void,
  started: number,
  firstAfterMs = STREAM_AFTER_MS,
): () => void {
  let shown: string | null = null;
  const push = () => {
    const body = render();
    if (body === shown) return;
    shown = body;
    progress(Date.now() - started, body);
  };
  let streamer: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    push();
    streamer = setInterval(push, EDIT_EVERY_MS);
  }, firstAfterMs);
  return () => {
    clearTimeout(first);
    clearInterval(streamer);
  };
}
