/**
 * The client's auth token: a fixed one (`token`), or one from the app's `getToken` hook, asked
 * before the first handshake, again after the server says it expired, and in band (`refresh`
 * frame) a little before its `exp` so the connection never has to drop for it.
 */
import { ErrorCode } from '../protocol/codes.ts';
import { SymphonicError } from './errors.ts';

export type TokenReason = 'connect' | 'expired' | 'refresh';
export type GetToken = (ctx: { reason: TokenReason }) => string | Promise<string>;

export interface TokenHooks {
  /** Hands a new token to the gateway (`refresh`) and resolves with its reply; null when not connected. */
  sendInBand(token: string): Promise<{ exp?: number }> | null;
  /** A refresh the keeper scheduled by itself failed. */
  error(err: SymphonicError): void;
}

export class TokenKeeper {
  private token: string | undefined;
  /** Why `getToken` must be asked before the next handshake; null: `token` is good. */
  private reason: TokenReason | null;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    token: string | undefined,
    private readonly getToken: GetToken | undefined,
    private readonly hooks: TokenHooks,
  ) {
    this.token = token;
    this.reason = getToken ? 'connect' : null;
  }

  /** The token the next `hello` carries, unless `stale`. */
  get current(): string | undefined {
    return this.token;
  }

  /** `getToken` must be asked (`fetch()`) before the next handshake. */
  get stale(): boolean {
    return this.getToken !== undefined && this.reason !== null;
  }

  /** Asks `getToken` for the reason it is stale and keeps the answer; throws what `getToken` throws. */
  async fetch(): Promise<string | undefined> {
    const token = await this.getToken!({ reason: this.reason! });
    this.token = token;
    this.reason = null;
    return token;
  }

  /** The server said the token expired (close 4005, error 3002): the next handshake asks for a new one. */
  expired(): void {
    this.reason = 'expired';
  }

  /**
   * Asks `getToken` for a fresh token now and, when connected, hands it to the gateway in band;
   * the next refresh is then scheduled from the reply's `exp`. Later handshakes use it too.
   */
  async refresh(): Promise<void> {
    if (!this.getToken) return;
    const token = await this.getToken({ reason: 'refresh' });
    this.token = token;
    this.reason = null;
    const reply = this.hooks.sendInBand(token);
    if (!reply) return;
    this.schedule((await reply).exp);
  }

  /**
   * Refreshes before `exp` (seconds): at the earlier of halfway there and 30 s before it (at once
   * when less is left), so the new token is in place before the gateway would close (4005).
   */
  schedule(exp: number | undefined): void {
    this.cancel();
    if (exp === undefined || !this.getToken) return;
    const left = exp * 1000 - Date.now();
    const delay = Math.max(0, Math.min(left - 30_000, left / 2));
    this.refreshTimer = setTimeout(
      () => {
        this.refreshTimer = undefined;
        this.refresh().catch((e: unknown) =>
          this.hooks.error(e instanceof SymphonicError ? e : new SymphonicError(ErrorCode.Unauthorized, `token refresh failed: ${(e as Error)?.message ?? e}`)),
        );
      },
      Math.min(delay, 2 ** 31 - 1),
    );
  }

  /** No refresh while there is no connection to send it on (the next `welcome` schedules again). */
  cancel(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }
}
