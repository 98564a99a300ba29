import { Option, type Command } from 'commander';
import type { NatsOptions } from '../recipes/natsConnection.ts';

/** The flags {@link addNatsOptions} adds. */
export interface NatsFlags {
  natsCreds?: string;
  natsUser?: string;
  natsTls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  connectTimeout: number;
}

/**
 * Adds the NATS client's credentials and TLS options to a command. Secrets come from files or the environment
 * (`NATS_PASSWORD`, `NATS_TOKEN`), never from the command line where `ps` shows them; none is ever printed.
 */
export function addNatsOptions(command: Command): Command {
  return command
    .addOption(new Option('--nats-creds <FILE>', 'NATS credentials file (JWT + NKey seed, as nsc writes it)'))
    .addOption(
      new Option('--nats-user <NAME>', 'NATS user (password from env NATS_PASSWORD; a token from env NATS_TOKEN)'),
    )
    .addOption(new Option('--tls-ca <FILE>', 'CA bundle to verify the NATS server (asks for TLS)'))
    .addOption(new Option('--tls-cert <FILE>', 'client certificate for NATS TLS'))
    .addOption(new Option('--tls-key <FILE>', 'client key for NATS TLS'))
    .addOption(
      new Option('--connect-timeout <S>', 'seconds to keep trying the first connection to NATS')
        .argParser(Number)
        .default(30),
    );
}

/** The client options for `url` from the flags and the environment. */
export function natsOptions(url: string, flags: NatsFlags, name: string): NatsOptions {
  return {
    url,
    name,
    creds: flags.natsCreds,
    user: flags.natsUser,
    pass: flags.natsUser !== undefined ? process.env.NATS_PASSWORD : undefined,
    token: process.env.NATS_TOKEN || undefined,
    tlsCa: flags.tlsCa,
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
    connectTimeout: flags.connectTimeout,
  };
}

/** The guarantee and limits, for `--help` texts. */
export const SCALE_OUT_HELP = `
Scale-out (NATS JetStream; see README "Scale-out"): install and start a broker with
  apt-get install nats-server && nats-server -js -sd /var/lib/nats
Delivery is at least once and nothing is lost: a corpus job is acknowledged after its shards are written, a
sample batch after the trainer's checkpoint holding its step; unacknowledged work is redelivered after the ack
wait. The stream must hold a checkpoint interval of samples (--max-bytes > --checkpoint-every x --batch x sample
bytes), or the trainer starves waiting for a full stream. Connection losses and broker restarts are retried with
backoff and reported in one line. Credentials (--nats-creds, --nats-user with env NATS_PASSWORD, env NATS_TOKEN)
and TLS files go to the NATS client and are never printed. The trainer itself is one process (tfjs has no
collective operations): decoding, sampling and corpus jobs scale out, training does not.`;
