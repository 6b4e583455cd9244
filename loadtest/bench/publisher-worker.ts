/**
 * Worker thread entry: opens the publisher socket of a target (or, for a NATS target, a NATS
 * connection) and publishes on command, with its own event loop (see publisher.ts for why).
 * Messages from the parent: {type:'run', rate, durationMs} and {type:'close'}; to the parent: {type:'ready'}, {type:'done', report}, {type:'error', message}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from 'nats';
import { connectRawWs } from '../lib/raw-ws.ts';
import { Publisher, natsSink, wsSink, type PublishSink } from './publisher.ts';
import { TARGETS } from './targets/index.ts';

export interface PublisherWorkerData {
  target: string;
  topic: string;
  port: number;
  /** The target's NATS server, for a client that publishes to NATS (BenchClient.natsSubject). */
  natsUrl?: string;
}
export type PublisherCommand = { type: 'run'; rate: number; durationMs: number } | { type: 'close' };

const port = parentPort!;
const { target, topic, port: serverPort, natsUrl } = workerData as PublisherWorkerData;

try {
  const client = TARGETS[target]!.client(topic);
  let sink: PublishSink;
  if (client.natsSubject) {
    if (!natsUrl) throw new Error(`${target} publishes to NATS but started no NATS server`);
    const nc = await connect({ servers: natsUrl, name: 'symphonic-bench-publisher' });
    sink = natsSink(nc, nc.jetstream(), client.natsSubject);
  } else {
    const ws = await connectRawWs({
      host: '127.0.0.1',
      port: serverPort,
      path: client.publisherPath,
      protocol: client.subprotocol,
      decode: true,
      // Below the count threshold: protocol-level pings reach onShortMessage; larger frames publisherNotice.
      minCountBytes: client.minCountBytes,
      ...(client.onShortMessage ? { onShortMessage: client.onShortMessage.bind(client) } : {}),
      ...(client.stream ? { stream: client.stream } : {}),
    });
    sink = wsSink(ws, client);
    await client.preparePublisher(ws);
  }
  const publisher = new Publisher(sink, client);
  port.on('message', (cmd: PublisherCommand) => {
    if (cmd.type === 'close') {
      sink.close();
      port.close();
      return;
    }
    publisher.run(cmd.rate, cmd.durationMs).then(
      (sent) => port.postMessage({ type: 'done', report: publisher.report(sent) }),
      (e: Error) => port.postMessage({ type: 'error', message: e.message }),
    );
  });
  port.postMessage({ type: 'ready' });
} catch (e) {
  port.postMessage({ type: 'error', message: (e as Error).message });
  port.close();
}
