/**
 * A backend publishing over the gateway's HTTP API with the server-side SDK (sdk/server/).
 *
 *   SYMPHONIC_KEY=example-key npx tsx examples/http-publisher/publish.ts [http-url] [topic]
 *
 * The gateway must accept the key: start it with `SYMPHONIC_api__keys=example-key npm start`.
 * Defaults: http://127.0.0.1:9001 and demo.board. It paints a diagonal on the board, one JSON
 * Merge Patch per cell, and prints where each landed: the seq and epoch subscribers see it at.
 */
import { pathToFileURL } from 'node:url';
import { SymphonicPublisher } from '../../sdk/server/index.ts';

export const COLOURS = ['#ef4444', '#f59e0b', '#22c55e', '#3b82f6', '#a855f7'];

export async function paintDiagonal(url: string, apiKey: string, topic: string, print: (line: string) => void = console.log): Promise<void> {
  const publisher = new SymphonicPublisher({ url, apiKey });
  try {
    for (const [i, colour] of COLOURS.entries()) {
      const { seq, epoch } = await publisher.patch(topic, { cells: { [`${i},${i}`]: colour } });
      print(`${topic}: cell ${i},${i} ${colour} stored at seq ${seq} (epoch ${epoch})`);
    }
  } finally {
    await publisher.close();
  }
}

// Run as a command (the examples test imports `paintDiagonal` instead).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url = 'http://127.0.0.1:9001', topic = 'demo.board'] = process.argv.slice(2);
  const key = process.env.SYMPHONIC_KEY;
  if (!key) {
    console.error('set SYMPHONIC_KEY to an API key the gateway accepts (SYMPHONIC_api__keys)');
    process.exit(1);
  }
  await paintDiagonal(url, key, topic);
}
