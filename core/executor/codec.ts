/**
 * The wire format of the executor's frames, and the encoding of the values they carry (the V8
 * format's handling of shared and moved memory is `values.ts`).
 *
 * A frame is `u32 length | u8 type | u32 id | u8 flags | u8 encoding | ...`. Values travel in
 * one of two encodings:
 * - FAST, for lists of primitives (the common case of task arguments and results): a tag byte
 *   per value, written straight into a reused scratch buffer. Measured 5–6× cheaper than a
 *   `v8.serialize`/`v8.deserialize` pair for arguments like `[i, "x"]`.
 * - V8, the structured-clone wire format (`v8.Serializer`), for everything else: what
 *   `postMessage` carries, carried here. A `SharedArrayBuffer`, a view of one, or a buffer in the
 *   `transfer` list is not copied: it is handed over once on a side `MessagePort` (which shares
 *   or moves memory, never copies it) and the frame refers to it by index. A shared buffer the
 *   thread already has (see `shared.ts`) is named by its id instead, with no message at all.
 *
 * Large payloads do not stream through the ring (whose every crossing costs copies and wake-ups):
 * a copied view of {@link LARGE_VIEW_BYTES} or more is copied once into memory of its own, which
 * is then moved (transferred) beside the frame; a V8 body of {@link LARGE_BODY_BYTES} or more
 * (a long string, a big object) is moved beside the frame in one piece, and the frame in the ring
 * only says where it is.
 */
import type { SharedIds, SharedLookup } from "./shared.ts";
import { LARGE_VIEW_BYTES, substituteShared, ValueDeserializer, ValueSerializer, VIEW_TYPES, viewTypeIndex, WHOLE_BUFFER, type SideBuffer } from "./values.ts";

/** Frame types. */
export const FrameType = { CALL: 1, OK: 2, ERROR: 3 } as const;

/** Flag: the frame's buffers were posted on the side port just before it. */
export const FLAG_SIDE = 1;

const ENC_FAST = 0;
const ENC_V8 = 1;
/** V8 encoding whose body is a moved side buffer; the frame holds its side index (u32). */
const ENC_V8_SIDE = 2;

/** An encoded V8 body at least this large is moved beside the frame instead of written to the ring. */
export const LARGE_BODY_BYTES = 256 * 1024;
/** Strings longer than this (UTF-16 units) take the V8 path, so a long one can go beside the frame. */
const FAST_STRING_MAX = 16 * 1024;

function isFast(value: unknown): boolean {
  const type = typeof value;
  return value === null || type === "number" || type === "boolean" || type === "undefined"
    || (type === "string" && (value as string).length <= FAST_STRING_MAX);
}

/**
 * Encodes frames into one reused scratch buffer. The buffer a method returns is valid until the
 * next call; {@link side} and {@link transfer} then list what must be posted beside it.
 */
export class FrameEncoder {
  #buf = Buffer.allocUnsafeSlow(64 * 1024);
  #len = 0;
  /** Buffers to post on the side port before the frame (empty: none). */
  side: SideBuffer[] = [];
  /** The subset of {@link side} to transfer rather than share. */
  transfer: ArrayBuffer[] = [];
  /** Ids for shared buffers the other side already holds (or is given before the frame). */
  shared: SharedIds | undefined;

  /** A CALL frame: run task `name` (pre-encoded) with `args`. */
  call(id: number, name: Buffer, args: readonly unknown[], transfer?: readonly ArrayBuffer[]): Buffer {
    this.#begin(FrameType.CALL, id);
    this.#ensure(1 + name.length);
    this.#buf[this.#len++] = name.length;
    name.copy(this.#buf, this.#len);
    this.#len += name.length;
    this.#values(args, transfer);
    return this.#end();
  }

  /** An OK or ERROR frame carrying `value` and the task's run time in microseconds. */
  result(id: number, ok: boolean, micros: number, value: unknown): Buffer {
    this.#begin(ok ? FrameType.OK : FrameType.ERROR, id);
    this.#ensure(4);
    this.#len = this.#buf.writeUInt32LE(Math.min(0xffffffff, Math.max(0, Math.round(micros))), this.#len);
    this.#values([value], undefined);
    return this.#end();
  }

  #begin(type: number, id: number): void {
    this.side = [];
    this.transfer = [];
    this.#len = 0;
    this.#ensure(11);
    this.#buf.writeUInt32LE(0, 0);
    this.#buf[4] = type;
    this.#buf.writeUInt32LE(id >>> 0, 5);
    this.#buf[9] = 0;
    this.#len = 11;
  }

  #end(): Buffer {
    this.#buf.writeUInt32LE(this.#len - 4, 0);
    if (this.side.length > 0) this.#buf[9] = FLAG_SIDE;
    return this.#buf.subarray(0, this.#len);
  }

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.#len + extra));
    this.#buf.copy(grown, 0, 0, this.#len);
    this.#buf = grown;
  }

  #values(list: readonly unknown[], transfer: readonly ArrayBuffer[] | undefined): void {
    if ((transfer === undefined || transfer.length === 0) && list.length < 256
      && list.every((value) => isFast(value) || this.#sharedId(value) !== undefined)) {
      this.#buf[10] = ENC_FAST;
      this.#ensure(1);
      this.#buf[this.#len++] = list.length;
      for (const value of list) this.#fast(value);
      return;
    }
    this.#buf[10] = ENC_V8;
    const serializer = new ValueSerializer(this.side, new Set(transfer ?? []), this.shared);
    for (const buffer of transfer ?? []) serializer.transferArrayBuffer(this.side.push(buffer) - 1, buffer);
    serializer.writeHeader();
    serializer.writeValue(substituteShared(list));
    const bytes = serializer.releaseBuffer();
    this.transfer = [...(transfer ?? []), ...serializer.moved];
    if (bytes.length >= LARGE_BODY_BYTES) {
      // Handed over in one piece: the body's own memory moves to the other thread.
      const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length
        ? bytes.buffer as ArrayBuffer
        : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
      this.#buf[10] = ENC_V8_SIDE;
      this.#ensure(4);
      this.#len = this.#buf.writeUInt32LE(this.side.push(own) - 1, this.#len);
      this.transfer.push(own);
      return;
    }
    this.#ensure(bytes.length);
    bytes.copy(this.#buf, this.#len);
    this.#len += bytes.length;
  }

  /**
   * The registry id of a `SharedArrayBuffer`, or of the buffer under a view of one, when the other
   * side holds it: such a value needs no V8 serializer, just its id, offset and length.
   */
  #sharedId(value: unknown): number | undefined {
    if (this.shared === undefined || typeof value !== "object" || value === null) return undefined;
    if (value instanceof SharedArrayBuffer) return this.shared.idOf(value);
    if (!ArrayBuffer.isView(value) || !(value.buffer instanceof SharedArrayBuffer) || viewTypeIndex(value) < 0) return undefined;
    return this.shared.idOf(value.buffer);
  }

  #fast(value: unknown): void {
    this.#ensure(18);
    const buf = this.#buf;
    if (typeof value === "object" && value !== null) {
      // Checked by #sharedId: a SharedArrayBuffer, or a view of one, that has an id.
      const whole = value instanceof SharedArrayBuffer;
      const view = value as ArrayBufferView;
      buf[this.#len++] = 7;
      buf[this.#len++] = whole ? WHOLE_BUFFER : viewTypeIndex(view);
      this.#len = buf.writeUInt32LE(this.#sharedId(value) ?? 0, this.#len);
      this.#len = buf.writeUInt32LE(whole ? 0 : view.byteOffset, this.#len);
      this.#len = buf.writeUInt32LE(whole ? 0 : view.byteLength, this.#len);
    } else if (value === undefined) buf[this.#len++] = 0;
    else if (value === null) buf[this.#len++] = 1;
    else if (value === true) buf[this.#len++] = 2;
    else if (value === false) buf[this.#len++] = 3;
    else if (typeof value === "number") {
      if ((value | 0) === value && !Object.is(value, -0)) {
        buf[this.#len++] = 4;
        this.#len = buf.writeInt32LE(value, this.#len);
      } else {
        buf[this.#len++] = 5;
        this.#len = buf.writeDoubleLE(value, this.#len);
      }
    } else {
      const text = String(value);
      this.#ensure(5 + text.length * 3);
      this.#buf[this.#len] = 6;
      const written = this.#buf.write(text, this.#len + 5, "utf8");
      this.#buf.writeUInt32LE(written, this.#len + 1);
      this.#len += 5 + written;
    }
  }
}

/** The fixed part of a frame, parsed. */
export interface FrameHead {
  type: number;
  id: number;
  flags: number;
  /** The task name (CALL frames). */
  name: string;
  /** The task's run time in microseconds (OK/ERROR frames). */
  micros: number;
  /** Where the encoded values start. */
  valuesAt: number;
}

/** Parses the fixed part of the frame body `buf[start, end)`. */
export function readHead(buf: Buffer, start: number): FrameHead {
  const type = buf[start] ?? 0;
  const head: FrameHead = { type, id: buf.readUInt32LE(start + 1), flags: buf[start + 5] ?? 0, name: "", micros: 0, valuesAt: start + 6 };
  if (type === FrameType.CALL) {
    const len = buf[start + 7] ?? 0;
    head.name = buf.toString("utf8", start + 8, start + 8 + len);
    head.valuesAt = start + 8 + len;
    // The encoding byte stays at start + 6; decodeValues reads it from there.
  } else {
    head.micros = buf.readUInt32LE(start + 7);
    head.valuesAt = start + 11;
  }
  return head;
}

/** Decodes the values of a frame whose body is `buf[start, end)`, given its head. */
export function decodeValues(buf: Buffer, start: number, end: number, head: FrameHead, side: readonly SideBuffer[],
  shared?: SharedLookup): unknown[] {
  let at = head.valuesAt;
  const encoding = buf[start + 6];
  if (encoding === ENC_V8 || encoding === ENC_V8_SIDE) {
    let data: Buffer;
    if (encoding === ENC_V8_SIDE) {
      const body = side[buf.readUInt32LE(at)];
      if (!(body instanceof ArrayBuffer)) throw new TypeError("Executor frame refers to a body it was not given");
      // Moved here, so ours to read in place.
      data = Buffer.from(body);
    } else {
      // Copied out first: the frame may live in ring memory the writer is about to reuse.
      data = Buffer.from(buf.subarray(at, end));
    }
    const deserializer = new ValueDeserializer(data, side, shared);
    deserializer.readHeader();
    const list = deserializer.readValue();
    if (!Array.isArray(list)) throw new TypeError("Executor frame does not hold a list of values");
    return list;
  }
  const count = buf[at++] ?? 0;
  const list: unknown[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const tag = buf[at++];
    if (tag === 0) list[i] = undefined;
    else if (tag === 1) list[i] = null;
    else if (tag === 2) list[i] = true;
    else if (tag === 3) list[i] = false;
    else if (tag === 4) { list[i] = buf.readInt32LE(at); at += 4; }
    else if (tag === 5) { list[i] = buf.readDoubleLE(at); at += 8; }
    else if (tag === 7) {
      const index = buf[at] ?? 0;
      const id = buf.readUInt32LE(at + 1);
      const buffer = shared?.byId(id);
      if (buffer === undefined) throw new TypeError(`Executor frame refers to a buffer it was not given (id ${id})`);
      const byteOffset = buf.readUInt32LE(at + 5);
      const byteLength = buf.readUInt32LE(at + 9);
      at += 13;
      const ctor = VIEW_TYPES[index];
      if (index === WHOLE_BUFFER) list[i] = buffer;
      else if (index === 10) list[i] = Buffer.from(buffer, byteOffset, byteLength);
      else if (ctor === undefined) throw new TypeError(`Unknown view type ${index} in executor frame`);
      else list[i] = new ctor(buffer, byteOffset, byteLength / ("BYTES_PER_ELEMENT" in ctor ? Number(ctor.BYTES_PER_ELEMENT) : 1));
    } else {
      const len = buf.readUInt32LE(at);
      list[i] = buf.toString("utf8", at + 4, at + 4 + len);
      at += 4 + len;
    }
  }
  return list;
}
