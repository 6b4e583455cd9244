/** Peer-to-peer channels between sessions, introduced by the gateway (docs/sdk.md, "Peer channels"). */
export { PeerChannel, type PeerChannelEvents } from './channel.ts';
export { PeerGroup, type GroupOptions, type GroupSubscription, type PeerGroupEvents } from './group.ts';
export { SymphonicPeers, type PeerClient, type PeerOptions, type PeerRequest, type PeersEvents } from './peers.ts';
export type { PeerState } from './state.ts';
