/** What a {@link LineSplitter} does with a line longer than its limit. */
export type LongLinePolicy = 'split' | 'skip';

/** Receives one line (or one piece of an over-long line) as raw bytes, without its line ending. */
export type LineSink = (bytes: Uint8Array, line: number) => void;

/**
 * Splits a byte stream into lines on `\n` (a `\r` before it is dropped, so CRLF and LF both work) while holding
 * at most `maxLineBytes` of any one line: a longer line is emitted in pieces cut at UTF-8 character boundaries
 * (`split`, each piece keeps the line's number) or dropped up to its end (`skip`). Works on bytes, not strings,
 * so a character split across two chunks is never decoded half.
 */
export class LineSplitter {
  #parts: Uint8Array[] = [];
  #length = 0;
  #line = 1;
  #skipping = false;
  #cutThisLine = false;
  /** Lines that were cut into pieces. */
  splitLines = 0;
  /** Lines that were dropped for being too long. */
  skippedLines = 0;

  constructor(
    readonly maxLineBytes: number,
    readonly policy: LongLinePolicy,
    readonly sink: LineSink,
  ) {}

  /** The 1-based number of the line now being read. */
  get line(): number {
    return this.#line;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(10, start);
      if (end === -1) {
        if (start < chunk.length) this.#append(chunk.subarray(start));
        return;
      }
      this.#append(chunk.subarray(start, end));
      this.#finishLine();
      start = end + 1;
    }
  }

  /** Emits a last line that had no line ending. */
  end(): void {
    if (this.#length > 0 || this.#cutThisLine) this.#finishLine();
    else if (this.#skipping) this.#skipping = false;
  }

  #append(piece: Uint8Array): void {
    if (this.#skipping || piece.length === 0) return;
    this.#parts.push(piece);
    this.#length += piece.length;
    while (this.#length > this.maxLineBytes) {
      if (this.policy === 'skip') {
        this.#skipping = true;
        this.skippedLines++;
        this.#reset();
        return;
      }
      const all = this.#take();
      const cut = utf8Boundary(all, this.maxLineBytes);
      if (!this.#cutThisLine) this.splitLines++;
      this.#cutThisLine = true;
      this.sink(all.subarray(0, cut), this.#line);
      this.#parts = [all.subarray(cut)];
      this.#length = all.length - cut;
    }
  }

  #finishLine(): void {
    if (this.#skipping) {
      this.#skipping = false;
    } else {
      let bytes = this.#take();
      if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1);
      // The tail of a cut line is emitted only if something is left of it.
      if (!this.#cutThisLine || bytes.length > 0) this.sink(bytes, this.#line);
    }
    this.#reset();
    this.#cutThisLine = false;
    this.#line++;
  }

  #take(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0]!;
    const all = new Uint8Array(this.#length);
    let offset = 0;
    for (const part of this.#parts) {
      all.set(part, offset);
      offset += part.length;
    }
    return all;
  }

  #reset(): void {
    this.#parts = [];
    this.#length = 0;
  }
}

/** The largest index <= `limit` that does not fall inside a UTF-8 multi-byte character. */
export function utf8Boundary(bytes: Uint8Array, limit: number): number {
  let cut = Math.min(limit, bytes.length);
  // Continuation bytes look like 10xxxxxx; back off at most 3 of them to the start of the character.
  for (let back = 0; back < 3 && cut > 0 && cut < bytes.length && (bytes[cut]! & 0xc0) === 0x80; back++) cut--;
  return cut === 0 ? Math.min(limit, bytes.length) : cut;
}
