/**
 * Values of executor frames in V8's structured-clone format (what `postMessage` carries), with
 * typhoon's handling of memory: a `SharedArrayBuffer`, a view of one, or a buffer being
 * transferred is written as a reference (to a buffer handed over beside the frame, or to one the
 * other side already holds, by registry id) instead of being copied; a large copied view is
 * copied once into memory of its own, which then moves. The frames themselves are `codec.ts`.
 */
import v8 from "node:v8";
import type { SharedIds, SharedLookup } from "./shared.ts";

/** Memory handed over beside a frame: shared buffers, and buffers being transferred. */
export type SideBuffer = SharedArrayBuffer | ArrayBuffer;

/** A copied (not shared, not transferred) view at least this large is moved beside the frame. */
export const LARGE_VIEW_BYTES = 64 * 1024;

/** Marks a view whose memory is shared or transferred rather than copied. */
const REF_VIEW = 0x7ffffff0;
/** Marks a view of a shared buffer the other side already holds, named by its registry id. */
const REF_SHARED = 0x7ffffff1;

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;
/** The same indices as Node's `DefaultSerializer` (10 is `Buffer`). */
export const VIEW_TYPES: readonly ViewCtor[] = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array, DataView, Buffer, BigInt64Array, BigUint64Array];

/** The index of a view's type in {@link VIEW_TYPES}, or -1. */
export function viewTypeIndex(view: ArrayBufferView): number {
  if (Buffer.isBuffer(view)) return 10;
  return VIEW_TYPES.findIndex((ctor) => view.constructor === ctor);
}

/** Index of the "whole SharedArrayBuffer" pseudo view type. */
export const WHOLE_BUFFER = 255;
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
export function substituteShared(value: unknown): unknown {
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

/** Writes values, with shared and moved memory as references (see the file header). */
export class ValueSerializer extends v8.DefaultSerializer {
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

/** Reads values written by {@link ValueSerializer}, given the buffers handed over beside them. */
export class ValueDeserializer extends v8.DefaultDeserializer {
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
