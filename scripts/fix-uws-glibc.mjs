// Makes the uWebSockets.js v20.57.0 Linux x64 binaries load on glibc < 2.38 (Debian 12).
//
// Those builds import three symbols only glibc 2.38 has: __isoc23_sscanf, __isoc23_strtol and
// __isoc23_strtoul (C23 variants that also accept "0b" prefixes, which uWS never parses). We
// rebind the three imports to the classic sscanf/strtol/strtoul at GLIBC_2.2.5 (pointing st_name
// at the suffix of the same string, so no string table grows) and mark the GLIBC_2.38 version
// need weak, so ld.so no longer refuses the file. Only files whose sha256 we know are touched;
// on glibc >= 2.38 nothing is done at all.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const KNOWN = new Set([
  '5b126ee00bf754b02e97e4c27090365a8562c5820c93f93918ac2212d4503e91', // uws_linux_x64_115.node (Node 20)
  '4b55b1f2cb7a7913febbb65a89496412b96af77e838552980092ba6b33723aac', // _127 (Node 22)
  '98128405dba2fb608448e921a979530f70c946a2cc9889c15f2fa70c2d00ab05', // _137 (Node 24)
  '813d788b347c6fd76b779d8932311ec05a044e612b4b83af220f16e6ea789683', // _141 (Node 25)
]);
const PATCHED = new Set([
  'd1156432c696075e653325e7d7a784796db200923221e1e4a36293d15d724e32',
  'f1608f301188933e79a50cf7d219a30ee83814aaba5e400e37c10eb9be7958db',
  '337e7312c83b0df8accbe2446055c1e663ef14824712a055dfb8c34852cd8d69',
  '66513ca63ef5fe6c0534f58cee955fcb272d49194dda12a806c2c1ccfb9b636d',
]);
const REBIND = ['__isoc23_sscanf', '__isoc23_strtol', '__isoc23_strtoul'];
const PREFIX = '__isoc23_'.length;
const VER_FLG_WEAK = 0x2;

function glibcTooOld() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const v = process.report?.getReport()?.header?.glibcVersionRuntime;
  if (!v) return false; // musl or unknown: not ours to patch
  const [major, minor] = v.split('.').map(Number);
  return major < 2 || (major === 2 && minor < 38);
}

function cstr(buf, off) {
  return buf.toString('latin1', off, buf.indexOf(0, off));
}

/** Patches one ELF64 little-endian shared object in memory; returns a description of the change. */
export function patchElf(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not an ELF64 LE file');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 0x18)),
      size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28),
      entsize: Number(buf.readBigUInt64LE(o + 0x38)),
    });
  }
  const SHT_DYNSYM = 11,
    SHT_GNU_verneed = 0x6ffffffe,
    SHT_GNU_versym = 0x6fffffff;
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
  const verneed = sections.find((s) => s.type === SHT_GNU_verneed);
  const versym = sections.find((s) => s.type === SHT_GNU_versym);
  if (!dynsym || !verneed || !versym) throw new Error('missing dynsym/verneed/versym');
  const dynstr = sections[dynsym.link];

  // Find libc's GLIBC_2.2.5 and GLIBC_2.38 version needs.
  let base = -1,
    weakened = 0;
  for (let vn = verneed.offset; ; ) {
    const cnt = buf.readUInt16LE(vn + 2);
    const file = cstr(buf, dynstr.offset + buf.readUInt32LE(vn + 4));
    let aux = vn + buf.readUInt32LE(vn + 8);
    for (let i = 0; i < cnt; i++) {
      const name = cstr(buf, dynstr.offset + buf.readUInt32LE(aux + 8));
      if (file === 'libc.so.6' && name === 'GLIBC_2.2.5') base = buf.readUInt16LE(aux + 6);
      if (file === 'libc.so.6' && name === 'GLIBC_2.38') {
        buf.writeUInt16LE(buf.readUInt16LE(aux + 4) | VER_FLG_WEAK, aux + 4);
        weakened++;
      }
      const next = buf.readUInt32LE(aux + 12);
      if (!next) break;
      aux += next;
    }
    const next = buf.readUInt32LE(vn + 12);
    if (!next) break;
    vn += next;
  }
  if (base < 0) throw new Error('libc GLIBC_2.2.5 version need not found');

  const rebound = [];
  const count = dynsym.size / dynsym.entsize;
  for (let i = 0; i < count; i++) {
    const o = dynsym.offset + i * dynsym.entsize;
    const nameOff = buf.readUInt32LE(o);
    const name = cstr(buf, dynstr.offset + nameOff);
    if (!REBIND.includes(name)) continue;
    buf.writeUInt32LE(nameOff + PREFIX, o); // "__isoc23_sscanf" -> its suffix "sscanf"
    const vs = versym.offset + i * 2;
    buf.writeUInt16LE((buf.readUInt16LE(vs) & 0x8000) | base, vs);
    rebound.push(name.slice(PREFIX));
  }
  return { rebound, weakened };
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

function main() {
  if (!glibcTooOld()) return console.log('fix-uws-glibc: glibc is new enough (or not Linux x64); nothing to do');
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('uWebSockets.js'));
  } catch {
    return console.log('fix-uws-glibc: uWebSockets.js is not installed; nothing to do');
  }
  for (const abi of [115, 127, 137, 141]) {
    const file = join(dir, `uws_linux_x64_${abi}.node`);
    if (!existsSync(file)) continue;
    const buf = readFileSync(file);
    const before = sha256(buf);
    if (PATCHED.has(before)) continue;
    if (!KNOWN.has(before)) {
      console.log(`fix-uws-glibc: ${file} is not a build this script knows; left as is`);
      continue;
    }
    const { rebound, weakened } = patchElf(buf);
    if (rebound.length !== REBIND.length || weakened !== 1) throw new Error(`fix-uws-glibc: unexpected layout in ${file}`);
    writeFileSync(file, buf);
    console.log(`fix-uws-glibc: patched ${file} (${rebound.join(', ')} -> GLIBC_2.2.5; GLIBC_2.38 need made weak)`);
  }
}

main();
