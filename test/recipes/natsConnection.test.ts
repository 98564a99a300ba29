import test from 'ava';
import { connectBroker, redactUrl } from '../../recipes/natsConnection.ts';
import { startNatsServer, type NatsServer } from '../_natsServer.ts';

let server: NatsServer;
test.before(async () => {
  server = await startNatsServer(['--user', 'tempo', '--pass', 's3cret-pw']);
});
test.after.always(() => server?.close());

test('credentials are passed through to the client', async (t) => {
  const lines: string[] = [];
  const broker = await connectBroker({
    url: server.url,
    user: 'tempo',
    pass: 's3cret-pw',
    report: (l) => lines.push(l),
  });
  t.truthy(await broker.jsm.getAccountInfo());
  await broker.close();
  t.false(lines.some((l) => l.includes('s3cret')));
});

test('wrong credentials fail in one line that names the server, not the secret', async (t) => {
  const error = await t.throwsAsync(
    connectBroker({ url: server.url.replace('//', '//tempo:wrong-pw@'), connectTimeout: 2, report: () => {} }),
  );
  t.regex(error!.message, /^NATS server must be a reachable nats-server/);
  t.regex(error!.message, /nats:\/\/127\.0\.0\.1:\d+/);
  t.false(error!.message.includes('wrong-pw'));
});

test('a URL is printed without its user and password', (t) => {
  t.is(redactUrl('nats://u:p@host:4222'), 'nats://host:4222');
  t.is(redactUrl('nats://host:4222'), 'nats://host:4222');
});
