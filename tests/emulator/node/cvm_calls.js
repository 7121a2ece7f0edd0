// Calls CVM actions through the official Node.js SDK (tencentcloud-sdk-nodejs-cvm) and prints what came back.
//
//   node cvm_calls.js '{"endpoint": "cvm.localhost:9000", "secretId": "...", "secretKey": "...",
//                       "region": "ap-guangzhou", "calls": [{"action": "DescribeImages", "params": {...}}]}'
//
// Prints one JSON array on stdout: per call {"ok": <response>} or {"error": {"code", "message"}}.
// The endpoint is used as the SDK uses it: it signs the service named by its first label and the host without
// its port, and sends the Host header with the port. Names under .localhost resolve to 127.0.0.1 (RFC 6761)
// through the SDK's `agent` option, so no /etc/hosts entry is needed.
"use strict";

const dns = require("dns");
const http = require("http");
const tencentcloud = require("tencentcloud-sdk-nodejs-cvm");

function lookup(hostname, options, callback) {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    return options && options.all
      ? callback(null, [{ address: "127.0.0.1", family: 4 }])
      : callback(null, "127.0.0.1", 4);
  }
  return dns.lookup(hostname, options, callback);
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = new tencentcloud.cvm.v20170312.Client({
    credential: { secretId: spec.secretId, secretKey: spec.secretKey, token: spec.token },
    region: spec.region,
    profile: {
      httpProfile: { endpoint: spec.endpoint, protocol: "http://", agent: new http.Agent({ lookup }) },
      language: "en-US",
    },
  });
  const results = [];
  for (const call of spec.calls) {
    try {
      results.push({ ok: await client[call.action](call.params) });
    } catch (e) {
      results.push({ error: { code: e.code || e.name, message: e.message } });
    }
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
