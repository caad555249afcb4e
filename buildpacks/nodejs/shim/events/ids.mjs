// Request ids: RFC 4122 version 4 UUIDs from a pooled CSPRNG.
import { randomFillSync } from 'node:crypto';
import { Buffer } from 'node:buffer';

// Request ids come from a pool of random bytes, refilled once per UUID_POOL_IDS ids: node's
// randomUUID refills its own 2 KB pool every 128 ids, and that refill was a visible share of
// each request's work. Each refill also formats the whole pool into one string, so an id is a
// 36-character slice of it (V8 shares the characters): about a quarter of the work of
// assembling each id from 20 pieces. A slice keeps its pool's text alive, so pools stay
// small: an id that a handler keeps for long holds on to 9 KB, not to a day's worth of ids.
const UUID_POOL_IDS = 256;
const UUID_LENGTH = 36;
// Where each of an id's 16 bytes goes in its text; the dashes between never move.
const UUID_SLOTS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
// The two hex digits of each byte value as one little-endian 16-bit unit: one store per byte.
const HEX_PAIRS = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_PAIRS[b] = digits.charCodeAt(0) | (digits.charCodeAt(1) << 8);
}
const uuidRandom = Buffer.allocUnsafe(16 * UUID_POOL_IDS);
const uuidBytes = Buffer.from('00000000-0000-0000-0000-000000000000'.repeat(UUID_POOL_IDS), 'latin1');
// A DataView, because half of the digit pairs start at odd offsets.
const uuidView = new DataView(uuidBytes.buffer, uuidBytes.byteOffset, uuidBytes.length);
let uuidText = '';
let uuidNext = UUID_POOL_IDS;

// One id per call rather than one loop over the pool: called for every id, V8 optimizes it
// like any hot function, where a loop that runs only once per refill would stay unoptimized.
function formatUuid(o, at) {
  // RFC 4122: version 4 in the high nibble of byte 6, variant 10xx in byte 8.
  uuidRandom[o + 6] = (uuidRandom[o + 6] & 0x0f) | 0x40;
  uuidRandom[o + 8] = (uuidRandom[o + 8] & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    uuidView.setUint16(at + UUID_SLOTS[i], HEX_PAIRS[uuidRandom[o + i]], true);
  }
}

function refillUuids() {
  randomFillSync(uuidRandom);
  for (let id = 0; id < UUID_POOL_IDS; id++) formatUuid(16 * id, UUID_LENGTH * id);
  uuidText = uuidBytes.toString('latin1');
  uuidNext = 0;
}

/** Returns a fresh RFC 4122 version 4 UUID (122 random bits from the CSPRNG). */
export function requestUuid() {
  if (uuidNext === UUID_POOL_IDS) refillUuids();
  const start = UUID_LENGTH * uuidNext;
  uuidNext += 1;
  return uuidText.slice(start, start + UUID_LENGTH);
}
