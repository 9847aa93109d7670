// Starts Chorus's echo server on a free loopback port with ChorusServer's public API, echoes
// nothing, and shuts it down: enough to show that the products link and start when Chorus is a
// versioned dependency.
import ChorusServer
import ChorusWebSocket

var configuration = ServerConfiguration()
configuration.host = "127.0.0.1"
configuration.port = 0
configuration.deflate = PerMessageDeflateConfig(mode: .shared)
let server = WebSocketServer(configuration: configuration, application: EchoApplication())
try server.start()
print("sample: listening on 127.0.0.1:\(server.port)")
server.shutdown()
