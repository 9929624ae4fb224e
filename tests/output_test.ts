import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cleanTerminalText, createOutputBuffer, formatBytes } from "../lib/exec/output.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function collect(chunks: (string | Uint8Array)[], maxBytes = 65536) {
  const buf = createOutputBuffer(maxBytes);
  for (const c of chunks) buf.push(typeof c === "string" ? enc(c) : c);
  return buf;
}

Deno.test("ANSI escape sequences are stripped: CSI, OSC, charset, keypad, C1 CSI", () => {
  const raw = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\" +
    " \x1b(Bcs\x1b)0 \x1b=\x1b>\x1b7\x1b8\x1b[?25l\x1b[2K\x1b[10;20H\x1bPdcs\x1b\\ok \u009b2Jz\n";
  assert.equal(collect([raw]).text(), "red link cs ok z\n");
});

Deno.test("escape sequences split across chunks are stripped", () => {
  assert.equal(collect(["a\x1b[3", "1mb\x1b", "]0;t\x07c\n"]).text(), "abc\n");
});

Deno.test("carriage-return progress collapses to its last state; CRLF becomes LF", () => {
  assert.equal(collect(["10%\r50%\r100%\n"]).text(), "100%\n");
  assert.equal(collect(["a\r\n", "b\r", "\n"]).text(), "a\nb\n");
  // An erase-line sequence is stripped, so the last state must not be an overlay.
  assert.equal(collect(["downloading 100%\r\x1b[Kdone\n"]).text(), "done\n");
  assert.equal(collect(["working...\r"]).text(), "working...");
});

Deno.test("backspace overstrike (man) is applied, other controls dropped, tabs kept", () => {
  assert.equal(collect(["N\bNA\bAM\bME\bE _\bx\n"]).text(), "NAME x\n");
  assert.equal(collect(["a\x00b\x07c\td\x7fe\x0cf\n"]).text(), "abc\tdef\n");
});

Deno.test("invalid UTF-8 becomes U+FFFD, split sequences decode whole", () => {
  assert.equal(
    collect([new Uint8Array([0x61, 0xff, 0x62, 0xc3, 0x28, 0x0a])]).text(),
    "a\ufffdb\ufffd(\n",
  );
  const euro = enc("€"); // 3 bytes
  const smile = enc("😀"); // 4 bytes
  const parts = [euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2), smile.subarray(0, 3)];
  assert.equal(collect([...parts, smile.subarray(3)]).text(), "€😀");
  // A truncated sequence at the very end is one replacement character, not an error.
  assert.equal(collect([smile.subarray(0, 2)]).text(), "\ufffd");
});

Deno.test("memory bound: head and tail kept, the middle dropped but counted and hashed", () => {
  const buf = createOutputBuffer(1024); // 768 head + 256 tail
  const line = (i: number): string => `line ${String(i).padStart(5, "0")}\n`; // 11 bytes
  const ref = createHash("sha256");
  for (let i = 0; i < 10000; i++) {
    const b = enc(line(i));
    buf.push(b);
    ref.update(b);
  }
  assert.equal(buf.totalBytes, 110000);
  assert.equal(buf.truncated, true);
  assert.equal(buf.sha256Hex(), ref.digest("hex"));
  const text = buf.text();
  assert.ok(text.startsWith("line 00000\nline 00001\n"));
  assert.ok(text.endsWith("line 09998\nline 09999\n"));
  assert.ok(!text.includes("line 05000"));
  assert.match(
    text,
    /… \[output cut: 110\.0 KB total, showing first [0-9.]+ B and last [0-9.]+ B\]\n/,
  );
  // The tail starts on a line boundary, never mid-line.
  const afterNote = text.slice(text.indexOf("]\n") + 2);
  assert.match(afterNote, /^line \d{5}\n/);
  assert.ok(text.length < 1100);
});

Deno.test("a 100 MB stream costs no more memory than the bound", () => {
  const buf = createOutputBuffer(65536);
  const chunk = new Uint8Array(65536).fill(0x78);
  // This isolate's own heap and buffers: other test files share the process's RSS.
  const own = () => {
    const m = Deno.memoryUsage();
    return m.heapUsed + m.external;
  };
  const before = own();
  for (let i = 0; i < 1600; i++) buf.push(chunk);
  const growth = own() - before;
  assert.equal(buf.totalBytes, 1600 * 65536);
  assert.ok(growth < 30e6, `heap and buffers grew by ${growth} bytes`);
  assert.ok(buf.text().length < 70000);
});

Deno.test("render(limit) cuts at line boundaries with sizes in the note", () => {
  const lines = Array.from({ length: 2000 }, (_, i) => `row ${i}`).join("\n") + "\n";
  const buf = collect([lines]); // fits the buffer, too long for the message
  assert.equal(buf.truncated, false);
  const out = buf.render(1000);
  assert.ok(out.length <= 1000, `rendered ${out.length} chars`);
  assert.ok(out.startsWith("row 0\nrow 1\n"));
  assert.ok(out.endsWith("row 1999\n"));
  const note = out.match(
    /… \[output cut: ([0-9.]+ [KM]?B) total, showing first (\d+ B) and last (\d+ B)\]/,
  );
  assert.ok(note, out);
  assert.equal(note[1], formatBytes(enc(lines).length));
  const [head, tail] = out.split(/… \[output cut[^\n]*\n/);
  assert.equal(`${enc(head).length} B`, note[2]);
  assert.equal(`${enc(tail).length} B`, note[3]);
  assert.match(head, /\n$/);
  assert.match(tail, /^row \d+\n/);
  // Output that fits is returned untouched.
  assert.equal(collect(["short\n"]).render(100), "short\n");
});

Deno.test("render of a 1 GB total names the size", () => {
  const buf = createOutputBuffer(4096);
  const chunk = new Uint8Array(1_000_000).fill(0x61);
  for (let i = 0; i < 1000; i++) buf.push(chunk);
  assert.match(buf.render(500), /\[output cut: 1\.0 GB total, showing first/);
  assert.ok(buf.render(500).length <= 500);
});

Deno.test("sha256Hex equals createHash of the concatenation, and can be read repeatedly", () => {
  const parts = [enc("héllo "), new Uint8Array([0xff, 0x00, 0x1b]), enc("\x1b[31mworld\r\n")];
  const buf = collect(parts, 8);
  const ref = createHash("sha256");
  for (const p of parts) ref.update(p);
  const want = ref.digest("hex");
  assert.equal(buf.sha256Hex(), want);
  assert.equal(buf.sha256Hex(), want);
  assert.equal(createOutputBuffer(16).sha256Hex(), createHash("sha256").digest("hex"));
});

Deno.test("formatBytes uses decimal units and rounds across unit boundaries", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1000), "1.0 KB");
  assert.equal(formatBytes(999_960), "1.0 MB");
  assert.equal(formatBytes(1_000_000_000), "1.0 GB");
});

Deno.test("cleanTerminalText keeps plain text and tabs as they are", () => {
  assert.equal(cleanTerminalText("a\tb\nc"), "a\tb\nc");
  assert.throws(() => createOutputBuffer(0), /at least 4/);
});
