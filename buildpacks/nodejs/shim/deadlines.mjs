// Invocation timeouts with one timer for all of them, instead of one timer per request.
//
// Every invocation of a process has the same TIMEOUT, so deadlines arrive in the order they
// were added: an array in insertion order is already a priority queue. Arming one timer for
// the earliest deadline costs nothing per request, where setTimeout + clearTimeout per request
// was a measurable share of the shim's own work. Removal only marks an entry (a Set's hashing
// cost more than the rest of the queue); marked entries are dropped from the front as the
// queue moves on. The array is never truncated: once every entry is gone, the next one goes
// back in at slot 0 (setting an array's length is a runtime call, paid on every request when
// requests finish as fast as they arrive). The monotonic clock keeps the order true even when
// the wall clock steps back.
import { performance } from 'node:perf_hooks';

const REMOVED = -1;
// Once this many dead entries lead the array, the live tail is copied down.
const COMPACT_AFTER = 1024;

/** Timeouts of one fixed length over caller-owned entries, each expiring once unless removed first. */
export class DeadlineQueue {
  constructor(timeoutMs) {
    this._timeoutMs = timeoutMs;
    this._entries = [];
    // Live entries (and removed ones not yet dropped) are _entries[_head .. _tail).
    this._head = 0;
    this._tail = 0;
    this._timer = null;
    this._expiring = false;
  }

  /** Calls entry.expire() timeoutMs from now unless remove(entry) comes first; sets entry.due. */
  add(entry) {
    entry.due = performance.now() + this._timeoutMs;
    this._dropRemoved();
    this._entries[this._tail] = entry;
    this._tail += 1;
    // While expiring, _expire itself arms the timer for whichever entry then leads.
    if (this._timer === null && !this._expiring) this._arm(entry.due);
  }

  /** Cancels an entry; harmless when it already expired. */
  remove(entry) {
    entry.due = REMOVED;
  }

  _dropRemoved() {
    const entries = this._entries;
    const tail = this._tail;
    let head = this._head;
    while (head < tail && entries[head].due === REMOVED) {
      entries[head] = undefined;
      head += 1;
    }
    if (head === tail) {
      head = 0;
      this._tail = 0;
    } else if (head >= COMPACT_AFTER && head * 2 >= tail) {
      this._entries = entries.slice(head, tail);
      this._tail = tail - head;
      head = 0;
    }
    this._head = head;
  }

  _arm(due) {
    this._timer = setTimeout(() => this._expire(), Math.max(0, Math.ceil(due - performance.now())));
  }

  _expire() {
    this._timer = null;
    this._expiring = true;
    try {
      this._expireDue(performance.now());
    } finally {
      this._expiring = false;
    }
  }

  _expireDue(now) {
    for (;;) {
      this._dropRemoved();
      // Re-read every turn: an expire() callback may add (and so compact) entries.
      if (this._head === this._tail) return;
      const entry = this._entries[this._head];
      if (entry.due > now) {
        this._arm(entry.due);
        return;
      }
      entry.due = REMOVED;
      entry.expire();
    }
  }
}
