/// The dashboard: one self-contained page (HTML, CSS, JS and SVG inline; nothing is fetched from
/// anywhere but this server's `/api/v1/dashboard`). The token typed into the form stays in a
/// JavaScript variable (never in the URL, a cookie or storage) and goes out in the Authorization
/// header of each poll, about once per second. Rates (deliveries/s, loop load) are differences of
/// the server's totals between two polls; the charts keep the last five minutes.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Chorus dashboard</title>
        <style>
          :root { --bg:#0f1419; --card:#1a2129; --line:#2b3540; --text:#e6edf3; --muted:#8b98a5; --accent:#4fc3f7; --accent2:#81c784; --warn:#ffb74d; --bad:#e57373; }
          * { box-sizing: border-box; }
          body { margin:0; font:15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--text); }
          header { display:flex; align-items:center; gap:12px; padding:12px 16px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
          header h1 { font-size:18px; margin:0; font-weight:600; }
          #status { font-size:13px; color:var(--muted); }
          #status.live::before { content:""; display:inline-block; width:8px; height:8px; border-radius:50%; background:var(--accent2); margin-right:6px; }
          main { padding:16px; max-width:1200px; margin:0 auto; }
          .grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(240px, 1fr)); gap:12px; }
          .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px; min-width:0; }
          .card h2 { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 6px; font-weight:500; }
          .value { font-size:26px; font-weight:600; font-variant-numeric:tabular-nums; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
          .sub { font-size:12px; color:var(--muted); }
          .charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(300px, 1fr)); gap:12px; margin-top:12px; }
          svg.chart { width:100%; height:160px; display:block; }
          .card h2 .scale { float:right; text-transform:none; letter-spacing:0; }
          .bars div.bar { display:flex; align-items:center; gap:8px; margin:4px 0; font-size:13px; }
          .bars .track { flex:1; height:10px; background:var(--line); border-radius:5px; overflow:hidden; }
          .bars .fill { height:100%; background:var(--accent); }
          table { width:100%; border-collapse:collapse; font-size:13px; }
          td, th { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); }
          td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
          #login { max-width:360px; margin:12vh auto; }
          #login input { width:100%; padding:10px; margin:8px 0; border-radius:6px; border:1px solid var(--line); background:var(--bg); color:var(--text); font-size:15px; }
          #login button { width:100%; padding:10px; border:0; border-radius:6px; background:var(--accent); color:#002; font-weight:600; font-size:15px; cursor:pointer; }
          #error { display:none; background:#3a1d1d; border:1px solid var(--bad); color:#ffd6d6; padding:8px 12px; border-radius:6px; margin-bottom:12px; }
          #login-error { color:var(--bad); min-height:1.4em; font-size:13px; }
          #app { display:none; }
          @media (max-width: 520px) { .grid { grid-template-columns:repeat(2, minmax(0, 1fr)); } .value { font-size:22px; } main { padding:10px; } svg.chart { height:120px; } }
        </style>
        </head>
        <body>
        <header><h1>Chorus</h1><span id="status">signed out</span></header>
        <main>
          <form id="login" class="card" autocomplete="off">
            <h2>Sign in</h2>
            <label for="token" class="sub">API token (--api-token or --metrics-token)</label>
            <input id="token" type="password" name="token" placeholder="token" autocomplete="off">
            <button id="signin" type="submit">Open dashboard</button>
            <div id="login-error"></div>
          </form>
          <div id="app">
            <div id="error"></div>
            <div class="grid">
              <div class="card"><h2>Connections</h2><div class="value" id="connections">–</div><div class="sub" id="accepted"></div></div>
              <div class="card"><h2>Deliveries / s</h2><div class="value" id="deliveries-rate">–</div><div class="sub" id="deliveries-total"></div></div>
              <div class="card"><h2>Messages in / s</h2><div class="value" id="messages-rate">–</div><div class="sub" id="messages-total"></div></div>
              <div class="card"><h2>Backpressure</h2><div class="value" id="dropped">–</div><div class="sub" id="backpressure-detail"></div></div>
              <div class="card"><h2>Compression</h2><div class="value" id="compression">–</div><div class="sub" id="compression-detail"></div></div>
              <div class="card"><h2>Queued</h2><div class="value" id="queued">–</div><div class="sub" id="queued-high"></div></div>
              <div class="card"><h2>Process</h2><div class="value" id="rss">–</div><div class="sub" id="process-detail"></div></div>
              <div class="card"><h2>Adapter</h2><div class="value" id="adapter">–</div><div class="sub" id="adapter-detail"></div><div class="sub" id="uptime"></div></div>
            </div>
            <div class="charts">
              <div class="card"><h2>Connections <span class="scale" id="scale-connections"></span></h2><svg class="chart" id="chart-connections" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></div>
              <div class="card"><h2>Deliveries / s <span class="scale" id="scale-deliveries"></span></h2><svg class="chart" id="chart-deliveries" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></div>
              <div class="card"><h2>Event loop load</h2><div class="bars" id="loops"></div></div>
              <div class="card"><h2>Busiest rooms</h2><table><thead><tr><th>Room</th><th class="num">Members</th></tr></thead><tbody id="rooms"></tbody></table>
                <h2 style="margin-top:12px">Socket.IO namespaces</h2><table><tbody id="namespaces"></tbody></table></div>
            </div>
          </div>
        </main>
        <script>
        "use strict";
        (function () {
          const HISTORY = 300;             // samples kept: 5 minutes at one per second
          let token = null;                // in page memory only
          let previous = null;             // the last poll's data, for rates
          let timer = null;
          const series = { connections: [], deliveries: [] };
          const $ = (id) => document.getElementById(id);

          function fmt(n) {
            if (!isFinite(n)) return "–";
            if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + "G";
            if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + "M";
            if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
            return Math.round(n).toString();
          }
          function bytes(n) {
            if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
            if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
            if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
            return n + " B";
          }
          function text(id, value) { $(id).textContent = value; }

          // The x axis spans the samples kept, at least one minute, at most HISTORY (five minutes).
          function chart(svg, scale, values, color) {
            const w = 600, h = 160, pad = 4;
            const max = Math.max(1, ...values);
            const span = Math.min(HISTORY, Math.max(60, values.length));
            const step = w / (span - 1);
            const offset = span - values.length;
            const points = values.map((v, i) => ((offset + i) * step).toFixed(1) + "," + (h - pad - (v / max) * (h - 2 * pad)).toFixed(1));
            let body = '<line x1="0" y1="' + (h - pad) + '" x2="' + w + '" y2="' + (h - pad) + '" stroke="#2b3540"/>';
            if (points.length > 1) {
              body += '<polyline fill="none" stroke="' + color + '" stroke-width="2" vector-effect="non-scaling-stroke" points="' + points.join(" ") + '"/>';
            }
            svg.innerHTML = body;
            scale.textContent = "max " + fmt(max) + " · last " + Math.round(span / 60) + " min";
          }

          function render(d) {
            const now = performance.now() / 1000;
            let deliveriesRate = 0, messagesRate = 0;
            const loopLoads = [];
            if (previous) {
              const dt = Math.max(0.001, now - previous.at);
              deliveriesRate = Math.max(0, (d.deliveries - previous.data.deliveries) / dt);
              messagesRate = Math.max(0, (d.messagesIn - previous.data.messagesIn) / dt);
              for (const loop of d.loops) {
                const before = previous.data.loops.find((l) => l.loop === loop.loop);
                const busy = before ? (loop.busySeconds - before.busySeconds) / dt : 0;
                loopLoads.push({ loop: loop.loop, load: Math.min(1, Math.max(0, busy)), connections: loop.connections });
              }
            } else {
              for (const loop of d.loops) loopLoads.push({ loop: loop.loop, load: 0, connections: loop.connections });
            }
            previous = { at: now, data: d };
            series.connections.push(d.connections);
            series.deliveries.push(deliveriesRate);
            for (const k in series) if (series[k].length > HISTORY) series[k].shift();

            text("connections", fmt(d.connections));
            text("accepted", fmt(d.accepted) + " accepted since start");
            text("deliveries-rate", fmt(deliveriesRate));
            text("deliveries-total", fmt(d.deliveries) + " in all, " + fmt(d.broadcasts) + " emits");
            text("messages-rate", fmt(messagesRate));
            text("messages-total", fmt(d.messagesIn) + " in all, " + bytes(d.bytesIn) + " read");
            text("dropped", fmt(d.dropped));
            text("backpressure-detail", "dropped; " + fmt(d.backpressureClosed) + " closed");
            text("compression", d.compressionIn > 0 ? (d.compressionIn / Math.max(1, d.compressionOut)).toFixed(2) + "×" : "off");
            text("compression-detail", bytes(d.compressionIn) + " → " + bytes(d.compressionOut));
            text("queued", bytes(d.queuedBytes));
            text("queued-high", "high water " + bytes(d.queuedBytesHighWater));
            text("rss", bytes(d.process.rssBytes));
            text("process-detail", d.process.openFDs + " fds, " + d.process.cpuSeconds.toFixed(1) + " s CPU");
            text("adapter", d.adapter);
            const c = d.cluster;
            text("adapter-detail", c ? (c.redisConnected ? "Redis connected" : "Redis unreachable") + " · " + fmt(c.broadcastsPublished) +
              " published, " + fmt(c.broadcastsReceived) + " received, " + fmt(c.publishQueue) + " queued, " + fmt(c.reconnects) + " reconnects"
              : "this process only");
            text("uptime", "up " + Math.round(d.uptimeSeconds) + " s, " + d.roomCount + " rooms");

            chart($("chart-connections"), $("scale-connections"), series.connections, "#4fc3f7");
            chart($("chart-deliveries"), $("scale-deliveries"), series.deliveries, "#81c784");

            $("loops").innerHTML = "";
            for (const l of loopLoads) {
              const row = document.createElement("div");
              row.className = "bar";
              row.innerHTML = '<span>loop ' + l.loop + '</span><span class="track"><span class="fill" style="display:block;width:' +
                (l.load * 100).toFixed(1) + '%"></span></span><span class="sub">' + (l.load * 100).toFixed(0) + '% · ' + fmt(l.connections) + ' conn</span>';
              $("loops").appendChild(row);
            }
            const rooms = $("rooms");
            rooms.innerHTML = "";
            for (const r of d.rooms) {
              const tr = document.createElement("tr");
              const name = document.createElement("td"); name.textContent = r.name;
              const members = document.createElement("td"); members.className = "num"; members.textContent = fmt(r.members);
              tr.append(name, members); rooms.appendChild(tr);
            }
            if (d.rooms.length === 0) rooms.innerHTML = '<tr><td class="sub" colspan="2">no rooms yet</td></tr>';
            const ns = $("namespaces");
            ns.innerHTML = "";
            for (const name of Object.keys(d.socketio)) {
              const tr = document.createElement("tr");
              const a = document.createElement("td"); a.textContent = name;
              const b = document.createElement("td"); b.className = "num"; b.textContent = fmt(d.socketio[name]) + " sockets";
              tr.append(a, b); ns.appendChild(tr);
            }
            if (Object.keys(d.socketio).length === 0) ns.innerHTML = '<tr><td class="sub">not a Socket.IO server</td></tr>';
            document.body.dataset.samples = String(series.connections.length);
          }

          function showError(message) {
            const e = $("error");
            e.textContent = message;
            e.style.display = message ? "block" : "none";
            document.body.dataset.error = message ? "1" : "";
          }

          async function poll() {
            try {
              const response = await fetch("/api/v1/dashboard", { headers: { "Authorization": "Bearer " + token }, cache: "no-store" });
              if (response.status === 401) { signOut("token refused"); return; }
              if (!response.ok) throw new Error("HTTP " + response.status);
              render(await response.json());
              showError("");
              $("status").className = "live";
              text("status", "live · updated " + new Date().toLocaleTimeString());
            } catch (err) {
              showError("cannot reach the server: " + err.message);
              $("status").className = "";
              text("status", "disconnected");
            }
            if (token) timer = setTimeout(poll, 1000);
          }

          function signOut(message) {
            token = null;
            clearTimeout(timer);
            $("app").style.display = "none";
            $("login").style.display = "block";
            text("login-error", message || "");
            text("status", "signed out");
            $("status").className = "";
          }

          $("login").addEventListener("submit", async (event) => {
            event.preventDefault();
            const candidate = $("token").value.trim();
            if (!candidate) { text("login-error", "enter the token"); return; }
            const response = await fetch("/api/v1/dashboard", { headers: { "Authorization": "Bearer " + candidate }, cache: "no-store" }).catch(() => null);
            if (!response || response.status === 401) { text("login-error", response ? "token refused" : "cannot reach the server"); return; }
            token = candidate;
            $("token").value = "";
            $("login").style.display = "none";
            $("app").style.display = "block";
            poll();
          });
        })();
        </script>
        </body>
        </html>
        """#
}
