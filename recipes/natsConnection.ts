import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { OptionError } from '../core/errors.ts';

/**
 * How to reach the NATS server: its URL and what the client needs to authenticate. Passed to the official client
 * as they are; never printed (see {@link redactUrl}).
 */
export interface NatsOptions {
  /** `nats://host:4222` (or `tls://`); `user:pass@` in the URL is passed through too. */
  url: string;
  /** A `.creds` file (JWT and NKey seed), as `nsc` writes it. */
  creds?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** TLS: CA bundle, client certificate and key files; any of them asks for a TLS connection. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Client name shown by the server's monitoring. */
  name?: string;
  /** Seconds to keep trying the first connection before failing. Default 30. */
  connectTimeout?: number;
  /** Where connection events go, one line each (default: stderr). */
  report?: (line: string) => void;
}

/** A connection with its JetStream client and manager. */
export interface Broker {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Where the connection reports (for the broker users' own one-line events). */
  report: (line: string) => void;
  /** Drains and closes the connection. */
  close(): Promise<void>;
}

/** `nats://user:secret@host:4222` as `nats://host:4222`: what may be printed of a server URL. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

/**
 * Connects to NATS with JetStream. A lost connection or a restarted broker is retried for ever with backoff (1 s,
 * doubling to 30 s, with jitter), each loss and each return reported in one line; the first connection is tried
 * the same way for `connectTimeout` seconds (default 30) before the run fails with an OptionError naming the URL.
 */
export async function connectBroker(options: NatsOptions): Promise<Broker> {
  const firstTimeoutMs = (options.connectTimeout ?? 30) * 1000;
  const report = options.report ?? ((line: string) => console.error(line));
  const where = redactUrl(options.url);
  if (!/^(nats|tls):\/\/[^/]+$/.test(options.url.replace(/\/$/, '')))
    throw new OptionError('NATS URL', where, 'nats://host:4222 (or tls://host:4222)');
  let attempt = 0;
  const clientOptions: NodeConnectionOptions = {
    servers: options.url,
    name: options.name ?? 'tempo-ssl',
    maxReconnectAttempts: -1,
    reconnectDelayHandler: () => Math.min(30_000, 1000 * 2 ** Math.min(attempt++, 5)) * (0.75 + Math.random() / 2),
    pingInterval: 10_000,
    ...(options.user !== undefined ? { user: options.user, pass: options.pass } : {}),
    ...(options.token !== undefined ? { token: options.token } : {}),
  };
  if (options.creds) {
    let creds: Uint8Array;
    try {
      creds = await readFile(options.creds);
    } catch {
      throw new OptionError('--nats-creds', options.creds, 'a readable .creds file (nsc generate creds)');
    }
    clientOptions.authenticator = credsAuthenticator(creds);
  }
  if (options.tlsCa || options.tlsCert || options.tlsKey)
    clientOptions.tls = { caFile: options.tlsCa, certFile: options.tlsCert, keyFile: options.tlsKey };
  const nc = await connectFirst(clientOptions, where, firstTimeoutMs);
  void watch(nc, where, report, () => (attempt = 0));
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  return {
    nc,
    js,
    jsm,
    report,
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

async function connectFirst(options: NodeConnectionOptions, where: string, timeoutMs: number): Promise<NatsConnection> {
  const start = Date.now();
  let delay = 250;
  for (;;) {
    try {
      return await connect({ ...options, timeout: Math.min(5000, timeoutMs) });
    } catch (cause) {
      const message = (cause as Error).message;
      // Wrong credentials or TLS settings do not get better by waiting.
      if (/authori[sz]ation|auth|tls|certificate/i.test(message) || Date.now() - start + delay > timeoutMs)
        throw new OptionError(
          'NATS server',
          where,
          `a reachable nats-server with JetStream (start one: nats-server -js; ${message.split('\n')[0]})`,
        );
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 4000);
    }
  }
}

/** Reports connection losses and returns, one line each (never the credentials). */
async function watch(
  nc: NatsConnection,
  where: string,
  report: (line: string) => void,
  reconnected: () => void,
): Promise<void> {
  let lostAt: number | undefined;
  for await (const status of nc.status()) {
    if (status.type === 'disconnect' && lostAt === undefined) {
      lostAt = Date.now();
      report(`nats: lost the connection to ${where}; reconnecting with backoff`);
    } else if (status.type === 'reconnect') {
      const seconds = lostAt === undefined ? 0 : (Date.now() - lostAt) / 1000;
      report(`nats: reconnected to ${where} after ${seconds.toFixed(1)} s`);
      lostAt = undefined;
      reconnected();
    }
  }
}

/**
 * Retries `action` while the broker is away (a request timing out or refused during a restart), with backoff up to
 * `limitMs`; other errors are thrown at once.
 */
export async function retrying<T>(action: () => Promise<T>, limitMs = 120_000): Promise<T> {
  const start = Date.now();
  let delay = 200;
  for (;;) {
    try {
      return await action();
    } catch (error) {
      if (!isTransient(error) || Date.now() - start > limitMs) throw error;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** Errors a broker restart causes: timeouts, no responders, a closed or reconnecting connection. */
export function isTransient(error: unknown): boolean {
  const text = `${(error as Error)?.name ?? ''} ${(error as Error)?.message ?? ''}`;
  return /timeout|no responders|503|disconnect|reconnect|connection|heartbeat|closed|ECONNREFUSED/i.test(text);
}
