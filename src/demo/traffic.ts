/** Sends write traffic to the demo service: bounded in count and time, loopback only. */
export interface Traffic {
  stop(): Promise<number>;
}

export function startTraffic(url: string, perSecond = 5, maxWrites = 100_000): Traffic {
  let sent = 0;
  let inflight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(
    () => {
      if (sent >= maxWrites) return;
      sent += 1;
      inflight = fetch(`${url}/write`, { method: 'POST' })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
    },
    Math.max(1, Math.round(1000 / perSecond)),
  );
  return {
    async stop() {
      clearInterval(timer);
      await inflight;
      return sent;
    },
  };
}

// `tsx src/demo/traffic.ts [url] [writes/s] [seconds]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const [url = 'http://127.0.0.1:8787', rate = '5', seconds = '60'] = process.argv.slice(2);
  const traffic = startTraffic(url, Number(rate));
  setTimeout(async () => console.log(`sent ${await traffic.stop()} writes to ${url}`), Number(seconds) * 1000);
}
