// Peer server for chorus-bench: Node.js `ws` doing "every message to everyone" (sender included),
// same opcode and payload. Uses Debian's node-ws (module at /usr/share/nodejs/ws).
// Usage: node broadcast.js [--host H] [--port P] [--deflate on|off]
// Prints "chorus: listening on HOST:PORT" when ready.
'use strict';
let WebSocket;
try { WebSocket = require('ws'); } catch (e) { WebSocket = require('/usr/share/nodejs/ws'); }

const args = process.argv.slice(2);
let host = '127.0.0.1', port = 0, deflate = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--host') host = args[++i];
  else if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--deflate') deflate = args[++i] !== 'off';
  else if (args[i] === 'deflate' || args[i] === 'on') deflate = true;
}

const wss = new WebSocket.Server({
  host, port, backlog: 4096, clientTracking: true, maxPayload: 1 << 20,
  // Compress every message (threshold 0), no context takeover either way: the same offer chorus-bench makes.
  perMessageDeflate: deflate ? { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true } : false,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`chorus: listening on ${a.address}:${a.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
