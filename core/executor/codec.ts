/**
 * The wire format of the executor's frames, and the serialization of the values they carry.
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
import v8 from "node:v8";
import type { SharedIds, SharedLookup } from "./shared.ts";

/** Frame types. */
export const FrameType = { CALL: 1, OK: 2, ERROR: 3 } as const;

/** Flag: the frame's buffers were posted on the side port just before it. */
export const FLAG_SIDE = 1;

const ENC_FAST = 0;
const ENC_V8 = 1;
/** V8 encoding whose body is a moved side buffer; the frame holds its side index (u32). */
const ENC_V8_SIDE = 2;

/** A copied (not shared, not transferred) view at least this large is moved beside the frame. */
export const LARGE_VIEW_BYTES = 64 * 1024;
/** An encoded V8 body at least this large is moved beside the frame instead of written to the ring. */
export const LARGE_BODY_BYTES = 256 * 1024;
/** Strings longer than this (UTF-16 units) take the V8 path, so a long one can go beside the frame. */
const FAST_STRING_MAX = 16 * 1024;

/** Marks a view whose memory is shared or transferred rather than copied. */
const REF_VIEW = 0x7ffffff0;
/** Marks a view of a shared buffer the other side already holds, named by its registry id. */
const REF_SHARED = 0x7ffffff1;

/** Memory handed over beside a frame: shared buffers, and buffers being transferred. */
export type SideBuffer = SharedArrayBuffer | ArrayBuffer;

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;
/** The same indices as Node's `DefaultSerializer` (10 is `Buffer`). */
const VIEW_TYPES: readonly ViewCtor[] = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array, DataView, Buffer, BigInt64Array, BigUint64Array];

function viewTypeIndex(view: ArrayBufferView): number {
  if (Buffer.isBuffer(view)) return 10;
  return VIEW_TYPES.findIndex((ctor) => view.constructor === ctor);
}

/** Index of the "whole SharedArrayBuffer" pseudo view type. */
const WHOLE_BUFFER = 255;
/** The DataViews standing in for a whole SharedArrayBuffer (see {@link substituteShared}). */
const wholeBuffers = new WeakSet<ArrayBufferView>();

/**
 * Node's deserializer cannot rebuild a `SharedArrayBuffer` (V8 asks it for a buffer by id and
 * it has no answer), so each one met in arrays, plain objects, Maps and Sets is replaced by a
 * marked DataView, which goes through the host-object path as a reference. A value without
 * shared buffers is returned as it is; one with them is copied (its arrays, plain objects, Maps
 * and Sets), keeping cycles and shared references, so no path leads back to an original that
 * still holds a shared buffer.
 */
function substituteShared(value: unknown): unknown {
  return holdsShared(value, new Set()) ? copyShared(value, new Map()) : value;
}

/** Whether a `SharedArrayBuffer` is reachable through arrays, plain objects, Maps and Sets. */
function holdsShared(value: unknown, seen: Set<object>): boolean {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return false;
  if (value instanceof SharedArrayBuffer) return true;
  if (seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) if (holdsShared(item, seen)) return true;
  } else if (value instanceof Map) {
    for (const [k, v] of value) if (holdsShared(k, seen) || holdsShared(v, seen)) return true;
  } else if (isPlainObject(value)) {
    for (const key in value) if (holdsShared((value as Record<string, unknown>)[key], seen)) return true;
  }
  return false;
}

/** The copy of {@link substituteShared}: each container is made before its contents, so a cycle finds it. */
function copyShared(value: unknown, copies: Map<object, unknown>): unknown {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value;
  if (value instanceof SharedArrayBuffer) {
    const marker = new DataView(value);
    wholeBuffers.add(marker);
    return marker;
  }
  const done = copies.get(value);
  if (done !== undefined) return done;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    copies.set(value, copy);
    // Holes stay holes; other own properties are kept, as structured clone keeps them.
    for (const key of Object.keys(value)) (copy as unknown as Record<string, unknown>)[key] = copyShared((value as unknown as Record<string, unknown>)[key], copies);
    return copy;
  }
  if (value instanceof Map) {
    const copy = new Map<unknown, unknown>();
    copies.set(value, copy);
    for (const [k, v] of value) copy.set(copyShared(k, copies), copyShared(v, copies));
    return copy;
  }
  if (value instanceof Set) {
    const copy = new Set<unknown>();
    copies.set(value, copy);
    for (const item of value) copy.add(copyShared(item, copies));
    return copy;
  }
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) as Record<string, unknown> : {};
    copies.set(value, copy);
    for (const key of Object.keys(value)) copy[key] = copyShared((value as Record<string, unknown>)[key], copies);
    return copy;
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

class ValueSerializer extends v8.DefaultSerializer {
  readonly #side: SideBuffer[];
  readonly #transfer: ReadonlySet<ArrayBuffer>;
  readonly #shared: SharedIds | undefined;
  /** Copies of large views made by this serializer: moved to the other side, never shared. */
  readonly moved: ArrayBuffer[] = [];

  constructor(side: SideBuffer[], transfer: ReadonlySet<ArrayBuffer>, shared: SharedIds | undefined) {
    super();
    this.#side = side;
    this.#transfer = transfer;
    this.#shared = shared;
  }

  /** Writes a reference to shared or moved memory: by registry id if it has one, else by side index. */
  #writeRef(index: number, buffer: SideBuffer, byteOffset: number, byteLength: number): void {
    const id = buffer instanceof SharedArrayBuffer ? this.#shared?.idOf(buffer) : undefined;
    this.writeUint32(id === undefined ? REF_VIEW : REF_SHARED);
    this.writeUint32(index);
    this.writeUint32(id ?? this.#sideIndex(buffer));
    this.writeUint32(byteOffset);
    this.writeUint32(byteLength);
  }

  #sideIndex(buffer: SideBuffer): number {
    const at = this.#side.indexOf(buffer);
    return at >= 0 ? at : this.#side.push(buffer) - 1;
  }

  /** Called by V8 for a `SharedArrayBuffer` that {@link substituteShared} could not reach. */
  _getSharedArrayBufferId(): number {
    throw new TypeError("A SharedArrayBuffer inside a class instance cannot be passed to a thread: pass it in an array, plain object, Map or Set, or as an argument");
  }

  /** Called for each typed array/DataView/Buffer (Node treats them as host objects). */
  _writeHostObject(view: ArrayBufferView): void {
    const buffer = view.buffer;
    const index = viewTypeIndex(view);
    if (index < 0) throw new TypeError(`${view.constructor.name} could not be cloned`);
    if (wholeBuffers.has(view)) {
      this.#writeRef(WHOLE_BUFFER, buffer, 0, view.byteLength);
      return;
    }
    if (buffer instanceof SharedArrayBuffer || this.#transfer.has(buffer)) {
      this.#writeRef(index, buffer, view.byteOffset, view.byteLength);
      return;
    }
    if (view.byteLength >= LARGE_VIEW_BYTES) {
      // One copy into memory of its own, which then moves to the other thread: cheaper than the
      // bytes crossing the ring (and than structured clone's copy on each side).
      const copy = (buffer as ArrayBuffer).slice(view.byteOffset, view.byteOffset + view.byteLength);
      this.moved.push(copy);
      this.#writeRef(index, copy, 0, view.byteLength);
      return;
    }
    // Node's own layout for a copied view: type, length, bytes.
    this.writeUint32(index);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(new Uint8Array(buffer, view.byteOffset, view.byteLength));
  }
}

class ValueDeserializer extends v8.DefaultDeserializer {
  readonly #side: readonly SideBuffer[];
  readonly #shared: SharedLookup | undefined;

  constructor(data: Buffer, side: readonly SideBuffer[], shared: SharedLookup | undefined) {
    super(data);
    this.#side = side;
    this.#shared = shared;
    // A SharedArrayBuffer is accepted here at run time (the typings say ArrayBuffer only).
    side.forEach((buffer, id) => this.transferArrayBuffer(id, buffer as ArrayBuffer));
  }

  #referred(byId: boolean): SideBuffer {
    const at = this.readUint32();
    const buffer = byId ? this.#shared?.byId(at) : this.#side[at];
    if (buffer === undefined) throw new TypeError(`Executor frame refers to a buffer it was not given (${byId ? "id" : "index"} ${at})`);
    return buffer;
  }

  _readHostObject(): ArrayBufferView {
    const tag = this.readUint32();
    const byId = tag === REF_SHARED;
    const refers = tag === REF_VIEW || byId;
    const index = refers ? this.readUint32() : tag;
    if (index === WHOLE_BUFFER) {
      const buffer = this.#referred(byId);
      this.readUint32();
      this.readUint32();
      // V8 wants a host object here; the buffer itself is what the sender passed.
      return buffer as unknown as ArrayBufferView;
    }
    const ctor = VIEW_TYPES[index];
    if (ctor === undefined) throw new TypeError(`Unknown view type ${index} in executor frame`);
    const per = "BYTES_PER_ELEMENT" in ctor ? Number(ctor.BYTES_PER_ELEMENT) : 1;
    if (refers) {
      const buffer = this.#referred(byId);
      const byteOffset = this.readUint32();
      const byteLength = this.readUint32();
      return index === 10 ? Buffer.from(buffer, byteOffset, byteLength) : new ctor(buffer, byteOffset, byteLength / per);
    }
    const byteLength = this.readUint32();
    // Copied into its own (aligned) memory: the frame buffer is not the value's to keep.
    const bytes = new Uint8Array(this.readRawBytes(byteLength));
    return index === 10 ? Buffer.from(bytes.buffer) : new ctor(bytes.buffer, 0, byteLength / per);
  }
}

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
