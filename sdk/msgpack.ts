/**
 * A small MessagePack encoder/decoder, wire-compatible with the gateway's msgpackr configuration
 * (`useRecords: false`, `mapsAsObjects: true`): plain maps, str, bin, int, float, array, nil, bool,
 * plus the two extensions msgpackr writes for JS values (fixext1 type 0 = undefined, type -1 =
 * timestamp). A fraction of msgpackr's size, which keeps the browser bundle small.
 */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function encode(value: unknown): Uint8Array {
  const w = new Writer();
  w.write(value, 0);
  return w.bytes.subarray(0, w.pos);
}

class Writer {
  bytes = new Uint8Array(256);
  view = new DataView(this.bytes.buffer);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes);
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  private u8(b: number): void {
    this.ensure(1);
    this.bytes[this.pos++] = b;
  }

  /** A type byte followed by an unsigned big-endian length of 1, 2 or 4 bytes. */
  private head(type: number, size: 1 | 2 | 4, n: number): void {
    this.ensure(1 + size);
    this.bytes[this.pos++] = type;
    if (size === 1) this.bytes[this.pos] = n;
    else if (size === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += size;
  }

  /** fix-header when n < fixMax, else the 8/16/32-bit form starting at `type8` (or `type16` when there is no 8-bit form). */
  private sized(n: number, fix: number, fixMax: number, type8: number | null, type16: number): void {
    if (n < fixMax) this.u8(fix | n);
    else if (type8 !== null && n < 0x100) this.head(type8, 1, n);
    else if (n < 0x10000) this.head(type16, 2, n);
    else this.head(type16 + 1, 4, n);
  }

  write(v: unknown, depth: number): void {
    if (depth > 512) throw new Error('msgpack: value nested too deeply');
    switch (typeof v) {
      case 'string':
        return this.str(v);
      case 'number':
        return this.num(v);
      case 'boolean':
        return this.u8(v ? 0xc3 : 0xc2);
      case 'undefined':
        return this.u8(0xc0); // like JSON, the receiver sees no value
      case 'bigint':
        return this.big(v);
      case 'object':
        break;
      default:
        throw new Error(`msgpack: cannot encode a ${typeof v}`);
    }
    if (v === null) return this.u8(0xc0);
    if (Array.isArray(v)) {
      this.sized(v.length, 0x90, 16, null, 0xdc);
      for (const item of v) this.write(item, depth + 1);
      return;
    }
    if (v instanceof Uint8Array || v instanceof ArrayBuffer) return this.bin(v instanceof Uint8Array ? v : new Uint8Array(v));
    if (ArrayBuffer.isView(v)) return this.bin(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    if (v instanceof Date) return this.date(v);
    if (v instanceof Map) {
      this.sized(v.size, 0x80, 16, null, 0xde);
      for (const [k, item] of v) {
        this.write(k, depth + 1);
        this.write(item, depth + 1);
      }
      return;
    }
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    let n = 0;
    for (const k of keys) if (obj[k] !== undefined) n++;
    this.sized(n, 0x80, 16, null, 0xde);
    for (const k of keys) {
      const item = obj[k];
      if (item === undefined) continue;
      this.str(k);
      this.write(item, depth + 1);
    }
  }

  private str(s: string): void {
    // Short ASCII strings (most keys) skip the TextEncoder call.
    if (s.length < 32) {
      this.ensure(1 + s.length);
      const start = this.pos;
      const b = this.bytes;
      b[start] = 0xa0 | s.length;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[start + 1 + i] = c;
      }
      if (i === s.length) {
        this.pos = start + 1 + i;
        return;
      }
    }
    const b = utf8Encoder.encode(s);
    this.sized(b.length, 0xa0, 32, 0xd9, 0xda);
    this.raw(b);
  }

  private bin(b: Uint8Array): void {
    if (b.length < 0x100) this.head(0xc4, 1, b.length);
    else if (b.length < 0x10000) this.head(0xc5, 2, b.length);
    else this.head(0xc6, 4, b.length);
    this.raw(b);
  }

  private raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.bytes.set(b, this.pos);
    this.pos += b.length;
  }

  private num(n: number): void {
    if (Number.isInteger(n) && n >= -0x80000000 && n <= 0xffffffff) {
      if (n >= 0) {
        if (n < 0x80) return this.u8(n);
        if (n < 0x100) return this.head(0xcc, 1, n);
        if (n < 0x10000) return this.head(0xcd, 2, n);
        return this.head(0xce, 4, n);
      }
      if (n >= -0x20) return this.u8(n & 0xff);
      this.ensure(5);
      if (n >= -0x80) {
        this.bytes[this.pos++] = 0xd0;
        this.view.setInt8(this.pos++, n);
      } else if (n >= -0x8000) {
        this.bytes[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, n);
        this.pos += 2;
      } else {
        this.bytes[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, n);
        this.pos += 4;
      }
      return;
    }
    this.ensure(9);
    this.bytes[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, n);
    this.pos += 8;
  }

  private big(n: bigint): void {
    this.ensure(9);
    if (n >= 0n) {
      this.bytes[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, n);
    } else {
      this.bytes[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, n);
    }
    this.pos += 8;
  }

  private date(d: Date): void {
    const ms = d.getTime();
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1e6;
    if (nsec === 0 && sec >= 0 && sec < 0x100000000) {
      this.ensure(6);
      this.bytes[this.pos++] = 0xd6;
      this.bytes[this.pos++] = 0xff;
      this.view.setUint32(this.pos, sec);
      this.pos += 4;
    } else {
      this.ensure(15);
      this.bytes[this.pos++] = 0xc7;
      this.bytes[this.pos++] = 12;
      this.bytes[this.pos++] = 0xff;
      this.view.setUint32(this.pos, nsec);
      this.view.setBigInt64(this.pos + 4, BigInt(sec));
      this.pos += 12;
    }
  }
}

export function decode(input: Uint8Array | ArrayBuffer): unknown {
  const r = new Reader(input instanceof Uint8Array ? input : new Uint8Array(input));
  const v = r.read(0);
  if (r.pos !== r.bytes.length) throw new Error('msgpack: trailing bytes');
  return v;
}

class Reader {
  readonly view: DataView;
  pos = 0;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new Error('msgpack: unexpected end of input');
    this.pos += n;
    return at;
  }

  private uint(size: 1 | 2 | 4): number {
    const at = this.need(size);
    return size === 1 ? this.view.getUint8(at) : size === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }

  read(depth: number): unknown {
    if (depth > 512) throw new Error('msgpack: value nested too deeply');
    const b = this.view.getUint8(this.need(1));
    if (b < 0x80) return b;
    if (b < 0x90) return this.map(b & 0x0f, depth);
    if (b < 0xa0) return this.array(b & 0x0f, depth);
    if (b < 0xc0) return this.str(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    const v = this.view;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.uint(1));
      case 0xc5:
        return this.bin(this.uint(2));
      case 0xc6:
        return this.bin(this.uint(4));
      case 0xc7:
        return this.ext(this.uint(1));
      case 0xc8:
        return this.ext(this.uint(2));
      case 0xc9:
        return this.ext(this.uint(4));
      case 0xca:
        return v.getFloat32(this.need(4));
      case 0xcb:
        return v.getFloat64(this.need(8));
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return int64(v.getBigUint64(this.need(8)));
      case 0xd0:
        return v.getInt8(this.need(1));
      case 0xd1:
        return v.getInt16(this.need(2));
      case 0xd2:
        return v.getInt32(this.need(4));
      case 0xd3:
        return int64(v.getBigInt64(this.need(8)));
      case 0xd4:
        return this.ext(1);
      case 0xd5:
        return this.ext(2);
      case 0xd6:
        return this.ext(4);
      case 0xd7:
        return this.ext(8);
      case 0xd8:
        return this.ext(16);
      case 0xd9:
        return this.str(this.uint(1));
      case 0xda:
        return this.str(this.uint(2));
      case 0xdb:
        return this.str(this.uint(4));
      case 0xdc:
        return this.array(this.uint(2), depth);
      case 0xdd:
        return this.array(this.uint(4), depth);
      case 0xde:
        return this.map(this.uint(2), depth);
      case 0xdf:
        return this.map(this.uint(4), depth);
    }
    throw new Error(`msgpack: unknown type byte 0x${b.toString(16)}`);
  }

  private str(n: number): string {
    const at = this.need(n);
    const b = this.bytes;
    if (n < 24) {
      // Short ASCII strings (keys, kinds, topics) are faster without TextDecoder.
      let s = '';
      for (let i = at; i < at + n; i++) {
        const c = b[i]!;
        if (c & 0x80) return utf8Decoder.decode(b.subarray(at, at + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return utf8Decoder.decode(b.subarray(at, at + n));
  }

  private bin(n: number): Uint8Array {
    const at = this.need(n);
    return new Uint8Array(this.bytes.subarray(at, at + n)); // a copy, and a plain Uint8Array even when given a Buffer
  }

  private array(n: number, depth: number): unknown[] {
    if (n > this.bytes.length - this.pos) throw new Error('msgpack: array longer than the input');
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.read(depth + 1);
    return out;
  }

  private map(n: number, depth: number): Record<string, unknown> {
    if (n * 2 > this.bytes.length - this.pos) throw new Error('msgpack: map longer than the input');
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.read(depth + 1);
      const value = this.read(depth + 1);
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[String(key)] = value;
    }
    return out;
  }

  private ext(n: number): unknown {
    const type = this.view.getInt8(this.need(1));
    const at = this.need(n);
    if (type === 0 && n === 1) return undefined; // msgpackr's undefined
    if (type === -1) {
      const v = this.view;
      if (n === 4) return new Date(v.getUint32(at) * 1000);
      if (n === 8) {
        const hi = v.getUint32(at);
        const lo = v.getUint32(at + 4);
        return new Date(((hi & 0x3) * 0x100000000 + lo) * 1000 + (hi >>> 2) / 1e6);
      }
      if (n === 12) return new Date(Number(v.getBigInt64(at + 4)) * 1000 + v.getUint32(at) / 1e6);
    }
    throw new Error(`msgpack: unsupported extension type ${type}`);
  }
}

/** 64-bit integers come back as numbers when exact, as bigint otherwise. */
function int64(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}
