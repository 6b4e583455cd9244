/**
 * Memory probe, preloaded into a benchmark server by memory.ts only (`--import` after tsx, see
 * `withPreload` in targets/paths.ts); nothing in the gateway knows of it. When
 * SYMPHONIC_MEMPROBE_PORT is set it listens on 127.0.0.1:<port>:
 *
 *   GET /mem                  two forced full GCs (memory-reducing), then process.memoryUsage(), V8's heap spaces
 *                             (used / committed) and the RSS split of /proc/self/status, as JSON
 *   GET /mem?gc=0             the same figures without a GC (RSS and committed heap as the process has them;
 *                             heap "used" then includes whatever garbage was made since the last GC)
 *   GET /snapshot?path=<file> two forced GCs, then v8.writeHeapSnapshot(<file>) (for analysis by hand)
 *   GET /alloc/start          V8's sampling heap profiler on, counting what GCs collected too
 *                             (?promoted=1: not what the young generation's GCs collected)
 *   GET /alloc/stop?path=<f>  off, the profile written to <f> (.heapprofile: where the bytes were allocated)
 *                             (?promoted=1: after two young-generation GCs, see there)
 *
 * `gc` comes from V8 at run time (`--expose-gc` set by flag, read in a new context), so the
 * server's command line stays the benchmark's.
 */
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Per V8 heap space: bytes used and committed. */
const spaces = () => Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { used: s.space_used_size, size: s.space_size }]));

/** RssAnon, RssFile, RssShmem (bytes): anonymous memory is the heap and malloc's, file is code. */
function status(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of readFileSync('/proc/self/status', 'latin1').matchAll(/^(Rss\w+):\s+(\d+) kB/gm)) out[m[1]!] = Number(m[2]) * 1024;
  return out;
}

const port = Number(process.env.SYMPHONIC_MEMPROBE_PORT ?? 0);
if (port > 0) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (o?: object) => Promise<void> | undefined;
  // 'last-resort': V8's memory-reducing full GC (as under memory pressure), which also gives back
  // the free pages of the young generation, so the figures do not depend on when V8 last shrank it.
  // 'async', awaited: on Node 20 (V8 11.3) a *sync* GC called with options collects almost nothing
  // (300k dead objects: heap used 45 MB after it, 17 MB after `gc()` or an async one; Node 24 is
  // fine), which left garbage in every "after GC" figure and moved the NATS engine's heap per
  // connection by 0.6-1 KB between runs (2026-12-05).
  const fullGc = async () => {
    await gc({ type: 'major', execution: 'async', flavor: 'last-resort' });
    await gc({ type: 'major', execution: 'async', flavor: 'last-resort' });
  };
  let inspector: Session | null = null;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://probe');
    try {
      if (url.pathname === '/alloc/start') {
        inspector ??= new Session();
        inspector.connect();
        await inspector.post('HeapProfiler.startSampling', {
          samplingInterval: 512,
          includeObjectsCollectedByMajorGC: true,
          // ?promoted=1: only what outlived the young generation (promoted, collected later or not)
          includeObjectsCollectedByMinorGC: url.searchParams.get('promoted') !== '1',
        } as object);
        return void res.end('{}');
      }
      if (url.pathname === '/alloc/stop' && inspector && url.searchParams.get('path')) {
        // ?promoted=1: two young-generation GCs first, so what the profile still holds was promoted
        // (alive or not: old-generation garbage stays until a full GC) or is alive now.
        if (url.searchParams.get('promoted') === '1') {
          await gc({ type: 'minor', execution: 'async' });
          await gc({ type: 'minor', execution: 'async' });
        }
        const { profile } = await inspector.post('HeapProfiler.stopSampling');
        inspector.disconnect();
        writeFileSync(url.searchParams.get('path')!, JSON.stringify(profile));
        return void res.end('{}');
      }
      if (url.pathname === '/mem') {
        if (url.searchParams.get('gc') !== '0') await fullGc();
        res.end(JSON.stringify({ ...process.memoryUsage(), spaces: spaces(), status: status() }));
      } else if (url.pathname === '/snapshot' && url.searchParams.get('path')) {
        await fullGc();
        res.end(JSON.stringify({ path: writeHeapSnapshot(url.searchParams.get('path')!) }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    } catch (e) {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: (e as Error).message }));
    }
  });
  server.listen(port, '127.0.0.1');
  server.unref();
}
