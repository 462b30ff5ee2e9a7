// Package redisbridge carries plugins' Redis callouts (the Higress
// proxy_redis_init / proxy_redis_call host calls) to Redis.
//
// It owns the Redis clients, one pooled go-redis client per (endpoints,
// database, credentials), shared by every plugin that uses the same server
// the same way. It also owns the embedded Redis-compatible stores
// (miniredis), one per cluster configured with redis.embedded: true. A
// guest's command goes to the server exactly as the guest encoded it, and the
// reply comes back byte for byte as the server sent it (see Bridge.Call).
//
// The package must not know about Wasm memory, contexts or tokens: it
// takes a cluster name and a RESP command and reports one completion per
// call through a callback. Matching completions to guest contexts, queueing
// them for a busy instance, and translating errors to Proxy-Wasm status
// codes is the Wasm host's job.
package redisbridge
