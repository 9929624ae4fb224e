/**
 * The output limit of one command (or pipeline): passes chunks to the sink up
 * to `maxBytes`, counts everything, and asks for the command to stop once the
 * output passes the limit or the sink throws.
 * @module
 */

/** The state of one gate. */
export interface OutputGate {
  /** Passes `bytes` on (the part within the limit); valid only during the call. */
  forward(bytes: Uint8Array): void;
  /** Bytes seen, including those past the limit. */
  readonly totalBytes: number;
  /** True once the output passed the limit. */
  readonly outputLimited: boolean;
  /** What the sink threw, if it did. */
  readonly sinkError: Error | null;
}

/** A gate of `maxBytes` in front of `sink`; `stop` is called once either limit is hit. */
export function outputGate(
  maxBytes: number,
  sink: (chunk: Uint8Array) => void,
  stop: () => void,
): OutputGate {
  let totalBytes = 0, delivered = 0;
  let outputLimited = false;
  let sinkError: Error | null = null;
  return {
    forward(bytes) {
      totalBytes += bytes.length;
      const room = maxBytes - delivered;
      if (room > 0 && bytes.length > 0 && sinkError === null) {
        const part = bytes.length <= room ? bytes : bytes.subarray(0, room);
        delivered += part.length;
        try {
          sink(part);
        } catch (e) {
          sinkError = e instanceof Error ? e : new Error(String(e));
          stop();
        }
      }
      if (totalBytes > maxBytes && !outputLimited) {
        outputLimited = true;
        stop();
      }
    },
    get totalBytes() {
      return totalBytes;
    },
    get outputLimited() {
      return outputLimited;
    },
    get sinkError() {
      return sinkError;
    },
  };
}
