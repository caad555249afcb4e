// Invocation timeouts with one timer for all of them, instead of one timer per request.
//
// Every invocation of a process has the same TIMEOUT, so deadlines arrive in the order they
// were added: a Set (insertion-ordered) is already a priority queue. Arming one timer for the
// earliest deadline costs nothing per request, where setTimeout + clearTimeout per request
// was a measurable share of the shim's own work. The monotonic clock keeps that order true
// even when the wall clock steps back.
import { performance } from 'node:perf_hooks';

/** Timeouts of one fixed length, each firing its callback once unless removed first. */
export class DeadlineQueue {
  constructor(timeoutMs) {
    this._timeoutMs = timeoutMs;
    this._entries = new Set();
    this._timer = null;
  }

  /** Registers onExpire to run timeoutMs from now; returns a handle for remove(). */
  add(onExpire) {
    const entry = { due: performance.now() + this._timeoutMs, onExpire };
    this._entries.add(entry);
    if (this._timer === null) this._arm(entry.due);
    return entry;
  }

  /** Cancels an entry; harmless when it already fired. */
  remove(entry) {
    this._entries.delete(entry);
  }

  _arm(due) {
    this._timer = setTimeout(() => this._expire(), Math.max(0, Math.ceil(due - performance.now())));
  }

  _expire() {
    this._timer = null;
    const now = performance.now();
    for (const entry of this._entries) {
      if (entry.due > now) {
        this._arm(entry.due);
        return;
      }
      this._entries.delete(entry);
      entry.onExpire();
    }
  }
}
