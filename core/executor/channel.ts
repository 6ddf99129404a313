/**
 * The data path between the main thread and one worker thread: a byte ring in a
 * `SharedArrayBuffer`, one per direction, single producer and single consumer.
 *
 * Frames (`u32 length` + body) are written as a byte stream, so a frame larger than the ring
 * still crosses it in pieces while the reader drains. A side that waits raises its flag and the
 * other side wakes it only when the flag is up, so a busy pair exchanges thousands of frames
 * with no wake-up at all. The worker may block in `Atomics.wait` (woken by `Atomics.notify`);
 * the main thread never blocks: it sleeps on its event loop and is woken by a doorbell message
 * (a `postMessage`, one per batch at most).
 */

/** Bytes of ring data per direction and worker. A frame may be larger: it streams through. */
export const RING_BYTES = 1 << 20;

/** Control words (Int32 indices); head and tail sit on separate cache lines. */
const HEAD = 0;
const TAIL = 16;
const READER_WAITING = 32;
const WRITER_WAITING = 33;
/** The id of the task the worker is running (0: none); used only in the main→worker ring. */
export const RUNNING = 48;
/** Bumped by the main thread each time it posts a cancellation; main→worker ring only. */
export const CANCELS = 49;
const HEADER_BYTES = 256;
/** States of a WAITING word: a side blocked in `Atomics.wait`, or asleep on its event loop. */
const BLOCKED = 1;
const ASLEEP = 2;

/** A frame ready to parse: `buf[start, end)`; valid until {@link FrameReader.release}. */
export interface FrameView {
  buf: Buffer;
  start: number;
  end: number;
}

/**
 * One direction of the channel. Positions are free-running Int32 counters (wrapping is
 * harmless: only differences and `& mask` are used), so head and tail never need a lock.
 */
export class Ring {
  /** The shared memory, handed to the worker once at start. */
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  /** The control words, exposed for the task-state slots {@link RUNNING} and {@link CANCELS}. */
  readonly ctrl: Int32Array;
  readonly #bytes: Buffer;
  readonly #mask: number;
  /**
   * Rings the other thread's doorbell (a `postMessage`): how a side that sleeps on its event
   * loop rather than in `Atomics.wait` is woken. Set by the owner of this end.
   */
  doorbell: () => void = () => undefined;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.capacity = sab.byteLength - HEADER_BYTES;
    this.ctrl = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.#bytes = Buffer.from(sab, HEADER_BYTES, this.capacity);
    this.#mask = this.capacity - 1;
  }

  /** A new ring of `capacity` bytes (a power of two). */
  static create(capacity = RING_BYTES): Ring {
    return new Ring(new SharedArrayBuffer(HEADER_BYTES + capacity));
  }

  /** Bytes the reader may consume now. */
  readable(): number {
    return (Atomics.load(this.ctrl, TAIL) - Atomics.load(this.ctrl, HEAD)) | 0;
  }

  /** Copies as much of `src[from..]` as fits, publishes it, and returns the count copied. */
  write(src: Uint8Array, from: number): number {
    const tail = Atomics.load(this.ctrl, TAIL);
    const free = this.capacity - ((tail - Atomics.load(this.ctrl, HEAD)) | 0);
    const n = Math.min(free, src.length - from);
    if (n <= 0) return 0;
    const at = tail & this.#mask;
    const first = Math.min(n, this.capacity - at);
    this.#bytes.set(src.subarray(from, from + first), at);
    if (first < n) this.#bytes.set(src.subarray(from + first, from + n), 0);
    Atomics.store(this.ctrl, TAIL, (tail + n) | 0);
    return n;
  }

  /** Wakes the reader if it is waiting. Call once per burst of writes. */
  notifyReader(): void {
    this.#wake(READER_WAITING, TAIL);
  }

  /** The byte at `offset` past the head (no bounds check: the caller checked `readable()`). */
  peek(offset: number): number {
    return this.#bytes[(Atomics.load(this.ctrl, HEAD) + offset) & this.#mask] ?? 0;
  }

  /** A view of `len` bytes at `offset` past the head if they are contiguous, else `null`. */
  contiguous(offset: number, len: number): FrameView | null {
    const at = (Atomics.load(this.ctrl, HEAD) + offset) & this.#mask;
    return at + len <= this.capacity ? { buf: this.#bytes, start: at, end: at + len } : null;
  }

  /** Copies `len` bytes at `offset` past the head into `dst[dstAt..]` (handles the wrap). */
  copyOut(offset: number, len: number, dst: Uint8Array, dstAt: number): void {
    const at = (Atomics.load(this.ctrl, HEAD) + offset) & this.#mask;
    const first = Math.min(len, this.capacity - at);
    dst.set(this.#bytes.subarray(at, at + first), dstAt);
    if (first < len) dst.set(this.#bytes.subarray(0, len - first), dstAt + first);
  }

  /** Releases `n` consumed bytes to the writer, waking it if it waits for space. */
  consume(n: number): void {
    Atomics.store(this.ctrl, HEAD, (Atomics.load(this.ctrl, HEAD) + n) | 0);
    this.#wake(WRITER_WAITING, HEAD);
  }

  /**
   * Reader side, without blocking: announces that the reader sleeps until more than `have`
   * bytes are readable. False if there already are (do not sleep); true if the writer will
   * ring the {@link doorbell} when it publishes more.
   */
  sleepReader(have: number): boolean {
    return this.#sleep(READER_WAITING, () => this.readable() > have);
  }

  /** Writer side, without blocking: like {@link sleepReader}, until there is room to write. */
  sleepWriter(): boolean {
    return this.#sleep(WRITER_WAITING, () => this.readable() < this.capacity);
  }

  /** Worker side: blocks up to `timeoutMs` until more than `have` bytes are readable; true if so. */
  waitReadableSync(timeoutMs: number, have: number): boolean {
    return this.#waitSync(READER_WAITING, TAIL, () => this.readable() > have, timeoutMs);
  }

  /** Worker side: blocks until there is room to write. */
  waitWritableSync(): void {
    this.#waitSync(WRITER_WAITING, HEAD, () => this.readable() < this.capacity, Infinity);
  }

  #waitSync(flag: number, word: number, ready: () => boolean, timeoutMs: number): boolean {
    Atomics.store(this.ctrl, flag, BLOCKED);
    // The flag is raised before the re-check, so a writer that publishes after our check sees it.
    const seen = Atomics.load(this.ctrl, word);
    if (!ready()) Atomics.wait(this.ctrl, word, seen, timeoutMs);
    Atomics.store(this.ctrl, flag, 0);
    return ready();
  }

  #sleep(flag: number, ready: () => boolean): boolean {
    Atomics.store(this.ctrl, flag, ASLEEP);
    // Raised before the re-check: a peer that publishes after it sees the flag and rings.
    if (!ready()) return true;
    Atomics.compareExchange(this.ctrl, flag, ASLEEP, 0);
    return false;
  }

  #wake(flag: number, word: number): void {
    const state = Atomics.load(this.ctrl, flag);
    if (state === BLOCKED) Atomics.notify(this.ctrl, word);
    // Exactly one waker takes an ASLEEP flag down, so a sleeper gets one doorbell per sleep.
    else if (state === ASLEEP && Atomics.compareExchange(this.ctrl, flag, ASLEEP, 0) === ASLEEP) this.doorbell();
  }
}

/**
 * Cuts the byte stream of a {@link Ring} into frames. A frame that is whole and contiguous is
 * parsed in place (no copy); one that wraps or is larger than what is readable is assembled
 * in a private buffer, draining the ring as it goes so the writer can go on.
 */
export class FrameReader {
  readonly #ring: Ring;
  #assembly: Buffer | null = null;
  #assembled = 0;
  #pending = 0;

  constructor(ring: Ring) {
    this.#ring = ring;
  }

  /**
   * Readable bytes that were not enough for a frame when {@link next} last returned `null`: wait
   * for more than this many. (Reading `readable()` again instead would race with the writer and
   * could wait for bytes beyond a frame that has already arrived.)
   */
  stalledAt = 0;

  /** The next whole frame's body, or `null` if it has not fully arrived yet. */
  next(): FrameView | null {
    const ring = this.#ring;
    if (this.#assembly !== null) return this.#continue();
    const avail = ring.readable();
    this.stalledAt = avail;
    if (avail < 4) return null;
    const len = (ring.peek(0) | (ring.peek(1) << 8) | (ring.peek(2) << 16) | (ring.peek(3) << 24)) >>> 0;
    if (avail >= 4 + len) {
      this.#pending = 4 + len;
      const view = ring.contiguous(4, len);
      if (view !== null) return view;
      const copy = Buffer.allocUnsafe(len);
      ring.copyOut(4, len, copy, 0);
      return { buf: copy, start: 0, end: len };
    }
    ring.consume(4);
    this.#assembly = Buffer.allocUnsafe(len);
    this.#assembled = 0;
    return this.#continue();
  }

  /** Gives the space of the frame returned by {@link next} back to the writer. */
  release(): void {
    if (this.#pending === 0) return;
    this.#ring.consume(this.#pending);
    this.#pending = 0;
  }

  #continue(): FrameView | null {
    const assembly = this.#assembly;
    if (assembly === null) return null;
    const avail = this.#ring.readable();
    const n = Math.min(avail, assembly.length - this.#assembled);
    this.stalledAt = avail - n;
    if (n > 0) {
      this.#ring.copyOut(0, n, assembly, this.#assembled);
      this.#ring.consume(n);
      this.#assembled += n;
    }
    if (this.#assembled < assembly.length) return null;
    this.#assembly = null;
    return { buf: assembly, start: 0, end: assembly.length };
  }
}
