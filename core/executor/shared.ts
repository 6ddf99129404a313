/**
 * Shared memory handed to a thread once, then named by number. A `SharedArrayBuffer` can only
 * reach another thread through a `postMessage` (a message per call would cost more than the call
 * itself), so the first call that passes a given buffer to a thread shares it on the side port
 * under a new id, and every later call names the id in its frame: no message at all.
 *
 * Lifetime: the main thread remembers its buffers weakly; the thread keeps its own handle on each
 * id until the main thread's buffer is garbage-collected, when a `forget` message lets it go. A
 * call in flight holds its arguments, so no id it names can be forgotten before it settles.
 *
 * Results: a thread names by id only a buffer that came with the call it answers (the caller
 * then surely still holds it); any other shared buffer in a result goes on the side port.
 */

/** The encoder's view of a registry: the id to write for a shared buffer, if it has one. */
export interface SharedIds {
  idOf(buffer: SharedArrayBuffer): number | undefined;
}

/** The decoder's view of a registry: the buffer an id names. */
export interface SharedLookup {
  byId(id: number): SharedArrayBuffer | undefined;
}

/** The main thread's registry of the buffers it shared with one thread. */
export class SharedOut implements SharedIds, SharedLookup {
  readonly #ids = new WeakMap<SharedArrayBuffer, number>();
  readonly #buffers = new Map<number, WeakRef<SharedArrayBuffer>>();
  readonly #finalizer: FinalizationRegistry<number>;
  #next = 1;
  /** Buffers registered since the last {@link takeFresh}: they must be posted before the frame. */
  #fresh: [number, SharedArrayBuffer][] = [];

  /** `forget(id)` is called when the main thread's buffer is gone: tell the thread to let go. */
  constructor(forget: (id: number) => void) {
    this.#finalizer = new FinalizationRegistry((id: number) => {
      this.#buffers.delete(id);
      forget(id);
    });
  }

  idOf(buffer: SharedArrayBuffer): number {
    let id = this.#ids.get(buffer);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(buffer, id);
      this.#buffers.set(id, new WeakRef(buffer));
      this.#finalizer.register(buffer, id);
      this.#fresh.push([id, buffer]);
    }
    return id;
  }

  byId(id: number): SharedArrayBuffer | undefined {
    return this.#buffers.get(id)?.deref();
  }

  /** The buffers registered by the frame just encoded (empty: none), and forgets the list. */
  takeFresh(): [number, SharedArrayBuffer][] {
    if (this.#fresh.length === 0) return this.#fresh;
    const fresh = this.#fresh;
    this.#fresh = [];
    return fresh;
  }

  /** Drops buffers registered by a frame that was not sent (its arguments failed to encode). */
  discardFresh(): void {
    for (const [id, buffer] of this.#fresh) {
      this.#ids.delete(buffer);
      this.#buffers.delete(id);
      this.#finalizer.unregister(buffer);
    }
    this.#fresh = [];
  }
}

/** A thread's registry of the buffers the main thread shared with it. */
export class SharedIn implements SharedIds, SharedLookup {
  readonly #buffers = new Map<number, SharedArrayBuffer>();
  readonly #ids = new Map<SharedArrayBuffer, number>();
  /** Ids named by the call being run: the only ones a result may name. */
  readonly #current = new Set<number>();

  add(id: number, buffer: SharedArrayBuffer): void {
    this.#buffers.set(id, buffer);
    this.#ids.set(buffer, id);
  }

  forget(id: number): void {
    const buffer = this.#buffers.get(id);
    this.#buffers.delete(id);
    if (buffer !== undefined) this.#ids.delete(buffer);
  }

  byId(id: number): SharedArrayBuffer | undefined {
    const buffer = this.#buffers.get(id);
    if (buffer !== undefined) this.#current.add(id);
    return buffer;
  }

  idOf(buffer: SharedArrayBuffer): number | undefined {
    const id = this.#ids.get(buffer);
    return id !== undefined && this.#current.has(id) ? id : undefined;
  }

  /** Starts a new call: ids named by the last one may no longer be named in results. */
  beginCall(): void {
    this.#current.clear();
  }

  /** Ids known, for tests and diagnostics. */
  get size(): number {
    return this.#buffers.size;
  }
}
